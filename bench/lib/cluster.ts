/**
 * A benchmark cluster on this host: real etcd and NATS (test harness), engine-only flotillad
 * leaders (`--disable-agent`, so the leader's CPU and RSS are its own), and optionally
 * agent-only flotillad processes with the systemd driver, each on its own real
 * `systemd --user` manager. Simulated agents run in separate processes (agents-process.ts).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectApi } from '../../src/api/client';
import { startEtcd, startNats, startSystemd } from '../../test/harness';
import type { EtcdCluster, NatsServer, SystemdManager } from '../../test/harness';
import { DaemonNode, daemonFlags } from '../../test/helpers/cluster';

/** Where each daemon's last output is kept after a run. */
export const LOG_DIR = path.join(os.tmpdir(), 'flotilla-bench-logs');

export interface BenchClusterOptions {
  /** Engine-only daemons (leader candidates). */
  leaders: number;
  /** Agent-only daemons with the systemd driver, each on its own systemd user manager. */
  systemdAgents: number;
  /** Extra environment for the leader daemons (e.g. NODE_OPTIONS=--cpu-prof). */
  leaderEnv?: NodeJS.ProcessEnv;
  agentEnv?: NodeJS.ProcessEnv;
  agentTtl?: string;
  leaseTtl?: string;
  /** Extra flags for the leaders. */
  leaderFlags?: string[];
}

export interface BenchCluster {
  readonly etcd: EtcdCluster;
  readonly nats: NatsServer;
  readonly clusterName: string;
  readonly leaders: DaemonNode[];
  readonly agents: DaemonNode[];
  readonly managers: SystemdManager[];
  /** The leader daemon currently holding the election key (asks the running ones). */
  currentLeader(): Promise<DaemonNode>;
  dispose(): Promise<void>;
}

/**
 * Environment for daemons and agent processes when FLOTILLA_BENCH_CPU_PROF=<dir> asks for CPU
 * profiles (a preloaded inspector hook: Node refuses --cpu-prof in NODE_OPTIONS).
 */
export function profileEnv(): NodeJS.ProcessEnv {
  const dir = process.env.FLOTILLA_BENCH_CPU_PROF;
  if (!dir) return {};
  const hook = path.join(__dirname, 'cpu-profile-hook.js');
  return { FLOTILLA_BENCH_CPU_PROF: dir, NODE_OPTIONS: `--require ${hook}` };
}

export async function startBenchCluster(o: BenchClusterOptions): Promise<BenchCluster> {
  const etcd = await startEtcd();
  const nats = await startNats();
  const clusterName = `b${randomBytes(4).toString('hex')}`;
  const leaders: DaemonNode[] = [];
  const agents: DaemonNode[] = [];
  const managers: SystemdManager[] = [];
  const all = (): DaemonNode[] => [...leaders, ...agents];
  let disposed = false;
  const onSignal = (): void => {
    void dispose().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const dispose = async (): Promise<void> => {
    if (disposed) return;
    disposed = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.all(all().map((n) => n.stop().catch(() => n.kill())));
    // Keep the daemons' last output for the record.
    fs.mkdirSync(LOG_DIR, { recursive: true });
    for (const n of all())
      fs.writeFileSync(path.join(LOG_DIR, `${clusterName}-${n.index}.log`), n.output);
    await Promise.all(managers.map((m) => m.dispose()));
    for (const n of all()) fs.rmSync(n.dir, { recursive: true, force: true });
    await nats.dispose();
    await etcd.dispose();
  };
  // Each daemon picks its ports (gRPC, HTTP) and announces them at info level: the level's
  // few lines are its life cycle (start, leadership, settling), none a unit's.
  const common = (machineId: string): string[] => [
    ...daemonFlags({
      etcd,
      nats,
      cluster: clusterName,
      machineId,
      grpcPort: 0,
      agentTtl: o.agentTtl ?? '4s',
      leaseTtl: o.leaseTtl ?? '2s',
    }),
    '--log-level',
    'info',
  ];
  try {
    for (let i = 0; i < o.leaders; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `flotilla-bench-leader${i}-`));
      const id = randomBytes(16).toString('hex');
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        FLOTILLA_CONFIG: path.join(dir, 'none.conf'),
        ...profileEnv(),
        ...o.leaderEnv,
      };
      const args = [
        ...common(id),
        '--disable-agent',
        '--units-directory',
        path.join(dir, 'units'),
        ...(o.leaderFlags ?? []),
      ];
      leaders.push(new DaemonNode(i, id, 0, args, env, dir));
    }
    for (let i = 0; i < o.systemdAgents; i++) {
      const systemd = await startSystemd();
      managers.push(systemd);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `flotilla-bench-agent${i}-`));
      const id = randomBytes(16).toString('hex');
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        FLOTILLA_CONFIG: path.join(dir, 'none.conf'),
        DBUS_SESSION_BUS_ADDRESS: systemd.busAddress,
        XDG_RUNTIME_DIR: systemd.env.XDG_RUNTIME_DIR,
        ...profileEnv(),
        ...o.agentEnv,
      };
      const args = [
        ...common(id),
        '--disable-engine',
        '--driver',
        'systemd',
        '--systemd-user',
        'true',
        '--units-directory',
        path.join(dir, 'units'),
      ];
      agents.push(new DaemonNode(o.leaders + i, id, 0, args, env, dir, systemd));
    }
    // Leaders first, so the first one started is the first leader.
    for (const n of leaders) await n.start();
    await Promise.all(agents.map((n) => n.start()));
  } catch (err) {
    await dispose();
    throw err;
  }
  const currentLeader = async (): Promise<DaemonNode> => {
    for (const n of all().filter((x) => x.running)) {
      const c = connectApi(n.endpoint, { requestTimeoutMs: 2000 });
      try {
        const s = await c.getClusterStatus({});
        const l = leaders.find((x) => x.machineId === s.leaderMachineId);
        if (l) return l;
      } catch {
        /* try the next one */
      } finally {
        c.close();
      }
    }
    throw new Error('no leader');
  };
  return { etcd, nats, clusterName, leaders, agents, managers, currentLeader, dispose };
}

/** Waits until a leader serves and at least `machines` agents are alive. */
export async function waitReady(
  endpoint: string,
  machines: number,
  timeoutMs = 60_000,
): Promise<void> {
  const api = connectApi(endpoint, { requestTimeoutMs: 2000 });
  const deadline = performance.now() + timeoutMs;
  try {
    for (;;) {
      try {
        const s = await api.getClusterStatus({});
        if (s.leaderMachineId && s.machines >= machines) return;
      } catch {
        /* not yet */
      }
      if (performance.now() > deadline)
        throw new Error(`cluster not ready after ${timeoutMs} ms (want ${machines} machines)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    api.close();
  }
}
