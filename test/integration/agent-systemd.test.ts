/**
 * The agent end to end on real things: a real nats-server, a real `systemd --user` (its own
 * cgroup, HOME and bus, from the test harness) and the systemd D-Bus driver. A fake leader in the
 * test publishes the schedule. Units here are trivial (/bin/sleep, /bin/sh -c 'exit 3').
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type AgentHandle, startAgent } from '../../src/actors/agent';
import type { Driver, DriverOp, DriverOpResult, DriverUnitState } from '../../src/drivers/driver';
import { SystemdDriver } from '../../src/drivers/systemd';
import { NatsBus } from '../../src/bus/nats';
import { type NatsServer, type SystemdManager, startNats, startSystemd } from '../harness';
import { isAlive } from '../harness/registry';
import { FakeLeader, scheduled, unitFile, waitFor } from '../unit/agent/fake-leader';

const CLUSTER = 'sd';
const MACHINE = 'sd1';

/** Wraps a driver and records every op it is asked to apply. */
class RecordingDriver implements Driver {
  readonly kind;
  readonly ops: DriverOp[] = [];
  constructor(readonly inner: Driver) {
    this.kind = inner.kind;
  }
  open(): Promise<void> {
    return this.inner.open();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  apply(ops: DriverOp[]): Promise<DriverOpResult[]> {
    this.ops.push(...ops);
    return this.inner.apply(ops);
  }
  list(): Promise<DriverUnitState[]> {
    return this.inner.list();
  }
  onState(l: (s: DriverUnitState) => void): () => void {
    return this.inner.onState(l);
  }
  status(unit: string): Promise<string> {
    return this.inner.status(unit);
  }
  journal(
    unit: string,
    lines: number,
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<string> {
    return this.inner.journal(unit, lines, follow, signal);
  }
}

/** What systemd itself says about a unit. */
function show(manager: SystemdManager, unit: string): Record<string, string> {
  const out = execFileSync(
    'systemctl',
    ['--user', 'show', unit, '--property=LoadState,ActiveState,SubState,MainPID,Result'],
    { env: manager.env, encoding: 'utf8' },
  );
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
}

let nats: NatsServer;
let manager: SystemdManager;
let leaderBus: NatsBus;
let leader: FakeLeader;
let unitsDir: string;
const running: { agent: AgentHandle; bus: NatsBus }[] = [];

async function startNode(): Promise<{ agent: AgentHandle; driver: RecordingDriver; bus: NatsBus }> {
  const bus = await NatsBus.connect({ servers: [nats.url], name: `agent ${MACHINE}` });
  const driver = new RecordingDriver(
    new SystemdDriver({ busAddress: manager.busAddress, userBus: true, unitsDirectory: unitsDir }),
  );
  const agent = await startAgent({
    cluster: CLUSTER,
    machineId: MACHINE,
    ip: '127.0.0.1',
    metadata: {},
    bus,
    driver,
    reportBatchMs: 10,
    requestTimeoutMs: 2000,
  });
  running.push({ agent, bus });
  return { agent, driver, bus };
}

async function stopNode(n: { agent: AgentHandle; bus: NatsBus }): Promise<void> {
  await n.agent.drain();
  await n.bus.close();
  running.splice(running.indexOf(n), 1);
}

beforeAll(async () => {
  nats = await startNats();
  manager = await startSystemd();
  unitsDir = path.join(manager.dir, 'units');
  leaderBus = await NatsBus.connect({ servers: [nats.url], name: 'fake leader' });
  leader = new FakeLeader(leaderBus, CLUSTER).start();
  await leaderBus.flush();
}, 60_000);

afterAll(async () => {
  for (const n of [...running]) await stopNode(n);
  leader?.stop();
  await leaderBus?.close();
  await manager?.dispose();
  await nats?.dispose();
});

// A test that failed half-way must not leave its units scheduled for the next one (whose agent
// would then never get down to no units): the next agent unloads what is no longer scheduled.
afterEach(() => {
  const left = leader.full(MACHINE).units.map((u) => u.unit);
  if (left.length > 0) leader.change(MACHINE, [], left);
});

describe('agent + NATS + systemd --user', () => {
  it('loads, starts, stops and unloads real units as the schedule says', async () => {
    const node = await startNode();
    try {
      await waitFor(() => node.agent.state() === 'ready', 'ready');
      const hello = scheduled('hello.service', 'launched', unitFile('Flotilla hello'));
      leader.change(MACHINE, [hello]);
      await waitFor(
        () => node.agent.unitState('hello.service') === 'active',
        'hello active',
        15_000,
      );
      await waitFor(
        () => show(manager, 'hello.service').SubState === 'running',
        'systemd running',
        15_000,
      );
      const pid = Number(show(manager, 'hello.service').MainPID);
      expect(pid).toBeGreaterThan(0);
      await waitFor(
        () => leader.reported(MACHINE, 'hello.service')?.mainPid === pid,
        'reported with pid',
      );
      expect(leader.reported(MACHINE, 'hello.service')).toMatchObject({
        load: 'loaded',
        active: 'active',
        hash: hello.hash,
      });

      leader.change(MACHINE, [{ ...hello, target: 'loaded' }]);
      await waitFor(
        () => node.agent.unitState('hello.service') === 'loaded',
        'hello loaded',
        15_000,
      );
      expect(show(manager, 'hello.service')).toMatchObject({
        LoadState: 'loaded',
        ActiveState: 'inactive',
      });
      expect(isAlive(pid)).toBe(false);
      await waitFor(
        () => leader.reported(MACHINE, 'hello.service')?.active === 'inactive',
        'reported inactive',
      );

      leader.change(MACHINE, [], ['hello.service']);
      await waitFor(
        () => node.agent.unitState('hello.service') === undefined,
        'hello gone',
        15_000,
      );
      expect(show(manager, 'hello.service').LoadState).toBe('not-found');
      expect(fs.existsSync(path.join(unitsDir, 'hello.service'))).toBe(false);
      await waitFor(() => leader.reported(MACHINE, 'hello.service') === null, 'reported gone');
      expect(node.driver.ops.map((o) => `${o.kind} ${o.unit}`)).toEqual([
        'load hello.service',
        'start hello.service',
        'stop hello.service',
        'unload hello.service',
      ]);
    } finally {
      await stopNode(node);
    }
  });

  it('reports a unit whose process exits non-zero as failed (StateReport on engine.report)', async () => {
    const node = await startNode();
    try {
      await waitFor(() => node.agent.state() === 'ready', 'ready');
      leader.change(MACHINE, [
        scheduled('exit3.service', 'launched', unitFile('exits 3', "/bin/sh -c 'exit 3'")),
      ]);
      await waitFor(
        () => leader.reported(MACHINE, 'exit3.service')?.active === 'failed',
        'failed reported',
        15_000,
      );
      expect(leader.reported(MACHINE, 'exit3.service')).toMatchObject({
        sub: 'failed',
        result: 'exit-code',
      });
      await waitFor(() => node.agent.unitState('exit3.service') === 'failed', 'unit actor failed');
      expect(show(manager, 'exit3.service')).toMatchObject({
        ActiveState: 'failed',
        Result: 'exit-code',
      });
      // Not restarted by the agent.
      expect(node.driver.ops.filter((o) => o.kind === 'start')).toHaveLength(1);
      leader.change(MACHINE, [], ['exit3.service']);
      await waitFor(() => node.agent.unitState('exit3.service') === undefined, 'unloaded', 15_000);
    } finally {
      await stopNode(node);
    }
  });

  it('a restarted agent adopts its running unit: same MainPID, no stop or start', async () => {
    const first = await startNode();
    await waitFor(() => first.agent.state() === 'ready', 'ready');
    const web = scheduled('web.service', 'launched', unitFile('Flotilla web'));
    leader.change(MACHINE, [web, scheduled('idle.service', 'loaded', unitFile('idle'))]);
    await waitFor(
      () =>
        first.agent.unitState('web.service') === 'active' &&
        first.agent.unitState('idle.service') === 'loaded',
      'units up',
      15_000,
    );
    await waitFor(() => show(manager, 'web.service').SubState === 'running', 'running', 15_000);
    const pid = Number(show(manager, 'web.service').MainPID);
    await stopNode(first);
    // The agent is gone; the unit is not.
    expect(show(manager, 'web.service')).toMatchObject({
      ActiveState: 'active',
      MainPID: String(pid),
    });

    const second = await startNode();
    try {
      expect(second.agent.unitState('web.service')).toBe('active');
      expect(second.agent.unitState('idle.service')).toBe('loaded');
      await waitFor(() => second.agent.state() === 'ready', 'ready again');
      await second.agent.whenIdle();
      expect(second.driver.ops).toEqual([]);
      expect(show(manager, 'web.service')).toMatchObject({
        ActiveState: 'active',
        MainPID: String(pid),
      });
      await waitFor(
        () =>
          leader
            .reportsFor(MACHINE)
            .some(
              (r) => r.full && r.units.some((u) => u.unit === 'web.service' && u.mainPid === pid),
            ),
        'full report with the adopted pid',
      );
      leader.change(MACHINE, [], ['web.service', 'idle.service']);
      await waitFor(() => second.agent.units().length === 0, 'unloaded', 15_000);
      expect(isAlive(pid)).toBe(false);
    } finally {
      await stopNode(second);
    }
  });
});
