/**
 * `flotilla replay FILE` and `replay FILE --unit NAME` fold a history file while it is read
 * (StreamingState, StreamingTimeline), and `--unit` reads the lines not about the unit as stubs.
 * These must tell exactly what the whole read tells (`stateAt`/`unitTimeline` over
 * `resolvePoint`): the same state, timeline, point and refusals, for histories from the first
 * event or behind a snapshot, at indexes and times — checked here on random histories.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { applyEvent } from '../../../src/engine/fold';
import { lifecycleOf, phaseName, statusOf } from '../../../src/engine/lifecycle';
import { encodeState, toSnapshotDoc } from '../../../src/engine/snapshot';
import { emptyState, type ClusterState } from '../../../src/engine/state';
import type { EventBody, FlotillaEvent, UnitRuntimeState } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';
import { describeEvent } from '../../../src/history/describe';
import { readHistoryFile, streamHistoryFile, writeHistoryFile } from '../../../src/history/export';
import {
  lastIndex,
  parsePoint,
  resolvePoint,
  stateAt,
  StreamingState,
  StreamingTimeline,
  unitTimeline,
  type TimelineEntry,
} from '../../../src/history/replay';
import { checkSchema } from '../../../src/history/schema';
import type { UnitRecord } from '../../../src/engine/state';
import type { Restored } from '../../../src/store/types';

// A unit name JSON escapes (systemd's \x2d), and one that another name contains.
const UNITS = ['a.service', 'b\\x2dc.service', 'g.service', 'aa.service'];
const MACHINES = ['m1', 'm2'];
const plainOptions = [{ section: 'Service', name: 'ExecStart', value: '/bin/true a.service' }];
const globalOptions = [
  { section: 'Service', name: 'ExecStart', value: '/bin/true' },
  { section: 'X-Fleet', name: 'Global', value: 'true' },
];

const unit = fc.constantFrom(...UNITS);
const machine = fc.constantFrom(...MACHINES);
const target = fc.constantFrom('inactive' as const, 'loaded' as const, 'launched' as const);
const runtime: fc.Arbitrary<UnitRuntimeState | null> = fc.oneof(
  fc.constant(null),
  fc.record({
    load: fc.constantFrom('loaded', 'not-found'),
    active: fc.constantFrom('active', 'inactive', 'failed'),
    sub: fc.constant('x'),
    hash: fc.constant('h'),
    result: fc.constant('exit-code'),
    exitStatus: fc.nat(3),
  }),
);

const body: fc.Arbitrary<EventBody> = fc.oneof(
  fc.record({ unit, target }).map(({ unit, target }): EventBody => ({
    type: 'UnitSubmitted',
    unit,
    options: unit === 'g.service' ? globalOptions : plainOptions,
    hash: 'h',
    target,
  })),
  fc
    .record({ unit, target })
    .map(({ unit, target }): EventBody => ({ type: 'UnitTargetSet', unit, target })),
  fc
    .record({ unit, machine })
    .map(({ unit, machine }): EventBody => ({ type: 'UnitScheduled', unit, machine, reason: 'r' })),
  fc.record({ unit, machine, lost: fc.boolean() }).map(({ unit, machine, lost }): EventBody => ({
    type: 'UnitUnscheduled',
    unit,
    machine,
    reason: lost ? 'machine lost' : 'target inactive',
  })),
  fc
    .record({ unit, machine, state: runtime })
    .map(({ unit, machine, state }): EventBody => ({ type: 'UnitObserved', unit, machine, state })),
  unit.map((unit): EventBody => ({ type: 'UnitUnplaceable', unit, reason: 'no machines' })),
  unit.map((unit): EventBody => ({ type: 'UnitDestroyed', unit })),
  machine.map((machine): EventBody => ({ type: 'MachineDown', machine, reason: 'gone' })),
  machine.map((machine): EventBody => ({
    type: 'MachineUp',
    machine,
    ip: '10.0.0.1',
    metadata: {},
  })),
  machine.map((machine): EventBody => ({ type: 'MachineMetadataSet', machine, metadata: {} })),
);

/** A history: events (times not always increasing), maybe behind a snapshot of the first `cut`. */
const history = fc
  .record({
    bodies: fc.array(body, { minLength: 1, maxLength: 50 }),
    steps: fc.array(fc.integer({ min: -3, max: 10 }), { minLength: 50, maxLength: 50 }),
    cut: fc.nat(50),
    keep: fc.nat(50),
    snapshot: fc.boolean(),
  })
  .map(({ bodies, steps, cut, keep, snapshot }): Restored => {
    let time = 1_000_000;
    const events = bodies.map((b, i): FlotillaEvent => ({
      ...b,
      index: i + 1,
      epoch: 1,
      time: (time += steps[i]),
      v: SCHEMA_VERSION,
    }));
    const at = Math.min(cut, events.length);
    if (!snapshot || at === 0) return { tail: events };
    // The log as retained: from the first event, or some event at or before the snapshot's.
    const s = emptyState();
    for (const e of events.slice(0, at)) applyEvent(s, e);
    const from = Math.max(0, at - keep);
    return {
      snapshot: { index: at, epoch: 1, data: encodeState(s) },
      tail: events.slice(from),
    };
  });

function summary(s: ClusterState): unknown {
  return {
    doc: toSnapshotDoc(s),
    unknownEvents: s.unknownEvents,
    lifecycles: [...s.units.values()].map((u) => [u.name, statusOf(lifecycleOf(s, u)), u.why]),
  };
}

function timelineView(t: {
  entries: TimelineEntry[];
  record?: UnitRecord;
  state: ClusterState;
}): unknown {
  return {
    entries: t.entries.map((e) => `${describeEvent(e.event)} → ${e.phase}`),
    now: t.record && [phaseName(lifecycleOf(t.state, t.record)), t.record.lastFailure],
    index: t.state.index,
  };
}

/** What `replay` tells from the whole history read (as it always did). */
function whole(r: Restored, spec: string | undefined, unit?: string): unknown {
  try {
    const until = spec === undefined ? Infinity : resolvePoint(r, spec, '--at');
    if (until !== Infinity && until > lastIndex(r)) return { beyond: until };
    if (unit) return timelineView(unitTimeline(r, unit, until));
    const s = stateAt(r, until);
    const time = s.index > 0 ? r.tail.find((e) => e.index === s.index)?.time : undefined;
    return { state: summary(s), time };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** What it tells folding while the file is read. */
function streamed(file: string, spec: string | undefined, unit?: string): unknown {
  try {
    const point = spec === undefined ? undefined : parsePoint(spec, '--at');
    const replay = unit ? new StreamingTimeline(unit, point) : new StreamingState(point);
    const keepIfContains = replay instanceof StreamingTimeline ? replay.keep : undefined;
    streamHistoryFile(file, replay, { keepIfContains });
    replay.finish();
    const until = replay.until('--at');
    if (until !== Infinity && until > replay.lastIndex) return { beyond: until };
    if (replay instanceof StreamingTimeline) return timelineView(replay.result(until));
    const { state, time } = replay.result(until);
    return { state: summary(state), time };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

describe('replay folding a history file while reading it', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-streaming-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tells the same state and timelines as the whole read, at every point', () => {
    const iso = (t: number): string => new Date(t).toISOString();
    fc.assert(
      fc.property(history, (r) => {
        const file = path.join(dir, 'h.ndjson');
        writeHistoryFile(file, r, 'test');
        const back = readHistoryFile(file).restored;
        const times = r.tail.map((e) => e.time);
        const t0 = Math.min(...times, 1_000_000);
        const specs: (string | undefined)[] = [
          undefined,
          ...Array.from({ length: lastIndex(r) + 2 }, (_, i) => String(i + 1)),
          ...[t0 - 1, ...times, Math.max(...times, t0) + 1].map(iso),
        ];
        for (const spec of specs) {
          expect(streamed(file, spec)).toEqual(whole(back, spec));
          for (const u of UNITS) expect(streamed(file, spec, u)).toEqual(whole(back, spec, u));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('refuses an unknown event as checkSchema does, and a damaged file first', () => {
    const events: FlotillaEvent[] = [1, 2, 3].map((index) => ({
      type: 'UnitDestroyed',
      unit: 'a.service',
      index,
      epoch: 1,
      time: index,
      v: SCHEMA_VERSION,
    }));
    (events[1] as { type: string }).type = 'UnitTeleported';
    const file = path.join(dir, 'unknown.ndjson');
    writeHistoryFile(file, { tail: events }, 'test');
    let want = '';
    try {
      checkSchema(readHistoryFile(file).restored.tail);
    } catch (e) {
      want = (e as Error).message;
    }
    expect(want).toMatch(/event 2 has event type UnitTeleported/);
    for (const replay of [
      new StreamingState(undefined),
      new StreamingTimeline('b.service', undefined),
    ]) {
      const keepIfContains = replay instanceof StreamingTimeline ? replay.keep : undefined;
      streamHistoryFile(file, replay, { keepIfContains });
      expect(() => replay.finish()).toThrow(want);
    }
    const allowed = new StreamingState(undefined, { allowUnknown: true });
    streamHistoryFile(file, allowed);
    allowed.finish();
    expect(allowed.result(Infinity).state.unknownEvents).toBe(1);

    // A damaged line after the unknown event: the file is refused for it, as a whole read does.
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[3] = lines[3].replace('"index":3', '"index":1');
    fs.writeFileSync(file, lines.join('\n'));
    expect(() => readHistoryFile(file)).toThrow(/event index 1 does not follow 2/);
    const t = new StreamingTimeline('b.service', undefined);
    expect(() => streamHistoryFile(file, t, { keepIfContains: t.keep })).toThrow(
      /:4: event index 1 does not follow 2/,
    );
  });
});
