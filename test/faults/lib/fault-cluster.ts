/**
 * A cluster for one fault case: real etcd (1 or 3 members) and NATS (1 or 3 routed nodes),
 * engine-only flotillad leader candidates, and agent-only flotillad daemons with the process
 * driver, optionally one of them inside a network namespace of its own (test/harness/netns.ts).
 *
 * Every unit runs test/faults/lib's unit script, which appends "<pid> <agent> <ms>" to its own
 * record file when it starts: restarts are counted from the units' own records, not from what
 * the cluster says about them.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectApi, type ApiClient } from '../../../src/api/client';
import { UnitView } from '../../../src/gen/flotilla/v1/flotilla';
import { openLogStore } from '../../../src/store/open';
import type { FlotillaEvent } from '../../../src/events/types';
import { startEtcdCluster } from '../../harness';
import type { EtcdCluster } from '../../harness';
import { startNatsCluster, type NatsCluster } from '../../harness/nats-cluster';
import { startPartition, type Partition } from '../../harness/netns';
import { killGroup } from '../../harness/registry';
import { killUnitProcesses } from '../../helpers/unit-processes';
import { pidAlive } from '../../../src/drivers/process';
import { DaemonNode, FLOTILLAD } from '../../helpers/cluster';
import { sleep, waitFor } from './wait';
import { startWriter, type Writer } from './writer';

export interface FaultClusterOptions {
  etcdMembers?: number;
  natsNodes?: number;
  /** Engine-only daemons (default 2). */
  leaders?: number;
  /** Agent-only daemons with the process driver (default 3). */
  agents?: number;
  /** Index of the agent run in a network namespace of its own. */
  isolate?: number;
  agentTtl?: string;
  leaseTtl?: string;
}

/** One start of a unit, from its record file. */
export interface UnitStart {
  pid: number;
  agent: number;
  ms: number;
}

const UNIT_SCRIPT = `#!/bin/sh
# $1: this unit's record file; $2: the test's directory (the unit exits once it is gone).
echo "$$ \${FAULT_AGENT:-?} $(date +%s%3N)" >> "$1"
while [ -d "$2" ]; do sleep 5; done
`;

/** Where a case starts from: its units running, where they run, and each one's starts so far. */
export interface Baseline {
  units: string[];
  placed: Map<string, string[]>;
  before: Map<string, UnitStart[]>;
}

export class FaultCluster {
  readonly clusterName = `f${randomBytes(4).toString('hex')}`;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-faults-'));
  etcd!: EtcdCluster;
  nats!: NatsCluster;
  partition: Partition | undefined;
  readonly leaders: DaemonNode[] = [];
  readonly agents: DaemonNode[] = [];
  private readonly clients = new Map<string, ApiClient>();
  /** Daemons frozen with SIGSTOP (left out of `reachable`). */
  readonly paused = new Set<DaemonNode>();

  private constructor(readonly opts: FaultClusterOptions) {}

  static async start(opts: FaultClusterOptions = {}): Promise<FaultCluster> {
    if (!fs.existsSync(FLOTILLAD))
      throw new Error(`${FLOTILLAD} is missing: run \`npm run build\` first`);
    const c = new FaultCluster(opts);
    try {
      await c.boot();
    } catch (err) {
      await c.dispose();
      throw err;
    }
    return c;
  }

  private async boot(): Promise<void> {
    const o = this.opts;
    fs.mkdirSync(path.join(this.dir, 'starts'));
    fs.writeFileSync(path.join(this.dir, 'unit.sh'), UNIT_SCRIPT, { mode: 0o755 });
    this.etcd = await startEtcdCluster(o.etcdMembers ?? 1);
    this.nats = await startNatsCluster(o.natsNodes ?? 1);
    const nAgents = o.agents ?? 3;
    if (o.isolate !== undefined) {
      const ports = [...this.etcd.endpoints, ...this.nats.urls].map((u) => Number(new URL(u).port));
      this.partition = await startPartition(ports);
    }
    for (let i = 0; i < (o.leaders ?? 2); i++) this.leaders.push(await this.node(i, 'leader'));
    for (let i = 0; i < nAgents; i++) this.agents.push(await this.node(i, 'agent'));
    // Leaders first: the first started is the first leader.
    for (const n of this.leaders) await n.start();
    await this.waitLeader();
    await Promise.all(this.agents.map((n) => n.start()));
    await waitFor(
      'every agent alive',
      async () => (await this.aliveMachines()).size === nAgents,
      30_000,
    );
  }

  private async node(i: number, role: 'leader' | 'agent'): Promise<DaemonNode> {
    const dir = fs.mkdtempSync(path.join(this.dir, `${role}${i}-`));
    const id = randomBytes(16).toString('hex');
    const isolated = role === 'agent' && i === this.opts.isolate;
    // Port 0: the daemon picks its gRPC port and announces it (DaemonNode reads it and keeps it
    // for restarts). The isolated agent advertises its address, so that port is known before it
    // starts: 7070, in a network namespace of its own where nothing else listens.
    const port = isolated ? 7070 : 0;
    const via = (u: string): string =>
      isolated ? u.replace('127.0.0.1', this.partition!.hostIp) : u;
    const args = [
      '--etcd-servers',
      this.etcd.endpoints.map(via).join(','),
      '--nats-servers',
      this.nats.urls.map(via).join(','),
      '--cluster',
      this.clusterName,
      '--machine-id',
      id,
      '--public-ip',
      '127.0.0.1',
      '--grpc-listen',
      `127.0.0.1:${port}`,
      '--http-listen',
      '127.0.0.1:0',
      '--agent-ttl',
      this.opts.agentTtl ?? '2s',
      '--lease-ttl',
      this.opts.leaseTtl ?? '2s',
      ...(role === 'leader' ? ['--disable-agent'] : ['--disable-engine', '--driver', 'process']),
      '--units-directory',
      path.join(dir, 'units'),
    ];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      FLOTILLA_CONFIG: path.join(dir, 'none.conf'),
      FLOTILLA_LOG_LEVEL: 'info',
      FAULT_AGENT: String(i),
    };
    const index = role === 'leader' ? i : 100 + i;
    if (!isolated) return new DaemonNode(index, id, port, args, env, dir);
    // Its servers are reached through the gateway's address, not loopback, so flotillad refuses
    // a loopback advertise address: it listens and advertises on its namespace's own address.
    const own = `${this.partition!.isolatedIp}:${port}`;
    args[args.indexOf(`127.0.0.1:${port}`)] = own;
    // Plaintext on that address is reachable only from our own gateway namespace.
    args.push('--grpc-advertise', own, '--grpc-insecure');
    // Inside the namespace its gRPC port is out of reach: it is ready once the leader sees it.
    return new DaemonNode(index, id, port, args, env, dir, undefined, {
      prefix: this.partition!.prefix,
      ready: async () => (await this.aliveMachines().catch(() => new Set<string>())).has(id),
    });
  }

  /** Daemons the test can reach (running, not inside the namespace). */
  reachable(): DaemonNode[] {
    return [...this.leaders, ...this.agents].filter(
      (n) =>
        n.running &&
        !this.paused.has(n) &&
        !(this.partition && n === this.agents[this.opts.isolate!]),
    );
  }

  /** SIGSTOP: the process is frozen, its sockets stay open (a long GC pause, a stuck VM). */
  pause(n: DaemonNode): void {
    this.paused.add(n);
    n.signal('SIGSTOP');
  }

  resume(n: DaemonNode): void {
    n.signal('SIGCONT');
    this.paused.delete(n);
  }

  api(node: DaemonNode, timeoutMs = 3000): ApiClient {
    const key = `${node.endpoint}/${timeoutMs}`;
    let c = this.clients.get(key);
    if (!c) {
      c = connectApi(node.endpoint, { requestTimeoutMs: timeoutMs });
      this.clients.set(key, c);
    }
    return c;
  }

  /** Calls `fn` on each reachable daemon in turn until one answers. */
  async ask<T>(fn: (api: ApiClient) => Promise<T>, timeoutMs = 3000): Promise<T> {
    let last: unknown = new Error('no daemon reachable');
    for (const n of this.reachable()) {
      try {
        return await fn(this.api(n, timeoutMs));
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** The leader candidate that holds the lease now, by its own account. */
  async waitLeader(timeoutMs = 30_000): Promise<DaemonNode> {
    return waitFor(
      'a leader',
      async () => {
        const s = await this.ask((a) => a.getClusterStatus({}));
        return this.leaders.find((l) => l.machineId === s.leaderMachineId && l.running);
      },
      timeoutMs,
    );
  }

  async aliveMachines(): Promise<Set<string>> {
    const r = await this.ask((a) => a.listMachines({}));
    return new Set(r.machines.filter((m) => m.state === 'alive').map((m) => m.id));
  }

  /** unit → machines where it is reported active. */
  async placements(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    let pageToken = '';
    do {
      const r = await this.ask((a) => a.listUnitStates({ pageSize: 1000, pageToken }));
      for (const s of r.states) {
        if (s.activeState !== 'active') continue;
        out.set(s.name, [...(out.get(s.name) ?? []), s.machineId]);
      }
      pageToken = r.nextPageToken;
    } while (pageToken !== '');
    return out;
  }

  /** `n` launched units running once each, and the placement and starts to compare against. */
  async baseline(n = 30): Promise<Baseline> {
    const units = await this.launch(n);
    return { units, placed: await this.placements(), before: this.starts() };
  }

  /** The case's client: 20 writes a second, each to the next reachable daemon. */
  writer(): Writer {
    return startWriter(
      () => this.reachable(),
      (n) => this.api(n),
    );
  }

  /** Submits `n` launched units (record-keeping script) and waits until each runs once. */
  async launch(n: number, prefix = 'svc'): Promise<string[]> {
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}.service`);
    await this.ask(
      (a) =>
        a.createUnits({
          units: names.map((name) => ({
            name,
            options: [
              {
                section: 'Service',
                name: 'ExecStart',
                value: `/bin/sh ${this.dir}/unit.sh ${this.dir}/starts/${name} ${this.dir}`,
              },
            ],
            targetState: 'launched',
          })),
          replace: false,
        }),
      15_000,
    );
    await waitFor(
      `${n} units active once each`,
      async () => {
        const p = await this.placements();
        const starts = this.starts();
        return names.every((u) => p.get(u)?.length === 1 && starts.get(u)?.length === 1);
      },
      30_000,
    );
    return names;
  }

  /** Every unit name in the cluster (paged ListUnits), asked of any reachable daemon. */
  async unitNames(): Promise<string[]> {
    const names: string[] = [];
    let pageToken = '';
    do {
      const r = await this.ask(
        (a) => a.listUnits({ pageSize: 5000, pageToken, view: UnitView.UNIT_VIEW_BASIC }),
        10_000,
      );
      for (const u of r.units) names.push(u.name);
      pageToken = r.nextPageToken;
    } while (pageToken !== '');
    return names;
  }

  /** Every unit's starts so far, from the units' own record files. */
  starts(): Map<string, UnitStart[]> {
    const out = new Map<string, UnitStart[]>();
    const dir = path.join(this.dir, 'starts');
    for (const f of fs.readdirSync(dir)) {
      const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
      out.set(
        f,
        lines.map((l) => {
          const [pid, agent, ms] = l.split(' ');
          return { pid: Number(pid), agent: Number(agent), ms: Number(ms) };
        }),
      );
    }
    return out;
  }

  /** PIDs of processes of `units` still running (a unit's main PID is its record's). */
  runningPids(units: string[]): number[] {
    const starts = this.starts();
    return units.flatMap((u) => (starts.get(u) ?? []).map((s) => s.pid)).filter(pidAlive);
  }

  /** Every durable event in etcd, in log order (the log a replay folds). */
  async readLog(): Promise<FlotillaEvent[]> {
    const store = openLogStore({
      kind: 'etcd',
      endpoints: this.etcd.endpoints,
      cluster: this.clusterName,
    });
    try {
      return (await store.readAll()).tail;
    } finally {
      await store.close();
    }
  }

  /** Stops everything: daemons, units (by their records), servers, namespaces, temp dirs. */
  async dispose(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    await Promise.all([...this.leaders, ...this.agents].map((n) => n.kill()));
    // Keepers first (they would write their unit's exit file into a directory being removed).
    for (const n of this.agents) killUnitProcesses(path.join(n.dir, 'units'));
    if (fs.existsSync(path.join(this.dir, 'starts')))
      for (const list of this.starts().values()) for (const s of list) killGroup(s.pid, 'SIGKILL');
    await this.partition?.dispose();
    await this.nats?.dispose();
    await this.etcd?.dispose();
    if (process.env.FLOTILLA_FAULTS_KEEP) {
      for (const n of [...this.leaders, ...this.agents])
        fs.writeFileSync(path.join(n.dir, 'daemon.log'), n.output);
      console.log(`kept ${this.dir}`);
    } else fs.rmSync(this.dir, { recursive: true, force: true, maxRetries: 5 });
  }
}

export { sleep };
