import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { foldAll } from '../../../src/engine/fold';
import { encodeState } from '../../../src/engine/snapshot';
import { isFlotillaError, ErrorCode } from '../../../src/errors';
import type { EventBody, FlotillaEvent } from '../../../src/events/types';
import { readHistoryFile, writeHistoryFile } from '../../../src/history/export';
import { diff, resolvePoint, stateAt, unitTimeline, verify } from '../../../src/history/replay';
import { checkSchema } from '../../../src/history/schema';
import { readHistory } from '../../../src/history/source';
import { refusingPort } from '../../harness/ports';

const opts = [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }];
const failed = {
  load: 'loaded',
  active: 'failed',
  sub: 'failed',
  hash: 'h1',
  result: 'exit-code',
  exitStatus: 3,
};
const bodies: EventBody[] = [
  { type: 'UnitSubmitted', unit: 'a.service', options: opts, hash: 'h1', target: 'inactive' },
  { type: 'UnitTargetSet', unit: 'a.service', target: 'launched' },
  { type: 'UnitScheduled', unit: 'a.service', machine: 'm1', reason: 'least loaded' },
  { type: 'UnitSubmitted', unit: 'b.service', options: opts, hash: 'h2', target: 'loaded' },
  { type: 'UnitObserved', unit: 'a.service', machine: 'm1', state: failed },
  { type: 'MachineDown', machine: 'm1', reason: 'no heartbeat' },
  { type: 'UnitUnscheduled', unit: 'a.service', machine: 'm1', reason: 'machine lost' },
  { type: 'UnitDestroyed', unit: 'b.service' },
];
const log: FlotillaEvent[] = bodies.map(
  (b, i) =>
    ({ ...b, index: i + 1, epoch: 1, time: Date.UTC(2026, 0, 1, 0, 0, i), v: 2 }) as FlotillaEvent,
);

describe('replay', () => {
  it('folds the whole log from the start up to a point', () => {
    const at3 = stateAt({ tail: log }, 3);
    expect(at3.units.get('a.service')).toMatchObject({ target: 'launched', machine: 'm1' });
    expect(at3.units.has('b.service')).toBe(false);
    const all = stateAt({ tail: log });
    expect(all.units.get('a.service')!.machine).toBeUndefined();
    expect(all.units.has('b.service')).toBe(false);
  });

  it('resolves an RFC 3339 time to the last event at or before it; refuses 0, -1 and nonsense', () => {
    expect(resolvePoint({ tail: log }, '2026-01-01T00:00:03.500Z', '--at')).toBe(4);
    expect(() => resolvePoint({ tail: log }, '0', '--at')).toThrow('indexes start at 1');
    expect(() => resolvePoint({ tail: log }, '-1', '--at')).toThrow('RFC 3339');
    expect(() => resolvePoint({ tail: log }, '2025-01-01T00:00:00Z', '--at')).toThrow(
      'before the first event',
    );
  });

  it('starts from the snapshot when the log before it is compacted, and gives the same state', () => {
    const snap = { index: 4, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
    const fromSnap = stateAt({ snapshot: snap, tail: log.slice(4) });
    expect(encodeState(fromSnap)).toEqual(encodeState(foldAll(log)));
    expect(() => stateAt({ snapshot: snap, tail: log.slice(4) }, 2)).toThrow(
      "events before index 4 were compacted behind the snapshot at 4 (raise flotillad's log_retention to keep more history)",
    );
  });

  it("gives a unit's timeline with the failure, its machine's loss and the state each led to", () => {
    const t = unitTimeline({ tail: log }, 'a.service');
    expect(t.entries.map((x) => `${x.event.type} → ${x.phase}`)).toEqual([
      'UnitSubmitted → inactive',
      'UnitTargetSet → waiting',
      'UnitScheduled → scheduled',
      'UnitObserved → failed',
      'MachineDown → failed',
      // the lost machine's report still counts until its agent is heard from again
      'UnitUnscheduled → failed',
    ]);
    expect(t.record!.lastFailure).toMatchObject({
      result: 'exit-code',
      exitStatus: 3,
      machine: 'm1',
    });
  });

  it('diffs two points', () => {
    const d = diff({ tail: log }, 1, 5);
    expect(d).toEqual([
      {
        kind: 'changed',
        what: 'unit a.service',
        changes: [
          'target: inactive → launched',
          'machine: - → m1',
          'state: inactive → failed',
          'failure: - → exit-code (exit 3) on m1',
        ],
      },
      {
        kind: 'added',
        what: 'unit b.service',
        changes: ['hash: h2', 'target: loaded', 'machine: -', 'state: waiting'],
      },
    ]);
  });

  it('verifies a history, and names the first event where a stored snapshot diverges', () => {
    const good = { index: 4, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
    expect(verify({ snapshot: good, tail: log })).toEqual({ events: 8, snapshotChecked: true });
    const tampered = foldAll(log.slice(0, 4));
    tampered.units.get('a.service')!.target = 'loaded';
    const bad = { index: 4, epoch: 1, data: encodeState(tampered) };
    let caught: unknown;
    try {
      verify({ snapshot: bad, tail: log });
    } catch (e) {
      caught = e;
    }
    expect(isFlotillaError(caught, ErrorCode.HistoryDiverged)).toBe(true);
    expect((caught as Error).message).toContain('event 3 (UnitScheduled a.service)');
  });

  it('checks a snapshot taken at a transient event, which the log does not hold, at the durable events before it', () => {
    // Durable events 1..4, then (transient 5, not stored) the snapshot at 5, then 6..
    const tail = log.map((e, i) => (i < 4 ? e : { ...e, index: e.index + 1 }));
    const at5 = { index: 5, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
    expect(verify({ snapshot: at5, tail })).toEqual({ events: 8, snapshotChecked: true });
    // The newest event is before the snapshot (it was taken at a transient event at the end).
    const end = { index: 12, epoch: 1, data: encodeState(foldAll(log)) };
    expect(verify({ snapshot: end, tail: log })).toEqual({ events: 8, snapshotChecked: true });
    const tampered = foldAll(log.slice(0, 4));
    tampered.units.get('a.service')!.target = 'loaded';
    expect(() => verify({ snapshot: { ...at5, data: encodeState(tampered) }, tail })).toThrow(
      /the stored snapshot at 5 differs for unit a\.service/,
    );
  });

  it('refuses an unknown event type or a newer schema version, naming it, unless allowed', () => {
    const unknown = { ...log[0], index: 9, type: 'UnitTeleported' } as unknown as FlotillaEvent;
    expect(() => checkSchema([...log, unknown])).toThrow(/event 9 has event type UnitTeleported/);
    const newer = { ...log[0], v: 99 } as FlotillaEvent;
    expect(() => checkSchema([newer])).toThrow(/schema version 99 of UnitSubmitted/);
    expect(() => checkSchema([newer], { allowUnknown: true })).not.toThrow();
  });

  it('writes and reads a history file; a missing source creates nothing and says so', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-history-'));
    try {
      const file = path.join(dir, 'h.jsonl');
      const snap = { index: 4, epoch: 1, data: encodeState(foldAll(log.slice(0, 4))) };
      writeHistoryFile(file, { snapshot: snap, tail: log }, 'prod');
      const back = readHistoryFile(file);
      expect(back.header).toMatchObject({
        format: 'flotilla-history',
        cluster: 'prod',
        events: 8,
      });
      expect(back.restored.tail).toEqual(log);
      expect(Buffer.from(back.restored.snapshot!.data)).toEqual(Buffer.from(snap.data));
      const typo = path.join(dir, 'no-such-dir');
      await expect(readHistory({ kind: 'data-dir', dir: typo })).rejects.toThrow('does not exist');
      expect(fs.existsSync(typo)).toBe(false);
      await expect(readHistory({ kind: 'data-dir', dir })).rejects.toThrow('holds no cluster');
      await expect(readHistory({ kind: 'file', file: typo })).rejects.toThrow('cannot read');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('reading a history from an etcd that is not there', () => {
  it('is STORE_UNAVAILABLE naming the cluster and endpoint, with the hint the CLI gives', async () => {
    const refused = await refusingPort();
    try {
      const endpoint = `http://127.0.0.1:${refused.port}`;
      const err = await readHistory({
        kind: 'etcd',
        options: { endpoints: [endpoint], cluster: 'prod', callTimeoutMs: 2000 },
        unreachableHint: 'give --data-dir',
      }).catch((e: unknown) => e);
      expect(isFlotillaError(err) && err.code).toBe(ErrorCode.StoreUnavailable);
      const message = (err as Error).message;
      expect(message.startsWith(`cannot read cluster "prod" at ${endpoint}: `)).toBe(true);
      expect(message).toMatch(/ECONNREFUSED/);
      expect(message.endsWith('; give --data-dir')).toBe(true);
      expect(message).not.toMatch(/Resolution note/);
    } finally {
      await refused.close();
    }
  });
});
