/**
 * Issue 17, point 7 (the history's speed) and point 1's budget (what the durable history costs
 * a burst):
 *
 * - folding 1,000,000 events (the state `replay` shows), in process and as `flotilla replay
 *   FILE` end to end (≤ 5 s);
 * - `flotilla replay FILE --unit NAME` over 1,000,000 events, end to end (≤ 2 s);
 * - `flotilla events export` of a 20,000-unit cluster from real etcd, end to end (≤ 2 s);
 * - the 20,000-unit burst (bench/burst.ts) with and without the leader's durable `UnitObserved`
 *   milestones, back to back in the order A B B A, as a ratio of the leader's CPU seconds
 *   (budget: ≤ 10 % more).
 *
 * The history is synthetic but made of what a cluster writes: machines joining, units
 * submitted, started, placed, observed loaded and active, failing with an exit status,
 * restarted, stopped, moved off a lost machine.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { statusOf, lifecycleOf } from '../src/engine/lifecycle';
import { encodeState } from '../src/engine/snapshot';
import type { EventBody, FlotillaEvent } from '../src/events/types';
import { SCHEMA_VERSION } from '../src/events/types';
import { writeHistoryFile } from '../src/history/export';
import { stateAt, unitTimeline } from '../src/history/replay';
import { EtcdLogStore } from '../src/store/etcd';
import type { Restored } from '../src/store/types';
import { randomBytes } from 'node:crypto';
import { connectApi } from '../src/api/client';
import { startEtcd, startNats, type EtcdCluster } from '../test/harness';
import { DaemonNode, daemonFlags } from '../test/helpers/cluster';
import { runBurst } from './burst';
import { fmtMs } from './lib/histogram';
import { versionsLine } from './lib/versions';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';

const run$ = promisify(execFile);
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');
const HOOK = path.join(__dirname, 'lib', 'no-observations-hook.js');

const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

/** A cluster's durable history: `units` units on `machines` machines, `n` events in all. */
export function syntheticHistory(n: number, units: number, machines: number): FlotillaEvent[] {
  const out: FlotillaEvent[] = [];
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const push = (b: EventBody): void => {
    if (out.length < n)
      out.push({
        ...b,
        index: out.length + 1,
        epoch: 1,
        time: t0 + out.length * 10,
        v: SCHEMA_VERSION,
      } as FlotillaEvent);
  };
  const m = (i: number): string => `m${String(i % machines).padStart(31, '0')}`;
  const u = (i: number): string => `svc-${i}.service`;
  const st = (active: string, sub: string, pid?: number, result?: string, exitStatus?: number) => ({
    load: 'loaded',
    active,
    sub,
    hash: 'h',
    ...(pid ? { mainPid: pid } : {}),
    ...(result ? { result } : {}),
    ...(exitStatus !== undefined ? { exitStatus } : {}),
  });
  for (let i = 0; i < machines; i++)
    push({ type: 'MachineUp', machine: m(i), ip: `10.0.${i >> 8}.${i & 255}`, metadata: {} });
  const where: string[] = [];
  /** What unit i's agent observed on its machine. */
  const seen = (i: number, state: ReturnType<typeof st> | null): void =>
    push({ type: 'UnitObserved', unit: u(i), machine: where[i], state });
  for (let i = 0; i < units; i++) {
    const options = [
      { section: 'Service', name: 'ExecStart', value: `/usr/bin/app --instance ${i}` },
      { section: 'X-Fleet', name: 'Conflicts', value: 'svc-*.service' },
    ];
    push({
      type: 'UnitSubmitted',
      unit: u(i),
      options,
      hash: `${i}`.padStart(40, 'a'),
      target: 'inactive',
    });
    push({ type: 'UnitTargetSet', unit: u(i), target: 'launched' });
    where[i] = m(i);
    push({ type: 'UnitScheduled', unit: u(i), machine: where[i], reason: 'least loaded' });
    seen(i, st('inactive', 'dead'));
    seen(i, st('active', 'running', 1000 + i));
  }
  // Churn, unit after unit, until the log is full.
  for (let round = 1; out.length < n; round++) {
    for (let i = 0; i < units && out.length < n; i++) {
      const pid = 1000 + round * units + i;
      switch ((round + i) % 4) {
        case 0: // fails with an exit status, restarted by systemd
          seen(i, st('failed', 'failed', undefined, 'exit-code', 1 + (i % 7)));
          seen(i, st('active', 'running', pid));
          break;
        case 1: // stopped and started again
          push({ type: 'UnitTargetSet', unit: u(i), target: 'loaded' });
          seen(i, st('inactive', 'dead'));
          push({ type: 'UnitTargetSet', unit: u(i), target: 'launched' });
          seen(i, st('active', 'running', pid));
          break;
        case 2: // moved to another machine
          push({ type: 'UnitUnscheduled', unit: u(i), machine: where[i], reason: 'rebalanced' });
          seen(i, null);
          where[i] = m(i + round);
          push({ type: 'UnitScheduled', unit: u(i), machine: where[i], reason: 'least loaded' });
          seen(i, st('active', 'running', pid));
          break;
        default: // restarted with a new main PID
          seen(i, st('active', 'running', pid));
      }
    }
  }
  return out;
}

async function cliMs(args: string[], endpoint = ''): Promise<{ ms: number; stdout: string }> {
  const t = performance.now();
  const r = await run$(process.execPath, [CLI, ...args], {
    maxBuffer: 1 << 28,
    env: { ...process.env, FLOTILLA_ENDPOINT: endpoint },
  });
  return { ms: performance.now() - t, stdout: r.stdout };
}

interface Figures {
  events: number;
  units: number;
  fileBytes: number;
  foldMs: number;
  foldCpuMs: number;
  foldLoad: string;
  replayCliMs: number;
  replayCliLoad: string;
  timelineMs: number;
  timelineEntries: number;
  unitCliMs: number;
  unitCliLoad: string;
  exportUnits: number;
  exportEvents: number;
  exportBytes: number;
  exportCliMs: number;
  exportLoad: string;
  /** The same history through a leader's API (`events export` with no store named), 3 runs. */
  exportApiMs: number[];
  exportApiLoad: string;
}

/** Folds, replays one unit, and exports; every figure in one process, with the load average. */
async function measure(
  events: number,
  units: number,
  exportUnits: number,
  dir: string,
): Promise<Figures> {
  const tail = syntheticHistory(events, units, 100);
  const restored: Restored = { tail };
  const file = path.join(dir, 'history.ndjson');
  const { bytes } = writeHistoryFile(file, restored, 'bench');

  const foldLoad = load();
  const cpu0 = process.cpuUsage();
  let t = performance.now();
  const s = stateAt(restored);
  for (const u of s.units.values()) statusOf(lifecycleOf(s, u));
  const foldMs = performance.now() - t;
  const c = process.cpuUsage(cpu0);
  const foldCpuMs = (c.user + c.system) / 1000;

  const replayCliLoad = load();
  const replayCli = await cliMs(['replay', file]);
  const name = `svc-${Math.floor(units / 2)}.service`;
  t = performance.now();
  const tl = unitTimeline(restored, name);
  const timelineMs = performance.now() - t;
  const unitCliLoad = load();
  const unitCli = await cliMs(['replay', file, '--unit', name]);
  if (!unitCli.stdout.includes(name)) throw new Error(`replay --unit printed no ${name}`);

  // events export: a 20,000-unit cluster in real etcd (the log behind a snapshot of it).
  const etcd = await startEtcd();
  try {
    const cluster = 'benchhistory';
    const store = new EtcdLogStore({
      endpoints: etcd.endpoints,
      cluster,
      logger: { warn: () => undefined },
    });
    const log = syntheticHistory(exportUnits * 5 + 100, exportUnits, 100);
    try {
      const term = await store.campaign(
        { machine: 'bench', address: '' },
        AbortSignal.timeout(30_000),
      );
      for (let i = 0; i < log.length; i += 1000) await term.append(log.slice(i, i + 1000));
      const st = stateAt({ tail: log });
      await term.writeSnapshot({ index: st.index, epoch: 1, data: encodeState(st) });
      await term.resign();
    } finally {
      await store.close();
    }
    const out = path.join(dir, 'export.ndjson');
    const exportLoad = load();
    const ex = await cliMs([
      'events',
      'export',
      out,
      '--etcd-servers',
      etcd.endpoints.join(','),
      '--cluster',
      cluster,
    ]);
    void ex.stdout;
    const viaApi = await exportThroughLeader(etcd, cluster, dir);
    return {
      events: tail.length,
      units,
      fileBytes: bytes,
      foldMs,
      foldCpuMs,
      foldLoad,
      replayCliMs: replayCli.ms,
      replayCliLoad,
      timelineMs,
      timelineEntries: tl.entries.length,
      unitCliMs: unitCli.ms,
      unitCliLoad,
      exportUnits,
      exportEvents: log.length,
      exportBytes: fs.statSync(out).size,
      exportCliMs: ex.ms,
      exportLoad,
      exportApiMs: viaApi.ms,
      exportApiLoad: viaApi.load,
    };
  } finally {
    await etcd.dispose();
  }
}

/**
 * `flotilla events export FILE` with no store named: a leader (engine only) restores the
 * cluster in `etcd`, then streams its history through the API; end to end, the CLI included.
 */
async function exportThroughLeader(
  etcd: EtcdCluster,
  cluster: string,
  dir: string,
): Promise<{ ms: number[]; load: string }> {
  const nats = await startNats();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bench-export-'));
  const id = randomBytes(16).toString('hex');
  const flags = daemonFlags({
    etcd,
    nats,
    cluster,
    machineId: id,
    grpcPort: 0,
    // No agent answers for this history's 100 machines: a long TTL keeps the leader from
    // planning while it exports (the synthetic units all conflict with one another).
    agentTtl: '600s',
    leaseTtl: '2s',
  });
  const leader = new DaemonNode(
    0,
    id,
    0,
    [...flags, '--log-level', 'info', '--disable-agent', '--units-directory', path.join(home, 'u')],
    { PATH: process.env.PATH, FLOTILLA_CONFIG: path.join(home, 'none.conf') },
    home,
  );
  try {
    await leader.start();
    const api = connectApi(leader.endpoint, { requestTimeoutMs: 5000 });
    try {
      const end = Date.now() + 120_000;
      for (;;) {
        const st = await api.getClusterStatus({}).catch(() => undefined);
        if (st?.leaderMachineId === id) break;
        if (Date.now() > end)
          throw new Error(`the leader did not restore in time:\n${leader.output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      api.close();
    }
    // Three in a row: the first is the leader's first read of its store since it restored.
    const l = load();
    const out = path.join(dir, 'export-api.ndjson');
    const ms: number[] = [];
    for (let i = 0; i < 3; i++)
      ms.push((await cliMs(['events', 'export', out], leader.endpoint)).ms);
    return { ms, load: l };
  } finally {
    await leader.stop().catch(() => leader.kill());
    await nats.dispose();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

interface BurstRow {
  withObservations: boolean;
  leaderCpuS: number;
  allRunningMs: number;
  load: string;
}

/** The burst, A B B A: with (A) and without (B) the durable observations. */
async function burstAB(units: number, agents: number): Promise<BurstRow[]> {
  const rows: BurstRow[] = [];
  for (const withObservations of [true, false, false, true]) {
    const l = load();
    const r = await runBurst({
      units,
      agents,
      processes: 2,
      footprint: false,
      restMs: 1000,
      leaderEnv: withObservations ? undefined : { NODE_OPTIONS: `--require ${HOOK}` },
    });
    if (r.active < units) throw new Error(`burst: only ${r.active} of ${units} running`);
    rows.push({
      withObservations,
      leaderCpuS: r.leaderCpuBurstS,
      allRunningMs: r.allRunningMs,
      load: l,
    });
    console.log(JSON.stringify(rows.at(-1)));
  }
  return rows;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function report(f: Figures, ab: BurstRow[] | undefined): string {
  const k = (n: number): string => n.toLocaleString('en-US');
  const lines = [
    `A synthetic history of ${k(f.events)} events (${k(f.units)} units on 100 machines: placed, observed`,
    'loaded and active, failing with an exit status, restarted, stopped and started, moved), written',
    `as a history file (${(f.fileBytes / 2 ** 20).toFixed(0)} MiB). End-to-end figures run the CLI (\`node dist/src/cli/main.js\`,`,
    'Node start-up and reading the file included). Load average (1, 5, 15 min) when each started.',
    '',
    '| | Flotilla | target | load average |',
    '|---|---:|---:|---|',
    `| fold ${k(f.events)} events (state and every unit's lifecycle), in process | **${fmtMs(f.foldMs)}** (CPU ${fmtMs(f.foldCpuMs)}) | ≤ 5 s | ${f.foldLoad} |`,
    `| \`flotilla replay FILE\` (${k(f.events)} events), end to end | **${fmtMs(f.replayCliMs)}** | ≤ 5 s | ${f.replayCliLoad} |`,
    `| \`flotilla replay FILE --unit NAME\` (${k(f.events)} events, ${k(f.timelineEntries)} about the unit), end to end | **${fmtMs(f.unitCliMs)}** (${fmtMs(f.timelineMs)} in process, after reading) | ≤ 2 s | ${f.unitCliLoad} |`,
    `| \`flotilla events export\` of ${k(f.exportUnits)} units from etcd (snapshot and ${k(f.exportEvents)} events, ${(f.exportBytes / 2 ** 20).toFixed(1)} MiB), end to end | **${fmtMs(f.exportCliMs)}** | ≤ 2 s | ${f.exportLoad} |`,
    `| the same through a leader's API (\`events export FILE\`, no store named: the leader reads and streams it), end to end, three in a row | **${f.exportApiMs.map(fmtMs).join(', ')}** | ≤ 2 s | ${f.exportApiLoad} |`,
  ];
  if (ab) {
    const a = ab.filter((r) => r.withObservations);
    const b = ab.filter((r) => !r.withObservations);
    const ratio = mean(a.map((r) => r.leaderCpuS)) / mean(b.map((r) => r.leaderCpuS));
    lines.push(
      '',
      `What the durable history costs a burst: bench/burst.ts (${k(20_000)} units on 50 simulated agents) four times`,
      'back to back, A B B A: A as shipped, B with the leader committing no durable `UnitObserved`',
      '(`bench/lib/no-observations-hook.js` preloaded). Leader CPU seconds during the burst:',
      '',
      '| run | durable observations | leader CPU | all running after | load average before |',
      '|---|---|---:|---:|---|',
      ...ab.map(
        (r, i) =>
          `| ${i + 1} | ${r.withObservations ? 'yes (A)' : 'no (B)'} | ${r.leaderCpuS.toFixed(1)} s | ${fmtMs(r.allRunningMs)} | ${r.load} |`,
      ),
      '',
      `Leader CPU with ÷ without: **${ratio.toFixed(2)}** (budget ≤ 1.10).`,
    );
  }
  return lines.join('\n');
}

async function run(opts: BenchOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bench-history-'));
  try {
    const f = opts.smoke
      ? await measure(20_000, 1000, 500, dir)
      : await measure(1_000_000, 10_000, 20_000, dir);
    // FLOTILLA_BENCH_HISTORY_BURST=0: the figures above only (the burst takes many minutes).
    const burst = !opts.smoke && process.env.FLOTILLA_BENCH_HISTORY_BURST !== '0';
    const ab = burst ? await burstAB(20_000, 50) : undefined;
    const body = report(f, ab);
    console.log(body);
    if (!opts.smoke)
      writeSection(
        'history',
        'History: folding, replay and export; what the durable history costs a burst',
        'npm run build && node dist/bench/run.js history',
        `${versionsLine()}\n\n${body}`,
      );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const historyBenchmark: Benchmark = {
  name: 'history',
  description:
    'history: fold and replay --unit over 1,000,000 events, events export of 20,000 units, burst with/without durable observations',
  run,
};
