/**
 * One committed event's way to its effects, read in one place (src/engine/projections.ts):
 * a list of committed events goes through fold and route; the test reads what follows from
 * them: the scheduler's decisions, the machines' membership effects, and the schedule deltas
 * published to each machine's subject.
 */
import type { Bus } from '../../../src/bus/types';
import { Projections } from '../../../src/engine/projections';
import { emptyState, type ClusterState } from '../../../src/engine/state';
import { emptyStats, type EngineContext } from '../../../src/engine/types';
import type { EventBody, FlotillaEvent } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';
import { silentLogger } from '../../../src/log';
import { subjects, type ScheduleDelta } from '../../../src/protocol';

const S = subjects('t');
const plain = [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }];
const global = [...plain, { section: 'X-Fleet', name: 'Global', value: 'true' }];

function setup() {
  const state: ClusterState = emptyState();
  const sent: { subject: string; delta: ScheduleDelta }[] = [];
  const bus = {
    maxPayload: Infinity,
    publish: (subject: string, data: Uint8Array) =>
      sent.push({ subject, delta: JSON.parse(new TextDecoder().decode(data)) as ScheduleDelta }),
  } as unknown as Bus;
  const membership: string[] = [];
  let index = 0;
  const ctx: EngineContext = {
    epoch: 1,
    opts: { bus } as unknown as EngineContext['opts'],
    stats: emptyStats(),
    log: silentLogger,
    clock: () => 1000,
    subj: S,
    state,
    stopped: false,
    append: () => Promise.reject(new Error('not in this test')),
  };
  const p = new Projections(ctx, {
    joined: (m) => membership.push(`joined ${m}`),
    lost: (m) => membership.push(`lost ${m}`),
  });
  /** Commits `bodies` as the engine does: fold, route, desired schedules, publish. */
  const commit = (bodies: EventBody[]): number => {
    const touched = new Set<string>();
    const events = bodies.map(
      (b) => ({ ...b, index: ++index, epoch: 1, time: 1000, v: SCHEMA_VERSION }) as FlotillaEvent,
    );
    for (const e of events) p.fold(e);
    for (const e of events) p.route(e, touched);
    for (const u of touched) p.recompute(u);
    p.publish();
    return index;
  };
  /** What a published delta says, per machine: `+unit` to run, `-unit` to stop. */
  const published = (): string[] =>
    sent
      .splice(0)
      .map(
        ({ subject, delta }) =>
          `${subject.split('.')[3]}: ${[
            ...delta.put.map((u) => `+${u.unit}`),
            ...delta.remove.map((u) => `-${u}`),
          ].join(' ')}`,
      );
  return { p, state, commit, published, membership };
}

it('events from commit to effects: machines, units, placement, a lost machine', () => {
  const { p, state, commit, published, membership } = setup();
  commit([
    { type: 'MachineJoined', machine: 'm1', ip: '10.0.0.1', metadata: {} },
    { type: 'MachineJoined', machine: 'm2', ip: '10.0.0.2', metadata: {} },
  ]);
  expect(membership.splice(0)).toEqual(['joined m1', 'joined m2']);
  expect(published()).toEqual([]);

  commit([
    { type: 'UnitSubmitted', unit: 'a.service', options: plain, hash: 'ha', target: 'launched' },
    { type: 'UnitSubmitted', unit: 'b.service', options: plain, hash: 'hb', target: 'launched' },
    { type: 'UnitSubmitted', unit: 'g.service', options: global, hash: 'hg', target: 'launched' },
  ]);
  // A global unit runs wherever its metadata fits as soon as it is committed.
  expect(published()).toEqual([`m1: +g.service`, `m2: +g.service`]);

  // Placement: the scheduler's decisions are events to commit; they touch neither the
  // scheduler's indexes nor the schedules before, and no other plan runs meanwhile.
  const placement = p.plan();
  expect(placement.bodies).toEqual([
    { type: 'UnitScheduled', unit: 'a.service', machine: 'm1', reason: 'least loaded (1 unit)' },
    { type: 'UnitScheduled', unit: 'b.service', machine: 'm2', reason: 'least loaded (1 unit)' },
  ]);
  expect(p.scheduler.placementOf('a.service')).toBeUndefined();
  expect(p.scheduler.loadOf('m1')).toBe(1);
  expect(p.mayPlan()).toBe(false);
  expect(published()).toEqual([]);
  p.committedUpTo(placement.decisions, commit(placement.bodies));
  expect(state.units.get('a.service')?.machine).toBe('m1');
  expect(p.scheduler.placementOf('a.service')).toBe('m1');
  expect(p.scheduler.loadOf('m1')).toBe(2);
  expect(p.mayPlan()).toBe(true);
  expect(p.scheduler.explain('a.service')).toBe(
    'a.service: scheduled on m1: least loaded (1 unit)',
  );
  expect(published()).toEqual([`m1: +a.service`, `m2: +b.service`]);

  // A machine lost: its actor hears of it; its unit goes to the other machine once committed.
  commit([{ type: 'MachineLost', machine: 'm1', reason: 'no heartbeat' }]);
  expect(membership.splice(0)).toEqual(['lost m1']);
  // Global units follow the machines at once; a placed unit waits for its decision's commit.
  expect(published()).toEqual([`m1: -g.service`]);
  const moves = p.plan();
  expect(moves.bodies).toEqual([
    { type: 'UnitUnscheduled', unit: 'a.service', machine: 'm1', reason: 'machine lost' },
    { type: 'UnitScheduled', unit: 'a.service', machine: 'm2', reason: 'least loaded (2 units)' },
  ]);
  // The store refuses the write: nothing was applied, and the next plan decides the same.
  p.abandon(moves.decisions);
  expect(p.scheduler.placementOf('a.service')).toBeUndefined();
  expect(p.scheduler.loadOf('m2')).toBe(2);
  const again = p.plan();
  expect(again.bodies).toEqual(moves.bodies);
  p.committedUpTo(again.decisions, commit(again.bodies));
  expect(published()).toEqual([`m1: -a.service`, `m2: +a.service`]);

  // A unit stopped: it leaves its machine's schedule; the scheduler unschedules it.
  commit([{ type: 'UnitTargetSet', unit: 'b.service', target: 'inactive' }]);
  expect(published()).toEqual([`m2: -b.service`]);
  expect(p.plan().bodies).toEqual([
    { type: 'UnitUnscheduled', unit: 'b.service', machine: 'm2', reason: 'target state inactive' },
  ]);
});

it('a unit waiting again says why: after leaving its machine in the same plan, after unload and load', () => {
  const { p, commit } = setup();
  const pinned = [...plain, { section: 'X-Fleet', name: 'MachineID', value: 'm1' }];
  const mars = [...plain, { section: 'X-Fleet', name: 'MachineMetadata', value: 'region=mars' }];
  commit([{ type: 'MachineJoined', machine: 'm1', ip: '10.0.0.1', metadata: {} }]);
  commit([
    { type: 'UnitSubmitted', unit: 'pin.service', options: pinned, hash: 'h', target: 'launched' },
  ]);
  let plan = p.plan();
  p.committedUpTo(plan.decisions, commit(plan.bodies));
  // Its machine lost: the unit is unscheduled and waits, in one plan; the folded state still
  // has it placed while that plan is made.
  commit([{ type: 'MachineLost', machine: 'm1', reason: 'no heartbeat' }]);
  plan = p.plan();
  expect(plan.bodies.map((b) => b.type)).toEqual(['UnitUnscheduled', 'UnitUnplaceable']);
  p.committedUpTo(plan.decisions, commit(plan.bodies));
  const why = (u: string) => p.scheduler.explain(u);
  expect(why('pin.service')).toContain('waiting');

  commit([
    { type: 'UnitSubmitted', unit: 'm.service', options: mars, hash: 'h', target: 'loaded' },
  ]);
  plan = p.plan();
  expect(plan.bodies).toEqual([
    expect.objectContaining({ type: 'UnitUnplaceable', unit: 'm.service' }),
  ]);
  commit(plan.bodies);
  commit([{ type: 'UnitTargetSet', unit: 'm.service', target: 'inactive' }]);
  expect(p.plan().bodies).toEqual([]);
  commit([{ type: 'UnitTargetSet', unit: 'm.service', target: 'loaded' }]);
  // Its record lost the reason with the inactive target: the same reason is recorded again.
  expect(p.plan().bodies).toEqual([
    expect.objectContaining({ type: 'UnitUnplaceable', unit: 'm.service' }),
  ]);
});
