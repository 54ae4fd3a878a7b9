import type { SchedMachine, SchedUnit } from '../../../src/scheduler';
import { schedule, Scheduler } from '../../../src/scheduler';
import { lines, machine, placed, planned, unit } from './helpers';

interface Case {
  name: string;
  machines: SchedMachine[];
  units: Array<SchedUnit & { machine?: string }>;
  decisions: string[];
  /** Expected explain() lines for some units. */
  explain?: Record<string, string>;
}

const m3 = [machine('m1'), machine('m2'), machine('m3')];

// Every rule of the scheduler, one-shot: the input, and the exact decisions.
const cases: Case[] = [
  {
    name: 'least loaded, ties broken by machine ID',
    machines: [machine('m3'), machine('m1'), machine('m2')],
    units: [unit('d.service'), unit('c.service'), unit('b.service'), unit('a.service')],
    decisions: [
      'schedule a.service on m1: least loaded (0 units)',
      'schedule b.service on m2: least loaded (0 units)',
      'schedule c.service on m3: least loaded (0 units)',
      'schedule d.service on m1: least loaded (1 unit)',
    ],
  },
  {
    name: 'load counts units already placed',
    machines: m3,
    units: [placed(unit('x.service'), 'm1'), placed(unit('y.service'), 'm2'), unit('a.service')],
    decisions: ['schedule a.service on m3: least loaded (0 units)'],
  },
  {
    name: 'load counts global units too',
    machines: [machine('m1', { role: 'edge' }), machine('m2')],
    units: [unit('g.service', 'Global=true\nMachineMetadata=role=edge'), unit('a.service')],
    decisions: ['schedule a.service on m2: least loaded (0 units)'],
    explain: {
      'g.service': 'g.service: global unit, runs on 1 machine(s): m1',
      'a.service': 'a.service: scheduled on m2: least loaded (0 units)',
    },
  },
  {
    name: 'global units are not placed; they run wherever metadata matches',
    machines: [machine('m1', { role: 'edge' }), machine('m2', { role: 'edge' }), machine('m3')],
    units: [unit('g.service', 'Global=true\nMachineMetadata=role=edge')],
    decisions: [],
    explain: { 'g.service': 'g.service: global unit, runs on 2 machine(s): m1, m2' },
  },
  {
    name: 'a global unit that matches no machine',
    machines: m3,
    units: [unit('g.service', 'Global=true\nMachineMetadata=role=edge')],
    decisions: [],
    explain: {
      'g.service':
        'g.service: global unit, runs nowhere: no machine satisfies MachineMetadata role=edge',
    },
  },
  {
    name: 'a placed global unit is unscheduled',
    machines: m3,
    units: [placed(unit('g.service', 'Global=true'), 'm2')],
    decisions: ['unschedule g.service from m2: unit is global'],
  },
  {
    name: 'MachineMetadata: AND across keys',
    machines: [
      machine('m1', { region: 'us', disk: 'hdd' }),
      machine('m2', { region: 'eu', disk: 'ssd' }),
      machine('m3', { region: 'us', disk: 'ssd' }),
    ],
    units: [unit('a.service', 'MachineMetadata=region=us\nMachineMetadata=disk=ssd')],
    decisions: ['schedule a.service on m3: least loaded (0 units)'],
  },
  {
    name: 'MachineMetadata: OR among values of one key, then least loaded',
    machines: [
      machine('m1', { region: 'us' }),
      machine('m2', { region: 'eu' }),
      machine('m3', { region: 'ap' }),
    ],
    units: [
      placed(unit('x.service'), 'm1'),
      unit('a.service', 'MachineMetadata="region=us" "region=eu"'),
    ],
    decisions: ['schedule a.service on m2: least loaded (0 units)'],
  },
  {
    name: 'MachineMetadata nobody satisfies: the unit waits',
    machines: [machine('m1', { region: 'us' })],
    units: [unit('a.service', 'MachineMetadata=region=eu')],
    decisions: [],
    explain: { 'a.service': 'a.service: waiting: no machine satisfies MachineMetadata region=eu' },
  },
  {
    name: 'no machines at all',
    machines: [],
    units: [unit('a.service')],
    decisions: [],
    explain: { 'a.service': 'a.service: waiting: no machines' },
  },
  {
    name: 'MachineID, full ID',
    machines: [machine('0123456789abcdef'), machine('fedcba9876543210')],
    units: [unit('a.service', 'MachineID=fedcba9876543210')],
    decisions: ['schedule a.service on fedcba9876543210: MachineID=fedcba9876543210'],
  },
  {
    name: 'MachineID, first 8 characters',
    machines: [machine('0123456789abcdef'), machine('fedcba9876543210')],
    units: [unit('a.service', 'MachineID=fedcba98')],
    decisions: ['schedule a.service on fedcba9876543210: MachineID=fedcba98'],
  },
  {
    name: 'MachineID of an absent machine: the unit waits',
    machines: m3,
    units: [unit('a.service', 'MachineID=m9')],
    decisions: [],
    explain: { 'a.service': 'a.service: waiting: no machine satisfies MachineID=m9' },
  },
  {
    name: 'Conflicts keeps instances apart; the one that cannot fit waits',
    machines: [machine('m1'), machine('m2')],
    units: [1, 2, 3].map((i) => unit(`web@${i}.service`, 'Conflicts=web@*.service')),
    decisions: [
      'schedule web@1.service on m1: least loaded (0 units)',
      'schedule web@2.service on m2: least loaded (0 units)',
    ],
    explain: {
      'web@3.service':
        'web@3.service: waiting: all 2 machine(s) that satisfy its requirements are blocked (first: m1: conflicts with web@1.service)',
    },
  },
  {
    name: 'Conflicts is checked in both directions',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('db.service'), 'm1'),
      placed(unit('x.service'), 'm2'),
      unit('a.service', 'Conflicts=db*'),
    ],
    decisions: ['schedule a.service on m2: least loaded (1 unit)'],
  },
  {
    name: 'Conflicts of a unit already placed keep newcomers away',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('a.service', 'Conflicts=db*'), 'm1'),
      placed(unit('x.service'), 'm2'),
      unit('db.service'),
    ],
    decisions: ['schedule db.service on m2: least loaded (1 unit)'],
  },
  {
    name: 'Conflicts with a global unit',
    machines: [machine('m1'), machine('m2', { role: 'edge' })],
    units: [
      unit('proxy.service', 'Global=true\nMachineMetadata=role=edge'),
      unit('a.service', 'Conflicts=proxy*'),
      placed(unit('b.service'), 'm1'),
    ],
    decisions: ['schedule a.service on m1: least loaded (1 unit)'],
  },
  {
    name: 'a global unit pushes away placed units it conflicts with',
    machines: [machine('m1'), machine('m2')],
    units: [
      unit('mon.service', 'Global=true\nConflicts=legacy*'),
      placed(unit('legacy.service'), 'm1'),
    ],
    decisions: ['unschedule legacy.service from m1: conflicts with mon.service'],
    explain: {
      'legacy.service':
        'legacy.service: waiting: all 2 machine(s) that satisfy its requirements are blocked (first: m1: conflicts with mon.service)',
    },
  },
  {
    name: 'a unit never conflicts with itself',
    machines: [machine('m1')],
    units: [placed(unit('web@1.service', 'Conflicts=web@*.service'), 'm1')],
    decisions: [],
  },
  {
    name: 'two placed units that conflict: the first by name moves',
    machines: [machine('m1'), machine('m2')],
    units: [placed(unit('b.service', 'Conflicts=a*'), 'm1'), placed(unit('a.service'), 'm1')],
    decisions: [
      'unschedule a.service from m1: conflicts with b.service',
      'schedule a.service on m2: least loaded (0 units)',
    ],
  },
  {
    name: 'MachineOf: placed with its peer, even on a loaded machine',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('db.service'), 'm1'),
      placed(unit('x.service'), 'm1'),
      unit('app.service', 'MachineOf=db.service'),
    ],
    decisions: ['schedule app.service on m1: with MachineOf peer db.service'],
  },
  {
    name: 'MachineOf: a follower decided before its peer still joins it',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('x.service'), 'm1'),
      unit('a.service', 'MachineOf=z.service'),
      unit('z.service'),
    ],
    decisions: [
      'schedule z.service on m2: least loaded (0 units)',
      'schedule a.service on m2: with MachineOf peer z.service',
    ],
  },
  {
    name: 'MachineOf several peers: all must share the machine',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('p.service'), 'm1'),
      placed(unit('q.service'), 'm2'),
      unit('a.service', 'MachineOf=p.service q.service'),
    ],
    decisions: [],
    explain: {
      'a.service':
        'a.service: waiting: cannot join MachineOf peer p.service on m1: MachineOf peer q.service is on m2',
    },
  },
  {
    name: 'MachineOf a peer that is not scheduled',
    machines: m3,
    units: [unit('db.service', '', 'inactive'), unit('app.service', 'MachineOf=db.service')],
    decisions: [],
    explain: { 'app.service': 'app.service: waiting: MachineOf peer db.service is not scheduled' },
  },
  {
    name: 'MachineOf a peer that does not exist',
    machines: m3,
    units: [unit('app.service', 'MachineOf=db.service')],
    decisions: [],
    explain: { 'app.service': 'app.service: waiting: MachineOf peer db.service does not exist' },
  },
  {
    name: 'MachineOf a global peer: any machine running it',
    machines: [machine('m1'), machine('m2', { role: 'edge' }), machine('m3', { role: 'edge' })],
    units: [
      unit('agent.service', 'Global=true\nMachineMetadata=role=edge'),
      placed(unit('x.service'), 'm2'),
      unit('app.service', 'MachineOf=agent.service'),
    ],
    decisions: ['schedule app.service on m3: least loaded (1 unit)'],
  },
  {
    name: 'a follower whose peer is elsewhere moves to it',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('db.service'), 'm2'),
      placed(unit('app.service', 'MachineOf=db.service'), 'm1'),
    ],
    decisions: [
      'unschedule app.service from m1: MachineOf peer db.service is on m2',
      'schedule app.service on m2: with MachineOf peer db.service',
    ],
  },
  {
    name: 'no churn: placed units stay although other machines are emptier',
    machines: m3,
    units: ['a', 'b', 'c', 'd'].map((n) => placed(unit(`${n}.service`), 'm1')),
    decisions: [],
  },
  {
    name: 'target state inactive: not placed, and unscheduled if placed',
    machines: m3,
    units: [
      unit('a.service', '', 'inactive'),
      placed(unit('b.service', '', 'inactive'), 'm2'),
      unit('c.service', '', 'loaded'),
    ],
    decisions: [
      'unschedule b.service from m2: target state inactive',
      'schedule c.service on m1: least loaded (0 units)',
    ],
    explain: {
      'a.service': 'a.service: not scheduled: target state inactive',
      'b.service': 'b.service: not scheduled: target state inactive',
    },
  },
  {
    name: 'a placement on an unknown machine is a lost machine',
    machines: [machine('m1')],
    units: [placed(unit('a.service'), 'gone')],
    decisions: [
      'unschedule a.service from gone: machine lost',
      'schedule a.service on m1: least loaded (0 units)',
    ],
  },
  {
    name: 'a placement that breaks MachineMetadata moves',
    machines: [machine('m1', { role: 'db' }), machine('m2', { role: 'web' })],
    units: [placed(unit('a.service', 'MachineMetadata=role=web'), 'm1')],
    decisions: [
      'unschedule a.service from m1: MachineMetadata role=web not satisfied (role=db)',
      'schedule a.service on m2: least loaded (0 units)',
    ],
  },
  {
    name: 'a placement that breaks MachineID moves',
    machines: [machine('m1'), machine('m2')],
    units: [placed(unit('a.service', 'MachineID=m2'), 'm1')],
    decisions: [
      'unschedule a.service from m1: MachineID=m2 names another machine',
      'schedule a.service on m2: MachineID=m2',
    ],
  },
  {
    name: 'Replaces: the replacing unit takes the machine, the replaced unit moves',
    machines: [machine('m1', { role: 'web' }), machine('m2')],
    units: [
      placed(unit('old.service'), 'm1'),
      unit('new.service', 'MachineMetadata=role=web\nReplaces=old.service'),
    ],
    decisions: [
      'unschedule old.service from m1: replaced by new.service',
      'schedule new.service on m1: least loaded (0 units)',
      'schedule old.service on m2: least loaded (0 units)',
    ],
  },
  {
    name: 'Replaces: a replaced unit keeps away from the replacing unit',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('new.service', 'Replaces=old*'), 'm1'),
      placed(unit('x.service'), 'm2'),
      placed(unit('y.service'), 'm2'),
      unit('old-1.service'),
    ],
    decisions: ['schedule old-1.service on m2: least loaded (2 units)'],
  },
  {
    name: 'Replaces: found together after a restore, the replaced unit moves',
    machines: [machine('m1'), machine('m2')],
    units: [
      placed(unit('a-old.service'), 'm1'),
      placed(unit('b-new.service', 'Replaces=a-old.service'), 'm1'),
    ],
    decisions: [
      'unschedule a-old.service from m1: replaced by b-new.service',
      'schedule a-old.service on m2: least loaded (0 units)',
    ],
  },
  {
    name: 'Replaces: the replaced unit moves with its followers',
    machines: [machine('m1', { role: 'web' }), machine('m2')],
    units: [
      placed(unit('old.service'), 'm1'),
      placed(unit('old-log.service', 'MachineOf=old.service'), 'm1'),
      unit('new.service', 'MachineMetadata=role=web\nReplaces=old.service'),
    ],
    decisions: [
      'unschedule old.service from m1: replaced by new.service',
      'schedule new.service on m1: least loaded (1 unit)',
      // "old-log.service" sorts before "old.service" ("-" < "."), so it is decided first.
      'unschedule old-log.service from m1: MachineOf peer old.service is not scheduled',
      'schedule old.service on m2: least loaded (0 units)',
      'schedule old-log.service on m2: with MachineOf peer old.service',
    ],
  },
  {
    name: 'Replaces: a replaced unit pinned by MachineID waits',
    machines: [machine('m1', { role: 'web' }), machine('m2')],
    units: [
      placed(unit('old.service', 'MachineID=m1'), 'm1'),
      unit('new.service', 'MachineMetadata=role=web\nReplaces=old.service'),
    ],
    decisions: [
      'unschedule old.service from m1: replaced by new.service',
      'schedule new.service on m1: least loaded (0 units)',
    ],
    explain: {
      'old.service': 'old.service: waiting: MachineID=m1 machine m1: replaced by new.service',
    },
  },
  {
    name: 'Replaces: units replacing each other are ignored, as in fleet',
    machines: [machine('m1')],
    units: [
      placed(unit('a.service', 'Replaces=b.service'), 'm1'),
      unit('b.service', 'Replaces=a.service'),
    ],
    decisions: ['schedule b.service on m1: least loaded (1 unit)'],
  },
  {
    name: 'Replaces cannot push away a global unit',
    machines: [machine('m1', { role: 'edge' })],
    units: [unit('g.service', 'Global=true'), unit('a.service', 'Replaces=g.service')],
    decisions: [],
    explain: {
      'a.service':
        'a.service: waiting: all 1 machine(s) that satisfy its requirements are blocked (first: m1: would replace global unit g.service, which never moves)',
    },
  },
];

describe('schedule()', () => {
  test.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(lines(schedule(c.units, c.machines))).toEqual(c.decisions);
    if (c.explain) {
      const s = new Scheduler();
      for (const m of c.machines) s.upsertMachine(m);
      for (const u of c.units) s.upsertUnit(u);
      for (const u of c.units) if (u.machine !== undefined) s.place(u.name, u.machine);
      planned(s);
      for (const [name, text] of Object.entries(c.explain)) expect(s.explain(name)).toBe(text);
    }
  });

  test('does not modify its inputs', () => {
    const units = [placed(unit('a.service'), 'gone'), unit('b.service', 'Conflicts=a*')];
    const machines = [machine('m1', { r: 'x' })];
    const copy = JSON.parse(JSON.stringify({ units, machines })) as unknown;
    schedule(units, machines);
    expect({ units, machines }).toEqual(copy);
  });
});
