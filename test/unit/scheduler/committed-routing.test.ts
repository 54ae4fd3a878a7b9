/**
 * The engine feeds the scheduler's own decisions back to it once they are committed (place for
 * UnitScheduled, unplace for UnitUnscheduled), possibly with other plans run in between (effects
 * are applied in turns). Whatever the interleaving, the scheduler must end where the folded log
 * says every unit is, and a unit displaced by Replaces= must end up placed when it fits.
 */
import fc from 'fast-check';
import type { Decision, SchedUnit } from '../../../src/scheduler';
import { Scheduler } from '../../../src/scheduler';

const MACHINES = ['m1', 'm2', 'm3'];
const NAMES = ['a.service', 'b.service', 'c.service', 'd.service', 'e.service', 'f.service'];

const unitArb = (name: string) =>
  fc
    .record({
      replaces: fc.uniqueArray(fc.constantFrom(...NAMES), { maxLength: 2 }),
      conflicts: fc.uniqueArray(fc.constantFrom(...NAMES), { maxLength: 1 }),
    })
    .map((r): SchedUnit => ({
      name,
      target: 'launched',
      requirements: {
        machineOf: [],
        metadata: {},
        conflicts: r.conflicts.filter((x) => x !== name),
        global: false,
        replaces: r.replaces.filter((x) => x !== name),
      },
    }));

/** Steps: 0 submit the next unit, 1 plan, 2 commit one event of the oldest batch. */
const scenarioArb = fc.record({
  units: fc.tuple(...NAMES.map(unitArb)),
  steps: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 10, maxLength: 60 }),
});

function run(units: SchedUnit[], steps: number[]) {
  const s = new Scheduler();
  for (const id of MACHINES) s.upsertMachine({ id, metadata: {} });
  const fold = new Map<string, string>();
  const inFlight: Decision[][] = [];
  let next = 0;
  // Like the engine: a plan runs only once the previous plan's decisions are committed.
  const plan = () => {
    if (inFlight.length > 0) return;
    const d = s.plan();
    if (d.length > 0) inFlight.push(d);
  };
  // The engine's route() for a committed decision, after the fold.
  const commitOne = () => {
    const batch = inFlight[0];
    const d = batch.shift()!;
    if (batch.length === 0) inFlight.shift();
    if (d.kind === 'schedule') {
      fold.set(d.unit, d.machine);
      s.place(d.unit, d.machine);
    } else {
      if (fold.get(d.unit) === d.machine) fold.delete(d.unit);
      s.unplace(d.unit, d.machine);
    }
  };
  for (const step of steps) {
    if (step === 0 && next < units.length) s.upsertUnit(units[next++]);
    else if (step === 1) plan();
    else if (step === 2 && inFlight.length > 0) commitOne();
  }
  while (next < units.length) s.upsertUnit(units[next++]);
  // Quiesce: plan, commit everything, until nothing is decided.
  for (let i = 0; i < 100; i++) {
    plan();
    if (inFlight.length === 0) break;
    while (inFlight.length > 0) commitOne();
  }
  return { s, fold };
}

it('the scheduler ends where the folded log says, whatever plans run between commits', () => {
  fc.assert(
    fc.property(scenarioArb, ({ units, steps }) => {
      const { s, fold } = run(units, steps);
      for (const u of units)
        expect([u.name, s.placementOf(u.name)]).toEqual([u.name, fold.get(u.name)]);
    }),
    { numRuns: 2000 },
  );
});

it('no unit is left waiting when the units could all run (a displaced unit is placed again)', () => {
  fc.assert(
    fc.property(scenarioArb, ({ units, steps }) => {
      const { s, fold } = run(units, steps);
      // A fresh scheduler from the same placement: if it places every unit, so must this one.
      const fresh = new Scheduler();
      for (const id of MACHINES) fresh.upsertMachine({ id, metadata: {} });
      for (const u of units) fresh.upsertUnit(u);
      for (const [u, m] of fold) fresh.place(u, m);
      fresh.commit(fresh.plan());
      if (fresh.waitingUnits().length === 0) expect(s.waitingUnits()).toEqual([]);
    }),
    { numRuns: 2000 },
  );
});

it('a unit displaced along a Replaces= chain is placed again (regression)', () => {
  const unit = (name: string, replaces: string[]): SchedUnit => ({
    name,
    target: 'launched',
    requirements: { machineOf: [], metadata: {}, conflicts: [], global: false, replaces },
  });
  const units = [
    unit('a.service', []),
    unit('b.service', ['c.service']),
    unit('c.service', ['e.service']),
    unit('d.service', ['c.service']),
    unit('e.service', ['b.service']),
    unit('f.service', []),
  ];
  // e displaces b, b displaces c: c was refused everywhere in that plan ("would replace
  // e.service, which replaced it in this plan") and nothing afterwards made it try again.
  const { s } = run(units, [0, 0, 1, 2, 0, 0, 2, 1, 0, 2]);
  expect(s.waitingUnits()).toEqual([]);
  expect(s.explain('c.service')).toMatch(/^c\.service: scheduled on m\d/);
});
