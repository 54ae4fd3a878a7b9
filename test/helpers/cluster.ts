import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEtcd, startNats, startSystemd } from '../harness';
import type { EtcdCluster, NatsServer, SystemdManager } from '../harness';
import type { EtcdOptions } from '../harness/etcd';
import type { NatsOptions } from '../harness/nats';
import { tcpOpen } from '../harness/ports';
import { isAlive, killGroup, track, untrack } from '../harness/registry';
import { announcedPort, type Listener } from './announced';
import { killUnitProcesses } from './unit-processes';

/** The repository root (works from test/ under ts and from dist/test/ when compiled). */
function repoRoot(): string {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
}

/** Path of the built daemon (`npm test` runs `npm run build` first). */
export const FLOTILLAD = path.join(repoRoot(), 'dist', 'src', 'daemon', 'main.js');

export interface NodeSpec {
  /** Default: a random 32-hex-digit ID. */
  machineId?: string;
  /** Default info; the daemon announces the ports it picked at info level. */
  logLevel?: 'debug' | 'info';
  /** Extra flags for this daemon only. */
  flags?: string[];
  metadata?: Record<string, string>;
  disableEngine?: boolean;
  disableAgent?: boolean;
  /** Another build's flotillad (the rolling-upgrade test); default this build's. */
  script?: string;
}

export interface ClusterOptions {
  nodes: NodeSpec[];
  /** Real systemd user managers (one per node) with the systemd driver; otherwise the simulated driver. */
  systemd?: boolean;
  /** With `process`, agents run units as child processes (the dev-mode driver) instead of simulating them. */
  driver?: 'simulated' | 'process';
  agentTtl?: string;
  leaseTtl?: string;
  /** Extra flags for every daemon. */
  flags?: string[];
  /** How to start etcd and NATS (TLS, auth, max_payload). */
  etcd?: EtcdOptions;
  nats?: NatsOptions;
  /** Default: a random name. */
  clusterName?: string;
}

/** How a daemon is launched, when not plainly on the host's loopback. */
export interface LaunchOptions {
  /** Command run before node (e.g. `ip netns exec NAME`), which must exec it in place. */
  prefix?: string[];
  /** Readiness probe (default: its gRPC port accepts connections on the host's loopback). */
  ready?: () => Promise<boolean>;
  /** The flotillad script to run (default: this build's; another build's for upgrade tests). */
  script?: string;
}

/** How much of a daemon's first output is kept for its port announcements. */
const HEAD_CHARS = 64 * 1024;

/** One flotillad process of a test cluster. */
export class DaemonNode {
  proc: ChildProcess | undefined;
  /** The last 20,000 characters it wrote since its last start. */
  output = '';
  /** The first lines it wrote since its last start, where it announces its ports. */
  private head = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    readonly machineId: string,
    /** 0: the daemon picks a free port at its first start and says which (see `grpcPort`). */
    private port: number,
    readonly args: string[],
    readonly env: NodeJS.ProcessEnv,
    readonly dir: string,
    readonly systemd?: SystemdManager,
    readonly launch: LaunchOptions = {},
  ) {}

  /**
   * The gRPC port. A daemon started on port 0 binds a free port itself and announces it
   * (test/helpers/announced.ts; it needs info-level logs); restarts keep that port.
   */
  get grpcPort(): number {
    return this.port;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Starts the daemon and waits until its gRPC port accepts connections. */
  async start(): Promise<void> {
    this.output = '';
    this.head = '';
    const [cmd, ...pre] = [...(this.launch.prefix ?? []), process.execPath];
    const proc = spawn(cmd, [...pre, this.launch.script ?? FLOTILLAD, ...this.args], {
      env: this.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const keep = (b: Buffer): void => {
      this.output = (this.output + b.toString()).slice(-20000);
      if (this.head.length < HEAD_CHARS) this.head += b.toString();
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    track({ pid: proc.pid!, kind: 'flotillad' });
    const deadline = Date.now() + 20000;
    const ready = this.launch.ready ?? (async () => this.port !== 0 && (await tcpOpen(this.port)));
    while (!(await ready())) {
      if (this.port === 0) this.learnPort();
      if (!this.running)
        throw new Error(`flotillad ${this.index} exited during start:\n${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`flotillad ${this.index} did not listen in time:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * The port of a listener given with port 0 (`--http-listen 127.0.0.1:0`, the default of
   * `daemonFlags`; `--fleet-api-listen`), once the running daemon has announced it (it needs
   * info-level logs); a restart may get another.
   */
  async listenerPort(what: Listener, timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const port = announcedPort(this.head, what);
      if (port !== undefined) return port;
      if (!this.running)
        throw new Error(
          `flotillad ${this.index} exited before announcing ${what}:\n${this.output}`,
        );
      if (Date.now() > deadline)
        throw new Error(`flotillad ${this.index} announced no ${what} port:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Reads the port a daemon started on port 0 announced, and keeps it for its restarts. */
  private learnPort(): void {
    const port = announcedPort(this.head, 'API');
    if (port === undefined) return;
    const at = this.args.indexOf('--grpc-listen');
    if (at >= 0 && this.args[at + 1] === '127.0.0.1:0') this.args[at + 1] = `127.0.0.1:${port}`;
    this.port = port;
  }

  /** Sends `sig` to the daemon's process group (SIGSTOP/SIGCONT to freeze and thaw it). */
  signal(sig: NodeJS.Signals): void {
    if (this.proc?.pid && this.running) killGroup(this.proc.pid, sig);
  }

  /** SIGKILL: no clean-up, no resignation — a crash. */
  async kill(): Promise<void> {
    if (!this.proc?.pid) return;
    if (this.running) killGroup(this.proc.pid, 'SIGKILL');
    await this.exited;
    untrack(this.proc.pid);
  }

  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (!this.proc?.pid || !this.running) return this.proc?.exitCode ?? null;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc?.pid && killGroup(this.proc.pid, 'SIGKILL'), 15000);
    await this.exited;
    clearTimeout(t);
    untrack(this.proc.pid);
    return this.proc.exitCode;
  }
}

export interface TestCluster extends AsyncDisposable {
  readonly etcd: EtcdCluster;
  readonly nats: NatsServer;
  readonly nodes: DaemonNode[];
  readonly clusterName: string;
  /** Endpoints of every daemon, for FLOTILLA_ENDPOINT. */
  endpoints(): string[];
  /**
   * Starts one more daemon of this cluster (disposed with it), e.g. one whose flags name a port
   * an earlier daemon picked.
   */
  addNode(spec: NodeSpec): Promise<DaemonNode>;
  dispose(): Promise<void>;
}

/**
 * A Flotilla cluster on one host: real etcd and NATS, and one flotillad process per node, each
 * with its own machine ID and (with `systemd`) its own systemd user manager.
 */
/** The flags every flotillad of a local test or benchmark cluster gets. */
export function daemonFlags(o: {
  etcd: EtcdCluster;
  nats: NatsServer;
  cluster: string;
  machineId: string;
  grpcPort: number;
  agentTtl: string;
  leaseTtl: string;
  httpListen?: string;
}): string[] {
  return [
    '--etcd-servers',
    o.etcd.endpoints.join(','),
    '--nats-servers',
    o.nats.url,
    '--cluster',
    o.cluster,
    '--machine-id',
    o.machineId,
    '--public-ip',
    '127.0.0.1',
    '--grpc-listen',
    `127.0.0.1:${o.grpcPort}`,
    '--agent-ttl',
    o.agentTtl,
    '--lease-ttl',
    o.leaseTtl,
    // Not the default 127.0.0.1:7071: many daemons share this host.
    '--http-listen',
    o.httpListen ?? '127.0.0.1:0',
  ];
}

export async function startCluster(opts: ClusterOptions): Promise<TestCluster> {
  if (!fs.existsSync(FLOTILLAD))
    throw new Error(`${FLOTILLAD} is missing: run \`npm run build\` first`);
  const etcd = await startEtcd(opts.etcd);
  const nats = await startNats(opts.nats);
  const clusterName = opts.clusterName ?? `t${randomBytes(4).toString('hex')}`;
  const nodes: DaemonNode[] = [];
  const managers: SystemdManager[] = [];
  const dispose = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
    // The process driver's units outlive their daemon (as units outlive fleetd under systemd).
    for (const n of nodes) killUnitProcesses(path.join(n.dir, 'units'));
    await Promise.all(managers.map((m) => m.dispose()));
    for (const n of nodes) fs.rmSync(n.dir, { recursive: true, force: true });
    await nats.dispose();
    await etcd.dispose();
  };
  /** The daemon of node `spec`, index `i`, not started. */
  const nodeFor = async (spec: NodeSpec, i: number): Promise<DaemonNode> => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `flotilla-node${i}-`));
    const machineId = spec.machineId ?? randomBytes(16).toString('hex');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      FLOTILLA_CONFIG: path.join(dir, 'none.conf'),
      // At least info: the daemon announces the ports it picked at that level.
      FLOTILLA_LOG_LEVEL: spec.logLevel ?? 'info',
    };
    let systemd: SystemdManager | undefined;
    const driverFlags: string[] = [];
    if (opts.systemd && !spec.disableAgent) {
      systemd = await startSystemd();
      managers.push(systemd);
      env.DBUS_SESSION_BUS_ADDRESS = systemd.busAddress;
      env.XDG_RUNTIME_DIR = systemd.env.XDG_RUNTIME_DIR;
      driverFlags.push(
        '--driver',
        'systemd',
        '--systemd-user',
        'true',
        '--units-directory',
        path.join(dir, 'units'),
      );
    } else {
      const driver = opts.driver ?? 'simulated';
      driverFlags.push('--driver', driver, '--units-directory', path.join(dir, 'units'));
    }
    const metadata = Object.entries(spec.metadata ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const args = [
      ...daemonFlags({
        etcd,
        nats,
        cluster: clusterName,
        machineId,
        grpcPort: 0,
        agentTtl: opts.agentTtl ?? '4s',
        leaseTtl: opts.leaseTtl ?? '3s',
      }),
      ...(metadata ? ['--metadata', metadata] : []),
      ...(spec.disableEngine ? ['--disable-engine'] : []),
      ...(spec.disableAgent ? ['--disable-agent'] : []),
      ...driverFlags,
      ...(opts.flags ?? []),
      ...(spec.flags ?? []),
    ];
    return new DaemonNode(i, machineId, 0, args, env, dir, systemd, { script: spec.script });
  };
  try {
    for (let i = 0; i < opts.nodes.length; i++) nodes.push(await nodeFor(opts.nodes[i], i));
    await Promise.all(nodes.map((n) => n.start()));
  } catch (err) {
    await dispose();
    throw err;
  }
  const addNode = async (spec: NodeSpec): Promise<DaemonNode> => {
    const node = await nodeFor(spec, nodes.length);
    nodes.push(node);
    await node.start();
    return node;
  };
  return {
    etcd,
    nats,
    nodes,
    clusterName,
    endpoints: () => nodes.filter((n) => n.running).map((n) => n.endpoint),
    addNode,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}

/** Main PID of a unit on a node's systemd manager, via systemctl --user (0 when not running). */
export async function mainPid(node: DaemonNode, unit: string): Promise<number> {
  if (!node.systemd) throw new Error('node has no systemd manager');
  return new Promise((resolve, reject) => {
    execFile(
      'systemctl',
      ['--user', 'show', '-p', 'MainPID', '--value', unit],
      { env: node.systemd!.env },
      (err, out) => {
        if (err) reject(err);
        else resolve(Number(out.trim()) || 0);
      },
    );
  });
}

export { isAlive };
