/**
 * Golden histories (Temporal's replay tests are the model): one history file per event schema
 * version Flotilla shipped, made by that version's own code (test/fixtures/history/make.sh)
 * and checked in, next to what folding and replaying it gave when it was made. This version
 * must read every one of them the same way: a change that refuses an old log, or folds it into
 * another state, or tells a unit's timeline differently, fails here.
 *
 * After an intended change of what an old log means (rare: the log is append-only), rewrite
 * the expectations with FLOTILLA_GOLDEN_UPDATE=1 and say why in the commit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SCHEMA_VERSION } from '../../../src/events/types';
import { lifecycleOf, statusOf } from '../../../src/engine/lifecycle';
import type { ClusterState } from '../../../src/engine/state';
import { readHistoryFile, streamHistoryFile } from '../../../src/history/export';
import { describeEvent } from '../../../src/history/describe';
import {
  lastIndex,
  stateAt,
  StreamingState,
  StreamingTimeline,
  unitTimeline,
  verify,
} from '../../../src/history/replay';
import { checkSchema } from '../../../src/history/schema';

const DIR = path.join(__dirname, '..', '..', 'fixtures', 'history');
const UPDATE = process.env.FLOTILLA_GOLDEN_UPDATE === '1';

/** The folded state as plain, stable data: what `list-unit-files`, `status` and replay show. */
function summary(s: ClusterState): unknown {
  return {
    index: s.index,
    unknownEvents: s.unknownEvents,
    units: [...s.units.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((u) => ({
        name: u.name,
        hash: u.hash,
        target: u.target,
        machine: u.machine ?? null,
        ...statusOf(lifecycleOf(s, u)),
        why: u.why ?? null,
        lastFailure: u.lastFailure ?? null,
      })),
    machines: [...s.machines.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((m) => ({ id: m.id, presence: m.presence })),
    reported: [...s.reported.entries()]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([unit, byMachine]) => ({
        unit,
        states: [...byMachine.entries()].map(([m, st]) => `${m} ${st.load}/${st.active}/${st.sub}`),
      })),
  };
}

interface Expected {
  schema: number;
  final: unknown;
  /** The state at the middle of the log (replay --at). */
  middle: { at: number; state: unknown };
  /** `replay --unit` of every unit the log names: each event described, and the state it led to. */
  timelines: Record<string, string[]>;
}

function replayed(file: string): Expected {
  const h = readHistoryFile(file);
  checkSchema(h.restored.tail, { source: file });
  verify(h.restored);
  const r = h.restored;
  const last = lastIndex(r);
  const at = r.tail[Math.floor(r.tail.length / 2)]?.index ?? last;
  const names = new Set<string>();
  for (const e of r.tail) if ('unit' in e) names.add(e.unit);
  for (const n of stateAt(r).units.keys()) names.add(n);
  const timelines: Record<string, string[]> = {};
  for (const n of [...names].sort())
    timelines[n] = unitTimeline(r, n).entries.map((t) => `${describeEvent(t.event)} → ${t.phase}`);
  return {
    schema: h.header.schema,
    final: summary(stateAt(r)),
    middle: { at, state: summary(stateAt(r, at)) },
    timelines,
  };
}

const fixtures = fs
  .readdirSync(DIR)
  .filter((f) => /^schema-v\d+\.ndjson$/.test(f))
  .sort();

describe('golden histories', () => {
  it('has one history per schema version shipped', () => {
    const versions = fixtures.map((f) => Number(/v(\d+)/.exec(f)![1]));
    expect(versions).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
  });

  it.each(fixtures)('%s replays as it did when it was made', (name) => {
    const file = path.join(DIR, name);
    const expectedFile = file.replace(/\.ndjson$/, '.expected.json');
    const got = replayed(file);
    if (UPDATE) fs.writeFileSync(expectedFile, JSON.stringify(got, null, 2) + '\n');
    const expected = JSON.parse(fs.readFileSync(expectedFile, 'utf8')) as Expected;
    expect(got.schema).toBe(Number(/v(\d+)/.exec(name)![1]));
    expect(got).toEqual(expected);
  });

  it.each(fixtures)(
    '%s: replay FILE and replay FILE --unit, folded while the file is read, tell the same',
    (name) => {
      const file = path.join(DIR, name);
      const expected = JSON.parse(
        fs.readFileSync(file.replace(/\.ndjson$/, '.expected.json'), 'utf8'),
      ) as Expected;
      for (const [point, want] of [
        [undefined, expected.final],
        [{ spec: String(expected.middle.at), index: expected.middle.at }, expected.middle.state],
      ] as const) {
        const s = new StreamingState(point);
        streamHistoryFile(file, s);
        s.finish();
        expect(summary(s.result(s.until('--at')).state)).toEqual(want);
      }
      for (const [unit, lines] of Object.entries(expected.timelines)) {
        // Only the lines about the unit (or a machine) are parsed, the others read as stubs.
        const t = new StreamingTimeline(unit, undefined);
        streamHistoryFile(file, t, { keepIfContains: t.keep });
        t.finish();
        const got = t.result(Infinity).entries.map((e) => `${describeEvent(e.event)} → ${e.phase}`);
        expect(got).toEqual(lines);
      }
    },
  );
});
