import { ErrorCode } from '../../../src/errors';
import type { FlotillaEvent } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';
import { decodeRawPiece, encodeBatch, LogAssembler, packTxns } from '../../../src/store/etcd/batch';
import type { RawEvent } from '../../../src/store/types';
import { EtcdKeys, prefixEnd } from '../../../src/store/etcd/keys';
import { durableEvents } from '../../store-contract';

const keys = new EtcdKeys('t');
const quiet = () => {
  const warnings: string[] = [];
  return { warnings, logger: { warn: (m: string) => warnings.push(m) } };
};

describe('etcd log keys', () => {
  it('sort in index order, with the parts of a batch between it and the next batch', () => {
    const ks = [keys.log(10), keys.log(9, 1), keys.log(100), keys.log(9), keys.log(10, 2)];
    const sorted = [...ks].sort(Buffer.compare).map((k) => k.toString().slice(keys.root.length));
    expect(sorted).toEqual([
      'log/0000000000000009',
      'log/0000000000000009.0001',
      'log/0000000000000010',
      'log/0000000000000010.0002',
      'log/0000000000000100',
    ]);
    expect(keys.parseLog(keys.log(9, 1))).toEqual({ batch: 9, part: 1 });
    expect(Buffer.compare(keys.log(99999), keys.logEnd)).toBeLessThan(0);
    expect(prefixEnd(Buffer.from('a/'))).toEqual(Buffer.from('a0'));
  });

  it('puts "manifest" after every snapshot chunk set', () => {
    const set = keys.chunkSet(123, 4, 0);
    expect(Buffer.compare(keys.chunk(set, 999), keys.manifest)).toBeLessThan(0);
    expect(Buffer.compare(keys.snapshotPrefix, keys.chunkSetStart(set))).toBeLessThan(0);
  });
});

describe('encodeBatch / LogAssembler', () => {
  it('keeps a small batch in one key', () => {
    const pieces = encodeBatch(keys, durableEvents(5, 7), 64 * 1024, 1 << 30);
    expect(pieces.map((p) => p.key.toString())).toEqual([keys.log(5).toString()]);
    expect(JSON.parse(pieces[0].value.toString())).toMatchObject({ batch: 5, part: 0, parts: 1 });
  });

  it('cuts a batch bigger than a chunk into parts under the chunk size and reads it back', () => {
    const events = durableEvents(1, 2000);
    const pieces = encodeBatch(keys, events, 8 * 1024, 1 << 30);
    expect(pieces.length).toBeGreaterThan(10);
    for (const p of pieces) expect(p.value.length).toBeLessThanOrEqual(8 * 1024);
    const asm = new LogAssembler(keys, quiet().logger);
    for (const p of pieces) asm.add(p.key, p.value);
    expect(asm.finish()).toEqual(events);
  });

  it('packs pieces into txns under the byte and op limits, in order', () => {
    const pieces = encodeBatch(keys, durableEvents(1, 2000), 8 * 1024, 1 << 30);
    const txns = packTxns(pieces, 20 * 1024, 2);
    expect(txns.flat()).toEqual(pieces);
    for (const t of txns) {
      expect(t.length).toBeLessThanOrEqual(2);
      expect(t.reduce((n, p) => n + p.key.length + p.value.length, 0)).toBeLessThanOrEqual(
        20 * 1024,
      );
    }
  });

  it('refuses an append over maxAppendBytes, and an event bigger than a chunk', () => {
    expect(() => encodeBatch(keys, durableEvents(1, 100), 4096, 2048)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
    const huge = { ...durableEvents(1, 1)[0], unit: 'x'.repeat(5000) };
    expect(() => encodeBatch(keys, [huge], 4096, 1 << 30)).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
  });

  it('drops an incomplete last batch with a warning (its append never completed)', () => {
    const first = encodeBatch(keys, durableEvents(1, 3), 8 * 1024, 1 << 30);
    const big = encodeBatch(keys, durableEvents(4, 2000), 8 * 1024, 1 << 30);
    const { warnings, logger } = quiet();
    const asm = new LogAssembler(keys, logger);
    for (const p of [...first, ...big.slice(0, 3)]) asm.add(p.key, p.value);
    expect(asm.finish().map((e) => e.index)).toEqual([1, 2, 3]);
    expect(warnings).toEqual([expect.stringMatching(/incomplete last batch/)]);
  });

  it('reports an incomplete batch followed by another one as STORE_CORRUPT naming its key', () => {
    const big = encodeBatch(keys, durableEvents(1, 2000), 8 * 1024, 1 << 30);
    const next = encodeBatch(keys, durableEvents(2001, 2001), 8 * 1024, 1 << 30);
    const asm = new LogAssembler(keys, quiet().logger);
    for (const p of big.slice(0, 2)) asm.add(p.key, p.value);
    expect(() => asm.add(next[0].key, next[0].value)).toThrow(
      expect.objectContaining({
        code: ErrorCode.StoreCorrupt,
        details: { key: keys.log(1).toString() },
      }),
    );
  });

  it('reports overlapping indexes and unreadable values as STORE_CORRUPT', () => {
    const a = encodeBatch(keys, durableEvents(1, 5), 8 * 1024, 1 << 30);
    const b = encodeBatch(keys, durableEvents(5, 6), 8 * 1024, 1 << 30);
    const asm = new LogAssembler(keys, quiet().logger);
    asm.add(a[0].key, a[0].value);
    expect(() => asm.add(b[0].key, b[0].value)).toThrow(
      expect.objectContaining({ code: ErrorCode.StoreCorrupt }),
    );
    expect(() =>
      new LogAssembler(keys, quiet().logger).add(keys.log(1), Buffer.from('{not json')),
    ).toThrow(expect.objectContaining({ code: ErrorCode.StoreCorrupt }));
  });
});

/** Events as the engine writes them: the body first, then index, epoch, time and v. */
function engineEvents(from: number, to: number): FlotillaEvent[] {
  const nasty = [
    'plain',
    'quote " and \\ backslash',
    'braces } { ] [ in a string',
    'ünïcødé ✓',
    '\\"',
    '',
  ];
  const out: FlotillaEvent[] = [];
  for (let i = from; i <= to; i++) {
    const body =
      i % 3 === 0
        ? { type: 'UnitTargetSet', unit: `u${i}.service`, target: 'launched' }
        : {
            type: 'UnitObserved',
            unit: `u${i}.service`,
            machine: nasty[i % nasty.length],
            state:
              i % 2 === 0
                ? null
                : {
                    active: 'failed',
                    sub: 'failed',
                    load: 'loaded',
                    result: `exit-code ${nasty[(i + 1) % nasty.length]}`,
                  },
          };
    out.push({
      ...body,
      index: i,
      epoch: 3,
      time: 1_700_000_000_000 + i,
      v: SCHEMA_VERSION,
    } as FlotillaEvent);
  }
  return out;
}

function readRaw(pieces: { key: Buffer; value: Buffer }[]): RawEvent[] {
  const asm = new LogAssembler<RawEvent>(keys, quiet().logger, decodeRawPiece);
  for (const p of pieces) asm.add(p.key, p.value);
  return asm.finish();
}

const jsonOf = (e: RawEvent): string => Buffer.from(e.json).toString('utf8');

describe('decodeRawPiece (a copy of the log, unparsed)', () => {
  it('gives each event its stored JSON, byte for byte, and its index, over multi-part batches', () => {
    const events = engineEvents(1, 3000);
    const pieces = encodeBatch(keys, events, 8 * 1024, 1 << 30);
    expect(pieces.length).toBeGreaterThan(10);
    const raw = readRaw(pieces);
    expect(raw.map((e) => e.index)).toEqual(events.map((e) => e.index));
    expect(raw.map(jsonOf)).toEqual(events.map((e) => JSON.stringify(e)));
  });

  it('reads an empty batch, and pieces or events in another layout by parsing them', () => {
    // Metadata first (not where the engine puts it): parsed, written again with the same content.
    const other = durableEvents(10, 12);
    const raw = readRaw(encodeBatch(keys, other, 64 * 1024, 1 << 30));
    expect(raw.map((e) => JSON.parse(jsonOf(e)) as unknown)).toEqual(other);
    // The wrapper's fields in another order, with spaces.
    const ev = engineEvents(20, 21);
    const value = Buffer.from(
      JSON.stringify({ parts: 1, part: 0, batch: 20, events: ev }, null, 1),
    );
    expect(readRaw([{ key: keys.log(20), value }]).map(jsonOf)).toEqual(
      ev.map((e) => JSON.stringify(e)),
    );
    const empty = Buffer.from('{"batch":30,"part":0,"parts":1,"events":[]}');
    expect(readRaw([{ key: keys.log(30), value: empty }])).toEqual([]);
  });

  it('refuses what LogAssembler refuses: a value not matching its key, overlapping indexes, not JSON', () => {
    const [p] = encodeBatch(keys, engineEvents(5, 6), 64 * 1024, 1 << 30);
    expect(() => readRaw([{ key: keys.log(4), value: p.value }])).toThrow(
      expect.objectContaining({ code: ErrorCode.StoreCorrupt }),
    );
    const [q] = encodeBatch(keys, engineEvents(6, 7), 64 * 1024, 1 << 30);
    expect(() => readRaw([p, q])).toThrow(
      expect.objectContaining({ code: ErrorCode.StoreCorrupt }),
    );
    const cut = Buffer.from(p.value.subarray(0, p.value.length - 3));
    expect(() => readRaw([{ key: p.key, value: cut }])).toThrow(
      expect.objectContaining({ code: ErrorCode.StoreCorrupt }),
    );
  });
});
