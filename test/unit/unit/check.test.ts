import fc from 'fast-check';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import type { UnitOption } from '../../../src/unit';
import {
  checkUnitOptions,
  parseUnitFile,
  parseUnitFileNamed,
  serializeUnitFile,
  systemdValue,
  UnitFileError,
} from '../../../src/unit';
import { hostileText, readLikeSystemd } from '../../helpers/hostile';

/**
 * What the API accepts of a unit's options (src/unit/check.ts), and the property it exists for:
 * whatever it accepts is written so that Flotilla's parser reads back the same options and
 * systemd (modelled here by readLikeSystemd, checked against the real one in
 * test/integration/unit-roundtrip.test.ts) reads the same values.
 */

/** The options in the order a serialized file holds them: grouped by section, first seen first. */
function grouped(options: UnitOption[]): UnitOption[] {
  const order: string[] = [];
  for (const o of options) if (!order.includes(o.section)) order.push(o.section);
  return order.flatMap((s) => options.filter((o) => o.section === s));
}

function accepted(options: UnitOption[]): boolean {
  try {
    checkUnitOptions('x.service', options);
    return true;
  } catch (err) {
    // Every refusal is a typed UNIT_FILE_INVALID naming the unit.
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe(ErrorCode.UnitFileInvalid);
    expect((err as FlotillaError).message).toMatch(/^x\.service: /);
    return false;
  }
}

const option = fc.record({
  section: fc.oneof(fc.constantFrom('Unit', 'Service', 'X-Fleet', 'Install'), hostileText(8)),
  name: fc.oneof(fc.constantFrom('Description', 'ExecStart', 'Environment'), hostileText(8)),
  value: hostileText(40),
});
const options = fc.array(option, { minLength: 1, maxLength: 6 });

describe('checkUnitOptions', () => {
  it('accepts only what is read back as itself, by Flotilla and by systemd', () => {
    let kept = 0;
    fc.assert(
      fc.property(options, (opts) => {
        if (!accepted(opts)) return;
        kept++;
        const text = serializeUnitFile(opts);
        expect(parseUnitFile(text)).toEqual(grouped(opts));
        expect(readLikeSystemd(text)).toEqual(
          grouped(opts).map((o) => ({ ...o, value: systemdValue(o.value) })),
        );
      }),
      { numRuns: 3000, interruptAfterTimeLimit: 20_000 },
    );
    // The generator reaches both sides of the check.
    expect(kept).toBeGreaterThan(50);
  });

  it('refuses each way a value, a name or a section could smuggle a line', () => {
    const cases: [string, UnitOption, RegExp][] = [
      ['newline', { section: 'S', name: 'N', value: 'a\nB=c' }, /must follow a line continuation/],
      ['CR', { section: 'S', name: 'N', value: 'a\rB=c' }, /control character/],
      ['NUL', { section: 'S', name: 'N', value: 'a\u0000' }, /control character/],
      ['even backslashes', { section: 'S', name: 'N', value: 'a\\\\\nB=c' }, /must follow/],
      ['trailing backslash', { section: 'S', name: 'N', value: 'a\\' }, /ends in "\\"/],
      ['leading continuation', { section: 'S', name: 'N', value: '\\\na' }, /starts with a line/],
      ['comment continued line', { section: 'S', name: 'N', value: 'a\\\n ;b' }, /comment/],
      ['untrimmed value', { section: 'S', name: 'N', value: ' a' }, /whitespace/],
      ['NBSP at the end', { section: 'S', name: 'N', value: 'a\u00a0' }, /whitespace/],
      ['"]" in a section', { section: 'S]x', name: 'N', value: 'a' }, /"\]"/],
      ['newline in a section', { section: 'S\n[T', name: 'N', value: 'a' }, /control/],
      ['empty section', { section: '', name: 'N', value: 'a' }, /section name is empty/],
      ['"=" in a name', { section: 'S', name: 'N=x', value: 'a' }, /"="/],
      ['newline in a name', { section: 'S', name: 'N\nM', value: 'a' }, /control/],
      ['"[" starting a name', { section: 'S', name: '[N', value: 'a' }, /starts with "\["/],
      ['empty name', { section: 'S', name: '', value: 'a' }, /option name is empty/],
      ['lone surrogate', { section: 'S', name: 'N', value: 'a\ud800' }, /lone surrogate/],
      ['long line', { section: 'S', name: 'N', value: 'a'.repeat(2046) }, /2048 bytes long/],
    ];
    for (const [, o, message] of cases) {
      expect(() => checkUnitOptions('x.service', [o])).toThrow(message);
    }
  });

  it('accepts continuations, tabs, empty values and non-ASCII text', () => {
    expect(() =>
      checkUnitOptions('x.service', [
        { section: 'Service', name: 'ExecStart', value: '/bin/sh -c \\\n  "echo\tä"' },
        { section: 'Service', name: 'Environment', value: '' },
        { section: 'Unit', name: 'Description', value: 'a \\\\\\\n b' },
      ]),
    ).not.toThrow();
  });

  it('refuses a scope unit file: systemd makes scopes only at run time', () => {
    const opts = [{ section: 'Scope', name: 'Slice', value: 'user.slice' }];
    expect(() => checkUnitOptions('session.scope', opts)).toThrow(
      'session.scope: systemd makes scope units only at run time (systemd-run --scope), never from a unit file; run the command from a service instead',
    );
    expect(() => checkUnitOptions('session.slice', opts)).not.toThrow();
  });

  it('refuses an empty unit and one over the limit, saying the size and the key', () => {
    expect(() => checkUnitOptions('x.service', [])).toThrow(/the unit file is empty/);
    const big = [{ section: 'Service', name: 'Environment', value: 'A=' + 'b'.repeat(1000) }];
    expect(() => checkUnitOptions('x.service', big, 1000)).toThrow(
      'x.service: the unit file is 1025 bytes; the limit is 1000 (max_unit_bytes)',
    );
    expect(() => checkUnitOptions('x.service', big, 1025)).not.toThrow();
  });
});

describe('parseUnitFile on any text', () => {
  it('returns options or throws UnitFileError, nothing else', () => {
    fc.assert(
      fc.property(hostileText(200), (text) => {
        try {
          parseUnitFile(text);
        } catch (err) {
          expect(err).toBeInstanceOf(UnitFileError);
        }
      }),
      { numRuns: 2000, interruptAfterTimeLimit: 10_000 },
    );
  });

  it('names the file when it has no section or no option', () => {
    expect(() => parseUnitFileNamed('a.service', 'ExecStart=/bin/true\n')).toThrow(
      'a.service:1: the file has no [Section] header',
    );
    expect(() => parseUnitFileNamed('a.service', '# x\n[Service]\n')).toThrow(
      'a.service:1: the file has no options',
    );
  });
});
