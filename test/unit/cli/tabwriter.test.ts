import { formatTable, TabFlags, TabWriter, tabwrite } from '../../../src/cli/tabwriter';
import type { TabWriterOptions } from '../../../src/cli/tabwriter';

const { AlignRight, DiscardEmptyColumns, Debug } = TabFlags;

/**
 * Cases from Go's src/text/tabwriter/tabwriter_test.go (name, minwidth, tabwidth, padding,
 * padchar, flags, src, expected). Cases that need the Escape character or FilterHTML are not
 * ported (see tabwriter.ts).
 */
const goCases: [string, number, number, number, string, number, string, string][] = [
  ['1a', 8, 0, 1, '.', 0, '', ''],
  ['1a debug', 8, 0, 1, '.', Debug, '', ''],
  ['2', 8, 0, 1, '.', 0, '\n\n\n', '\n\n\n'],
  ['3', 8, 0, 1, '.', 0, 'a\nb\nc', 'a\nb\nc'],
  ['4a', 8, 0, 1, '.', 0, '\t', ''],
  ['4b', 8, 0, 1, '.', AlignRight, '\t', ''],
  ['5', 8, 0, 1, '.', 0, '*\t*', '*.......*'],
  ['5b', 8, 0, 1, '.', 0, '*\t*\n', '*.......*\n'],
  ['5c', 8, 0, 1, '.', 0, '*\t*\t', '*.......*'],
  ['5c debug', 8, 0, 1, '.', Debug, '*\t*\t', '*.......|*'],
  ['5d', 8, 0, 1, '.', AlignRight, '*\t*\t', '.......**'],
  ['6', 8, 0, 1, '.', 0, '\t\n', '........\n'],
  ['7a', 8, 0, 1, '.', 0, 'a) foo', 'a) foo'],
  ['7b', 8, 0, 1, ' ', 0, 'b) foo\tbar', 'b) foo  bar'],
  ['7c', 8, 0, 1, '.', 0, 'c) foo\tbar\t', 'c) foo..bar'],
  ['7d', 8, 0, 1, '.', 0, 'd) foo\tbar\n', 'd) foo..bar\n'],
  ['7e', 8, 0, 1, '.', 0, 'e) foo\tbar\t\n', 'e) foo..bar.....\n'],
  ['8', 8, 0, 1, '*', 0, 'Hello, world!\n', 'Hello, world!\n'],
  ['9a', 1, 0, 0, '.', 0, '1\t2\t3\t4\n11\t222\t3333\t44444\n', '1.2..3...4\n11222333344444\n'],
  ['9c', 1, 0, 0, '.', 0, '1\t2\t3\t4\f11\t222\t3333\t44444\n', '1234\n11222333344444\n'],
  [
    '9c debug',
    1,
    0,
    0,
    '.',
    Debug,
    '1\t2\t3\t4\f11\t222\t3333\t44444\n',
    '1|2|3|4\n---\n11|222|3333|44444\n',
  ],
  ['10a', 5, 0, 0, '.', 0, '1\t2\t3\t4\n', '1....2....3....4\n'],
  ['10b', 5, 0, 0, '.', 0, '1\t2\t3\t4\t\n', '1....2....3....4....\n'],
  [
    '11',
    8,
    0,
    1,
    '.',
    0,
    '本\tb\tc\naa\t\u672c\u672c\u672c\tcccc\tddddd\naaa\tbbbb\n',
    '本.......b.......c\naa......本本本.....cccc....ddddd\naaa.....bbbb\n',
  ],
  [
    '12a',
    8,
    0,
    1,
    ' ',
    AlignRight,
    'a\tè\tc\t\naa\tèèè\tcccc\tddddd\t\naaa\tèèèè\t\n',
    '       a       è       c\n      aa     èèè    cccc   ddddd\n     aaa    èèèè\n',
  ],
  ['12b', 2, 0, 0, ' ', 0, 'a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n', 'a  b  c\naa bbbcccc\naaabbbb\n'],
  [
    '12c',
    8,
    0,
    1,
    '_',
    0,
    'a\tb\tc\naa\tbbb\tcccc\naaa\tbbbb\n',
    'a_______b_______c\naa______bbb_____cccc\naaa_____bbbb\n',
  ],
  [
    '13a',
    4,
    0,
    1,
    '-',
    0,
    '4444\t日本語\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n',
    '4444------日本語-22--1---333\n999999999-22\n7---------22\n------------------88888888\n\n666666-666666-666666----4444\n1------1------999999999-0000000000\n',
  ],
  [
    '13b',
    4,
    0,
    3,
    '.',
    0,
    '4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n',
    '4444........333...22...1...333\n999999999...22\n7...........22\n....................88888888\n\n666666...666666...666666......4444\n1........1........999999999...0000000000\n',
  ],
  [
    '13c without html',
    8,
    8,
    1,
    '\t',
    0,
    '4444\t333\t22\t1\t333\n999999999\t22\n7\t22\n\t\t\t88888888\n\n666666\t666666\t666666\t4444\n1\t1\t999999999\t0000000000\n',
    '4444\t\t333\t22\t1\t333\n999999999\t22\n7\t\t22\n\t\t\t\t88888888\n\n666666\t666666\t666666\t\t4444\n1\t1\t999999999\t0000000000\n',
  ],
  [
    '14',
    1,
    0,
    2,
    ' ',
    AlignRight,
    '.0\t.3\t2.4\t-5.1\t\n23.0\t12345678.9\t2.4\t-989.4\t\n5.1\t12.0\t2.4\t-7.0\t\n.0\t0.0\t332.0\t8908.0\t\n.0\t-.3\t456.4\t22.1\t\n.0\t1.2\t44.4\t-13.3\t\t',
    '    .0          .3    2.4    -5.1\n  23.0  12345678.9    2.4  -989.4\n   5.1        12.0    2.4    -7.0\n    .0         0.0  332.0  8908.0\n    .0         -.3  456.4    22.1\n    .0         1.2   44.4   -13.3',
  ],
  [
    '14 debug',
    1,
    0,
    2,
    ' ',
    AlignRight | Debug,
    '.0\t.3\t2.4\t-5.1\t\n23.0\t12345678.9\t2.4\t-989.4\t\n5.1\t12.0\t2.4\t-7.0\t\n.0\t0.0\t332.0\t8908.0\t\n.0\t-.3\t456.4\t22.1\t\n.0\t1.2\t44.4\t-13.3\t\t',
    '    .0|          .3|    2.4|    -5.1|\n  23.0|  12345678.9|    2.4|  -989.4|\n   5.1|        12.0|    2.4|    -7.0|\n    .0|         0.0|  332.0|  8908.0|\n    .0|         -.3|  456.4|    22.1|\n    .0|         1.2|   44.4|   -13.3|',
  ],
  ['15a', 4, 0, 0, '.', 0, 'a\t\tb', 'a.......b'],
  ['15b', 4, 0, 0, '.', DiscardEmptyColumns, 'a\t\tb', 'a.......b'],
  ['15c', 4, 0, 0, '.', DiscardEmptyColumns, 'a\v\vb', 'a...b'],
  ['15d', 4, 0, 0, '.', AlignRight | DiscardEmptyColumns, 'a\v\vb', '...ab'],
  [
    '16a',
    100,
    100,
    0,
    '\t',
    0,
    'a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
    'a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
  ],
  [
    '16b',
    100,
    100,
    0,
    '\t',
    DiscardEmptyColumns,
    'a\vb\v\vd\na\vb\v\vd\ve\na\na\vb\vc\vd\na\vb\vc\vd\ve\n',
    'a\tb\td\na\tb\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
  ],
  [
    '16b debug',
    100,
    100,
    0,
    '\t',
    DiscardEmptyColumns | Debug,
    'a\vb\v\vd\na\vb\v\vd\ve\na\na\vb\vc\vd\na\vb\vc\vd\ve\n',
    'a\t|b\t||d\na\t|b\t||d\t|e\na\na\t|b\t|c\t|d\na\t|b\t|c\t|d\t|e\n',
  ],
  [
    '16c',
    100,
    100,
    0,
    '\t',
    DiscardEmptyColumns,
    'a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
    'a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
  ],
  [
    '16c debug',
    100,
    100,
    0,
    '\t',
    DiscardEmptyColumns | Debug,
    'a\tb\t\td\na\tb\t\td\te\na\na\tb\tc\td\na\tb\tc\td\te\n',
    'a\t|b\t|\t|d\na\t|b\t|\t|d\t|e\na\na\t|b\t|c\t|d\na\t|b\t|c\t|d\t|e\n',
  ],
];

/** Writes `src` in pieces of the given sizes, as Go's test does (all at once, byte by byte, fibonacci). */
function writeInPieces(src: string, opts: TabWriterOptions, sizes: (i: number) => number): string {
  const out: string[] = [];
  const w = new TabWriter((s) => out.push(s), opts);
  let i = 0;
  let k = 0;
  while (i < src.length) {
    const n = Math.max(1, sizes(k++));
    w.write(src.slice(i, i + n));
    i += n;
  }
  w.flush();
  return out.join('');
}

describe('tabwriter: Go text/tabwriter test table', () => {
  test.each(goCases)('%s', (_name, minwidth, tabwidth, padding, padchar, flags, src, expected) => {
    const opts = { minwidth, tabwidth, padding, padchar, flags };
    expect(tabwrite(src, opts)).toBe(expected);
    expect(writeInPieces(src, opts, () => 1)).toBe(expected);
    const fib = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55];
    expect(writeInPieces(src, opts, (k) => fib[k % fib.length])).toBe(expected);
  });
});

describe('tabwriter: fleetctl tables (minwidth 0, tabwidth 8, padding 1, padchar tab)', () => {
  test('FLEETCTL.md example: header and one row', () => {
    expect(
      formatTable([
        ['UNIT', 'MACHINE', 'ACTIVE', 'SUB'],
        ['hello.service', '32d3a898.../10.0.0.1', 'active', 'running'],
      ]),
    ).toBe(
      'UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\n' +
        'hello.service\t32d3a898.../10.0.0.1\tactive\trunning\n',
    );
  });

  test('real fleetctl list-units output (fleet docs, three machines, a global unit)', () => {
    // Captured from fleetctl v0.9 output quoted in a kubernetes-on-fleet tutorial.
    const rows = [
      ['UNIT', 'MACHINE', 'ACTIVE', 'SUB'],
      ['fleet-hosts.service', '489ce01d.../172.17.8.103', 'inactive', 'dead'],
      ['kubelet.service', '489ce01d.../172.17.8.103', 'active', 'running'],
      ['kubernetes-controller-manager.service', '489ce01d.../172.17.8.103', 'active', 'running'],
    ];
    expect(formatTable(rows)).toBe(
      'UNIT\t\t\t\t\tMACHINE\t\t\t\tACTIVE\t\tSUB\n' +
        'fleet-hosts.service\t\t\t489ce01d.../172.17.8.103\tinactive\tdead\n' +
        'kubelet.service\t\t\t\t489ce01d.../172.17.8.103\tactive\t\trunning\n' +
        'kubernetes-controller-manager.service\t489ce01d.../172.17.8.103\tactive\t\trunning\n',
    );
  });

  test.each(['', 'a', 'abcdef', 'abcdefg', '12345678', 'x'.repeat(23)])(
    'a column whose widest cell is %p pads to the next multiple of 8 after width + 1',
    (cell) => {
      const padded = Math.ceil((cell.length + 1) / 8) * 8;
      const tabs = Math.ceil((padded - cell.length) / 8);
      expect(formatTable([[cell, 'x']])).toBe(cell + '\t'.repeat(tabs) + 'x\n');
    },
  );

  test('a cell of exactly 8 makes the column 16 wide: one tab after it, two after short cells', () => {
    expect(
      formatTable([
        ['12345678', 'x'],
        ['a', 'y'],
      ]),
    ).toBe('12345678\tx\na\t\ty\n');
    expect(
      formatTable([
        ['1234567', 'x'],
        ['a', 'y'],
      ]),
    ).toBe('1234567\tx\na\ty\n');
  });

  test('the last cell of a line is never padded, and empty tables print nothing', () => {
    expect(formatTable([])).toBe('');
    expect(formatTable([['only']])).toBe('only\n');
    expect(
      formatTable([
        ['a', 'b'],
        ['ccccccccc', 'd'],
      ]),
    ).toBe('a\t\tb\nccccccccc\td\n');
  });

  test('rows with fewer cells end a column block (fields of different counts)', () => {
    expect(formatTable([['aaaaaaaaaa', 'b', 'c'], ['x'], ['y', 'z']])).toBe(
      'aaaaaaaaaa\tb\tc\nx\ny\tz\n',
    );
  });

  test('widths count code points, not UTF-16 units', () => {
    expect(formatTable([['😀😀😀😀😀😀😀', 'x']])).toBe('😀😀😀😀😀😀😀\tx\n');
  });
});
