/**
 * Property tests: for random clusters and random histories, the scheduler never puts two
 * conflicting units on one machine, never leaves a unit on a machine that fails its
 * constraints, never leaves a unit waiting that could run somewhere, and gives the same output
 * for the same input. The checks below are written from the rules, independently of the
 * scheduler's indexes.
 */
import fc from 'fast-check';
import type { SchedMachine, SchedUnit } from '../../../src/scheduler';
import { machineIdMatches, schedule, Scheduler } from '../../../src/scheduler';
import { matchesGlob, type UnitRequirements } from '../../../src/unit';
import { planned } from './helpers';

type Unit = SchedUnit & { machine?: string };

const MACHINE_IDS = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'];
const UNIT_NAMES = [
  'web@1.service',
  'web@2.service',
  'web@3.service',
  'db.service',
  'db-2.service',
  'log.service',
  'cache@a.service',
  'cache@b.service',
  'x.service',
  'y.service',
  'agent.service',
  'mon.service',
];
const PATTERNS = [
  'web@*.service',
  'db*',
  'x.service',
  'log.service',
  'cache@*',
  '*@b.service',
  'y*',
  'mon.service',
];

const metadataArb = fc.record(
  { region: fc.constantFrom('us', 'eu'), role: fc.constantFrom('web', 'db') },
  { requiredKeys: [] },
);

const machineArb: fc.Arbitrary<SchedMachine> = fc.record({
  id: fc.constantFrom(...MACHINE_IDS),
  metadata: metadataArb,
});

const requirementsArb: fc.Arbitrary<UnitRequirements> = fc
  .record({
    machineId: fc.option(fc.constantFrom(...MACHINE_IDS, 'm9'), { freq: 6, nil: undefined }),
    machineOf: fc.oneof(
      { weight: 5, arbitrary: fc.constant<string[]>([]) },
      { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...UNIT_NAMES), { maxLength: 2 }) },
    ),
    metadata: fc.oneof(
      { weight: 3, arbitrary: fc.constant<Record<string, string[]>>({}) },
      {
        weight: 1,
        arbitrary: fc.record(
          {
            region: fc.uniqueArray(fc.constantFrom('us', 'eu'), { minLength: 1 }),
            role: fc.uniqueArray(fc.constantFrom('web', 'db'), { minLength: 1 }),
          },
          { requiredKeys: [] },
        ),
      },
    ),
    conflicts: fc.oneof(
      { weight: 2, arbitrary: fc.constant<string[]>([]) },
      { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...PATTERNS), { maxLength: 2 }) },
    ),
    global: fc.oneof(
      { weight: 5, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    replaces: fc.oneof(
      { weight: 4, arbitrary: fc.constant<string[]>([]) },
      { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...PATTERNS), { maxLength: 1 }) },
    ),
  })
  .map((r) => {
    const out: UnitRequirements = {
      machineOf: r.machineOf,
      metadata: r.metadata as Record<string, string[]>,
      conflicts: r.conflicts,
      global: r.global,
      replaces: r.replaces,
    };
    if (r.machineId !== undefined) out.machineId = r.machineId;
    return out;
  });

const unitArb = (name: string): fc.Arbitrary<Unit> =>
  fc
    .record({
      target: fc.constantFrom('launched', 'launched', 'loaded', 'inactive'),
      requirements: requirementsArb,
      machine: fc.option(fc.constantFrom(...MACHINE_IDS, 'gone'), { freq: 2, nil: undefined }),
    })
    .map((u) => {
      const out: Unit = { name, target: u.target as Unit['target'], requirements: u.requirements };
      if (u.machine !== undefined) out.machine = u.machine;
      return out;
    });

const clusterArb = fc.record({
  machines: fc.uniqueArray(machineArb, { maxLength: 6, selector: (m) => m.id }),
  units: fc
    .subarray(UNIT_NAMES)
    .chain((names) => fc.tuple(...names.map(unitArb)).map((us) => us as Unit[])),
});

/** The state a scheduler ended in, as plain data. */
interface World {
  machines: Map<string, SchedMachine>;
  units: Map<string, SchedUnit>;
  placement: Map<string, string>;
}

function worldOf(s: Scheduler, machines: SchedMachine[], units: SchedUnit[]): World {
  const placement = new Map<string, string>();
  for (const u of units) {
    const at = s.placementOf(u.name);
    if (at !== undefined) placement.set(u.name, at);
  }
  return {
    machines: new Map(machines.map((m) => [m.id, m])),
    units: new Map(units.map((u) => [u.name, u])),
    placement,
  };
}

const active = (u: SchedUnit): boolean => u.target !== 'inactive';

function metadataOk(r: UnitRequirements, m: SchedMachine): boolean {
  return Object.entries(r.metadata).every(
    ([k, vs]) => vs.length === 0 || (m.metadata[k] !== undefined && vs.includes(m.metadata[k])),
  );
}

/** Global units running on m, by the rules (not by asking the scheduler). */
function globalsOn(w: World, m: SchedMachine): string[] {
  return [...w.units.values()]
    .filter((u) => u.requirements.global && active(u) && metadataOk(u.requirements, m))
    .map((u) => u.name);
}

function residents(w: World, m: SchedMachine): string[] {
  const placed = [...w.placement].filter(([, at]) => at === m.id).map(([n]) => n);
  return [...placed, ...globalsOn(w, m)];
}

const conflicts = (a: SchedUnit, b: SchedUnit): boolean =>
  a.requirements.conflicts.some((p) => matchesGlob(p, b.name)) ||
  b.requirements.conflicts.some((p) => matchesGlob(p, a.name));

/** a replaces b, and b does not replace a (mutual Replaces are ignored). */
const replaces = (a: SchedUnit, b: SchedUnit): boolean =>
  a.requirements.replaces.some((p) => matchesGlob(p, b.name)) &&
  !b.requirements.replaces.some((p) => matchesGlob(p, a.name));

/** Could `u` run on `m` as things are, without moving anything? */
function fits(w: World, u: SchedUnit, m: SchedMachine): boolean {
  const r = u.requirements;
  if (r.machineId !== undefined && !machineIdMatches(m.id, r.machineId)) return false;
  if (!metadataOk(r, m)) return false;
  const here = residents(w, m).filter((x) => x !== u.name);
  if (!r.machineOf.every((p) => here.includes(p))) return false;
  for (const x of here) {
    const xu = w.units.get(x) as SchedUnit;
    if (conflicts(u, xu) || replaces(u, xu) || replaces(xu, u)) return false;
  }
  return true;
}

/** Every invariant of a settled schedule; returns the violations. */
function violations(w: World): string[] {
  const out: string[] = [];
  for (const [name, at] of w.placement) {
    const u = w.units.get(name) as SchedUnit;
    const m = w.machines.get(at);
    if (!m) out.push(`${name} on unknown machine ${at}`);
    else if (!active(u) || u.requirements.global) out.push(`${name} placed but inactive/global`);
    else {
      const r = u.requirements;
      if (r.machineId !== undefined && !machineIdMatches(at, r.machineId))
        out.push(`${name}: MachineID`);
      if (!metadataOk(r, m)) out.push(`${name}: metadata on ${at}`);
      const here = residents(w, m);
      for (const p of r.machineOf)
        if (!here.includes(p)) out.push(`${name}: peer ${p} not on ${at}`);
    }
  }
  for (const m of w.machines.values()) {
    const here = residents(w, m);
    for (const a of here) {
      for (const b of here) {
        if (a >= b) continue;
        const ua = w.units.get(a) as SchedUnit;
        const ub = w.units.get(b) as SchedUnit;
        if (ua.requirements.global && ub.requirements.global) continue;
        if (conflicts(ua, ub)) out.push(`${a} and ${b} conflict on ${m.id}`);
        if (replaces(ua, ub) || replaces(ub, ua)) out.push(`${a} and ${b} replace on ${m.id}`);
      }
    }
  }
  for (const u of w.units.values()) {
    if (!active(u) || u.requirements.global || w.placement.has(u.name)) continue;
    for (const m of w.machines.values()) {
      if (fits(w, u, m)) out.push(`${u.name} waits but fits on ${m.id}`);
    }
  }
  return out;
}

function run(machines: SchedMachine[], units: Unit[]): Scheduler {
  const s = new Scheduler();
  for (const m of machines) s.upsertMachine(m);
  for (const u of units) s.upsertUnit(u);
  for (const u of units) if (u.machine !== undefined) s.place(u.name, u.machine);
  planned(s);
  return s;
}

/** True when no chain of Replaces among `units` loops (cycles may flap, see docs/scheduler.md). */
function replacesAcyclic(units: SchedUnit[]): boolean {
  const next = (a: SchedUnit) => units.filter((b) => b !== a && replaces(a, b));
  const state = new Map<string, 1 | 2>();
  const visit = (u: SchedUnit): boolean => {
    const st = state.get(u.name);
    if (st === 1) return false;
    if (st === 2) return true;
    state.set(u.name, 1);
    const ok = next(u).every(visit);
    state.set(u.name, 2);
    return ok;
  };
  return units.every(visit);
}

const shuffled = <T>(xs: T[], seed: number): T[] => {
  const a = [...xs];
  let x = seed || 1;
  for (let i = a.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const j = x % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

const RUNS = { numRuns: 300 };

describe('scheduler properties', () => {
  test('a settled schedule breaks no rule: constraints, conflicts, nobody waits who fits', () => {
    fc.assert(
      fc.property(clusterArb, ({ machines, units }) => {
        const s = run(machines, units);
        expect(violations(worldOf(s, machines, units))).toEqual([]);
      }),
      RUNS,
    );
  });

  test('the same input gives the same output, whatever the order it is given in', () => {
    fc.assert(
      fc.property(clusterArb, fc.nat(), ({ machines, units }, seed) => {
        const first = schedule(units, machines);
        expect(schedule(units, machines)).toEqual(first);
        expect(schedule(shuffled(units, seed), shuffled(machines, seed + 1))).toEqual(first);
      }),
      RUNS,
    );
  });

  test('schedule() equals a fresh Scheduler fed the same facts then plan()', () => {
    fc.assert(
      fc.property(clusterArb, fc.nat(), ({ machines, units }, seed) => {
        const s = new Scheduler();
        // A different order than schedule() uses: units first, placements interleaved.
        for (const u of shuffled(units, seed)) {
          s.upsertUnit(u);
          if (u.machine !== undefined) s.place(u.name, u.machine);
        }
        for (const m of shuffled(machines, seed + 7)) s.upsertMachine(m);
        expect(planned(s)).toEqual(schedule(units, machines));
      }),
      RUNS,
    );
  });

  test('plan() applies its decisions: planning again decides nothing', () => {
    fc.assert(
      fc.property(clusterArb, ({ machines, units }) => {
        const s = run(machines, units);
        expect(planned(s)).toEqual([]);
      }),
      RUNS,
    );
  });

  test('replaying the decisions as the engine does leaves nothing to decide', () => {
    fc.assert(
      fc.property(clusterArb, ({ machines, units }) => {
        fc.pre(replacesAcyclic(units));
        const s = new Scheduler();
        for (const m of machines) s.upsertMachine(m);
        for (const u of units) s.upsertUnit(u);
        for (const u of units) if (u.machine !== undefined) s.place(u.name, u.machine);
        const decisions = s.plan();
        for (const d of decisions) {
          if (d.kind === 'schedule') s.place(d.unit, d.machine, d.reason);
          else s.unplace(d.unit);
        }
        const before = units.map((u) => s.placementOf(u.name));
        expect(s.plan()).toEqual([]);
        expect(units.map((u) => s.placementOf(u.name))).toEqual(before);
      }),
      RUNS,
    );
  });

  // Random histories: the incremental scheduler keeps every invariant after every plan().
  const opArb = fc.oneof(
    { weight: 3, arbitrary: machineArb.map((m) => ({ op: 'upsertMachine' as const, m })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...MACHINE_IDS)
        .map((id) => ({ op: 'removeMachine' as const, id })),
    },
    {
      weight: 4,
      arbitrary: fc
        .constantFrom(...UNIT_NAMES)
        .chain(unitArb)
        .map((u) => ({ op: 'upsertUnit' as const, u })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(...UNIT_NAMES)
        .map((name) => ({ op: 'removeUnit' as const, name })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...UNIT_NAMES), fc.constantFrom(...MACHINE_IDS))
        .map(([name, id]) => ({ op: 'place' as const, name, id })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...UNIT_NAMES).map((name) => ({ op: 'unplace' as const, name })),
    },
    { weight: 2, arbitrary: fc.constant({ op: 'plan' as const }) },
  );

  test('after any history of changes, every plan() leaves a schedule that breaks no rule', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const s = new Scheduler();
        const machines = new Map<string, SchedMachine>();
        const units = new Map<string, SchedUnit>();
        const check = (): void => {
          planned(s);
          expect(violations(worldOf(s, [...machines.values()], [...units.values()]))).toEqual([]);
          expect(planned(s)).toEqual([]);
        };
        for (const o of ops) {
          switch (o.op) {
            case 'upsertMachine':
              machines.set(o.m.id, o.m);
              s.upsertMachine(o.m);
              break;
            case 'removeMachine':
              machines.delete(o.id);
              s.removeMachine(o.id);
              break;
            case 'upsertUnit':
              units.set(o.u.name, o.u);
              s.upsertUnit(o.u);
              break;
            case 'removeUnit':
              units.delete(o.name);
              s.removeUnit(o.name);
              break;
            case 'place':
              if (units.has(o.name)) s.place(o.name, o.id);
              break;
            case 'unplace':
              s.unplace(o.name);
              break;
            case 'plan':
              check();
              break;
          }
        }
        check();
      }),
      RUNS,
    );
  });
});
