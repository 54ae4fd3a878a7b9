import { ErrorCode, FlotillaError } from '../../../src/errors';
import { Scheduler } from '../../../src/scheduler';
import { lines, machine, planned, unit } from './helpers';

/** A scheduler with machines m1..mN and the given units, planned once. */
function cluster(n: number, ...units: ReturnType<typeof unit>[]): Scheduler {
  const s = new Scheduler();
  for (let i = 1; i <= n; i++) s.upsertMachine(machine(`m${i}`));
  for (const u of units) s.upsertUnit(u);
  planned(s);
  return s;
}

describe('Scheduler, incrementally', () => {
  test('a second plan() with nothing new decides nothing', () => {
    const s = cluster(2, unit('a.service'), unit('b.service'));
    expect(planned(s)).toEqual([]);
  });

  test('machine lost: its units are rescheduled', () => {
    const s = cluster(2, unit('a.service'), unit('b.service'), unit('c.service'));
    expect(s.placementOf('a.service')).toBe('m1');
    s.removeMachine('m1');
    expect(s.placementOf('a.service')).toBeUndefined();
    expect(lines(planned(s))).toEqual([
      'unschedule a.service from m1: machine lost',
      'schedule a.service on m2: least loaded (1 unit)',
      'unschedule c.service from m1: machine lost',
      'schedule c.service on m2: least loaded (2 units)',
    ]);
  });

  test('machine lost: a MachineID-pinned unit is unscheduled and waits, then returns', () => {
    const s = cluster(2, unit('pin.service', 'MachineID=m1'));
    expect(s.placementOf('pin.service')).toBe('m1');
    s.removeMachine('m1');
    expect(lines(planned(s))).toEqual(['unschedule pin.service from m1: machine lost']);
    expect(s.explain('pin.service')).toBe(
      'pin.service: waiting: no machine satisfies MachineID=m1',
    );
    s.upsertMachine(machine('m1'));
    expect(lines(planned(s))).toEqual(['schedule pin.service on m1: MachineID=m1']);
  });

  test('a joining machine takes waiting units and rebalances nothing', () => {
    const s = cluster(
      1,
      unit('a.service'),
      unit('b.service'),
      unit('e.service', 'MachineMetadata=role=edge'),
    );
    expect(s.waitingUnits()).toEqual(['e.service']);
    s.upsertMachine(machine('m2'));
    expect(planned(s)).toEqual([]);
    s.upsertMachine(machine('m3', { role: 'edge' }));
    expect(lines(planned(s))).toEqual(['schedule e.service on m3: least loaded (0 units)']);
    expect(s.placementOf('a.service')).toBe('m1');
    expect(s.placementOf('b.service')).toBe('m1');
  });

  test('metadata change: units that no longer fit move, others stay', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m1', { role: 'web' }));
    s.upsertMachine(machine('m2', { role: 'web' }));
    s.upsertUnit(unit('w.service', 'MachineMetadata=role=web'));
    s.upsertUnit(unit('x.service'));
    expect(lines(planned(s))).toEqual([
      'schedule w.service on m1: least loaded (0 units)',
      'schedule x.service on m2: least loaded (0 units)',
    ]);
    s.upsertMachine(machine('m1', { role: 'db' }));
    expect(lines(planned(s))).toEqual([
      'unschedule w.service from m1: MachineMetadata role=web not satisfied (role=db)',
      'schedule w.service on m2: least loaded (1 unit)',
    ]);
    s.upsertMachine(machine('m1', { role: 'db' }));
    expect(planned(s)).toEqual([]);
  });

  test('a unit blocked by Conflicts is placed once the conflicting unit goes', () => {
    const s = cluster(1, unit('a.service'), unit('b.service', 'Conflicts=a.service'));
    expect(s.waitingUnits()).toEqual(['b.service']);
    s.removeUnit('a.service');
    expect(lines(planned(s))).toEqual(['schedule b.service on m1: least loaded (0 units)']);
  });

  test('a unit blocked by Conflicts is placed once the conflicting unit is deactivated', () => {
    const s = cluster(1, unit('a.service'), unit('b.service', 'Conflicts=a.service'));
    s.upsertUnit(unit('a.service', '', 'inactive'));
    expect(lines(planned(s))).toEqual([
      'unschedule a.service from m1: target state inactive',
      'schedule b.service on m1: least loaded (0 units)',
    ]);
  });

  test('unchanged upserts and loaded <-> launched decide nothing', () => {
    const s = cluster(2, unit('a.service', 'Conflicts=b*'));
    s.upsertUnit(unit('a.service', 'Conflicts=b*'));
    s.upsertUnit(unit('a.service', 'Conflicts=b*', 'loaded'));
    s.upsertMachine(machine('m1'));
    expect(planned(s)).toEqual([]);
    expect(s.explain('a.service')).toBe('a.service: scheduled on m1: least loaded (0 units)');
  });

  test('a unit that becomes global is unscheduled and runs everywhere', () => {
    const s = cluster(2, unit('a.service'));
    s.upsertUnit(unit('a.service', 'Global=true'));
    expect(s.globalMachines('a.service')).toEqual(['m1', 'm2']);
    expect(lines(planned(s))).toEqual(['unschedule a.service from m1: unit is global']);
    expect(s.loadOf('m1')).toBe(1);
    expect(s.loadOf('m2')).toBe(1);
  });

  test('global units follow machine metadata and their target state', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m2', { role: 'edge' }));
    s.upsertMachine(machine('m1'));
    s.upsertUnit(unit('g.service', 'Global=true\nMachineMetadata=role=edge'));
    expect(s.globalMachines('g.service')).toEqual(['m2']);
    s.upsertMachine(machine('m1', { role: 'edge' }));
    expect(s.globalMachines('g.service')).toEqual(['m1', 'm2']);
    s.removeMachine('m2');
    expect(s.globalMachines('g.service')).toEqual(['m1']);
    s.upsertUnit(unit('g.service', 'Global=true\nMachineMetadata=role=edge', 'inactive'));
    expect(s.globalMachines('g.service')).toEqual([]);
    expect(s.loadOf('m1')).toBe(0);
    expect(planned(s)).toEqual([]);
    expect(s.globalMachines('nope.service')).toEqual([]);
  });

  test('a global unit submitted later pushes away units it conflicts with', () => {
    const s = cluster(2, unit('legacy.service'), unit('other.service'));
    s.upsertUnit(unit('mon.service', 'Global=true\nConflicts=legacy*'));
    expect(lines(planned(s))).toEqual([
      'unschedule legacy.service from m1: conflicts with mon.service',
    ]);
    s.removeUnit('mon.service');
    expect(lines(planned(s))).toEqual(['schedule legacy.service on m1: least loaded (0 units)']);
  });

  test('destroying a peer leaves its followers waiting', () => {
    const s = cluster(2, unit('db.service'), unit('app.service', 'MachineOf=db.service'));
    expect(s.placementOf('app.service')).toBe('m1');
    s.removeUnit('db.service');
    expect(lines(planned(s))).toEqual([
      'unschedule app.service from m1: MachineOf peer db.service is not scheduled',
    ]);
    expect(s.explain('app.service')).toBe(
      'app.service: waiting: MachineOf peer db.service does not exist',
    );
  });

  test('followers move with their peer when its machine is lost', () => {
    const s = cluster(
      2,
      unit('db.service'),
      unit('x.service'),
      unit('app.service', 'MachineOf=db.service'),
    );
    expect(s.placementOf('app.service')).toBe('m1');
    s.removeMachine('m1');
    expect(lines(planned(s))).toEqual([
      'unschedule app.service from m1: machine lost',
      'unschedule db.service from m1: machine lost',
      'schedule db.service on m2: least loaded (1 unit)',
      'schedule app.service on m2: with MachineOf peer db.service',
    ]);
  });

  test('a Replaces unit submitted later takes a machine it lands on', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m1', { role: 'web' }));
    s.upsertMachine(machine('m2'));
    s.upsertUnit(unit('v1.service'));
    expect(lines(planned(s))).toEqual(['schedule v1.service on m1: least loaded (0 units)']);
    s.upsertUnit(unit('v2.service', 'MachineMetadata=role=web\nReplaces=v1.service'));
    expect(lines(planned(s))).toEqual([
      'unschedule v1.service from m1: replaced by v2.service',
      'schedule v2.service on m1: least loaded (0 units)',
      'schedule v1.service on m2: least loaded (0 units)',
    ]);
  });

  test('replaying plan() decisions as the engine folds them changes nothing', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m1', { role: 'web' }));
    s.upsertMachine(machine('m2'));
    s.upsertUnit(unit('v1.service'));
    s.upsertUnit(unit('log.service', 'MachineOf=v1.service'));
    planned(s);
    s.upsertUnit(unit('v2.service', 'MachineMetadata=role=web\nReplaces=v1.service'));
    const ds = planned(s);
    expect(ds.length).toBeGreaterThan(2);
    const before = ['v1.service', 'v2.service', 'log.service'].map((n) => s.placementOf(n));
    for (const d of ds) {
      if (d.kind === 'schedule') s.place(d.unit, d.machine, d.reason);
      else s.unplace(d.unit);
    }
    expect(planned(s)).toEqual([]);
    expect(['v1.service', 'v2.service', 'log.service'].map((n) => s.placementOf(n))).toEqual(
      before,
    );
  });

  test('place() is idempotent and records a reason', () => {
    const s = cluster(2, unit('a.service', '', 'inactive'));
    s.upsertUnit(unit('a.service'));
    s.place('a.service', 'm2', 'restored');
    s.place('a.service', 'm2');
    expect(planned(s)).toEqual([]);
    expect(s.explain('a.service')).toBe('a.service: scheduled on m2: restored');
  });

  test('place() of an unknown unit is refused', () => {
    const s = cluster(1);
    let caught: unknown;
    try {
      s.place('ghost.service', 'm1');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlotillaError);
    expect((caught as FlotillaError).code).toBe(ErrorCode.UnitNotFound);
    expect((caught as FlotillaError).message).toBe('cannot place unknown unit ghost.service');
  });

  test('unplace() is idempotent and honours the machine it is given', () => {
    const s = cluster(2, unit('a.service'));
    s.unplace('a.service', 'm2');
    expect(s.placementOf('a.service')).toBe('m1');
    expect(planned(s)).toEqual([]);
    s.unplace('a.service', 'm1');
    s.unplace('a.service');
    s.unplace('ghost.service');
    expect(s.placementOf('a.service')).toBeUndefined();
    expect(lines(planned(s))).toEqual(['schedule a.service on m1: least loaded (0 units)']);
  });

  test('unplace() drops an unschedule decision the engine already made', () => {
    const s = cluster(2, unit('a.service'));
    s.upsertUnit(unit('a.service', '', 'inactive'));
    s.unplace('a.service');
    expect(planned(s)).toEqual([]);
  });

  test('explain() says when a unit changed since the last plan, and knows unknown units', () => {
    const s = cluster(1, unit('a.service'));
    s.upsertUnit(unit('a.service', 'MachineMetadata=r=x'));
    expect(s.explain('a.service')).toBe(
      'a.service: scheduled on m1: least loaded (0 units) (changed since the last plan; not yet re-decided)',
    );
    expect(s.explain('ghost.service')).toBe('ghost.service: unknown unit');
    expect(lines(planned(s))).toEqual([
      'unschedule a.service from m1: MachineMetadata r=x not satisfied (r=(unset))',
    ]);
    expect(s.explain('a.service')).toBe(
      'a.service: waiting: no machine satisfies MachineMetadata r=x',
    );
  });

  // Regression: found by the property tests. unitRequirements refuses a MachineOf peer matched
  // by Replaces, but requirements built elsewhere must not make plan() loop.
  test('a unit never evicts its own MachineOf peer', () => {
    const s = cluster(1, unit('log.service'));
    s.upsertUnit({
      name: 'mon.service',
      target: 'launched',
      requirements: {
        machineOf: ['log.service'],
        metadata: {},
        conflicts: [],
        global: false,
        replaces: ['log.service'],
      },
    });
    expect(planned(s)).toEqual([]);
    expect(s.explain('mon.service')).toBe(
      'mon.service: waiting: cannot join MachineOf peer log.service on m1: would replace its MachineOf peer log.service',
    );
    expect(planned(s)).toEqual([]);
  });

  test('loadOf counts units per machine', () => {
    const s = cluster(2, unit('a.service'), unit('b.service'), unit('c.service'));
    expect([s.loadOf('m1'), s.loadOf('m2'), s.loadOf('m9')]).toEqual([2, 1, undefined]);
  });
});

describe('plan() and commit', () => {
  it('decisions touch the indexes only once committed; abandoned ones are decided again', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m1'));
    s.upsertMachine(machine('m2'));
    s.upsertUnit(unit('a.service', 'Conflicts=b.service'));
    s.upsertUnit(unit('b.service'));
    const first = s.plan();
    expect(lines(first)).toEqual([
      'schedule a.service on m1: least loaded (0 units)',
      'schedule b.service on m2: least loaded (0 units)',
    ]);
    // Not committed: nothing is placed, loads are as before.
    expect(s.placementOf('a.service')).toBeUndefined();
    expect([s.loadOf('m1'), s.loadOf('m2')]).toEqual([0, 0]);
    expect(s.explain('a.service')).toBe(
      'a.service: being scheduled on m1 (not committed yet): least loaded (0 units)',
    );
    // The write failed: the same units are decided again, the same way.
    s.abandon(first);
    const second = s.plan();
    expect(second).toEqual(first);
    s.commit(second);
    expect([s.placementOf('a.service'), s.placementOf('b.service')]).toEqual(['m1', 'm2']);
    expect([s.loadOf('m1'), s.loadOf('m2')]).toEqual([1, 1]);
    expect(s.plan()).toEqual([]);
  });

  it('a fact fed between a plan and its commit has the committed units decided again', () => {
    const s = new Scheduler();
    s.upsertMachine(machine('m1'));
    s.upsertUnit(unit('a.service'));
    const d = s.plan();
    // Before the commit, a unit that conflicts with a.service is placed on m1 (a restore).
    s.upsertUnit(unit('x.service', 'Conflicts=a.service'));
    s.place('x.service', 'm1');
    s.upsertMachine(machine('m2'));
    s.commit(d);
    expect(lines(s.plan())).toEqual([
      'unschedule a.service from m1: conflicts with x.service',
      'schedule a.service on m2: least loaded (0 units)',
    ]);
  });
});
