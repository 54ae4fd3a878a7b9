/**
 * Issue 7, figures 3, 4 (the per-agent ratio) and 6: a burst of units on simulated agents.
 * One engine-only flotillad leader on real etcd and NATS; N agents spread over a few agent
 * processes, each agent with its own NATS connection and a SimulatedDriver. Units are submitted
 * with target `launched` as fast as the API accepts (CreateUnits of 1,000, two in flight) while
 * a second client lists every unit again and again; "running" is observed through the Watch API.
 * Then the cluster rests and the leader's CPU and RSS are read from /proc.
 */
import { connectApi } from '../src/api/client';
import { AgentFleet } from './lib/agents';
import { startBenchCluster, waitReady } from './lib/cluster';
import { fmtMs, summarize } from './lib/histogram';
import { cpuMeter, rssBytes, sleep } from './lib/proc';
import { probeProcess, submitLaunched } from './lib/submit';
import { listAllUnitNames, unitNames } from './lib/units';
import { ActiveWatcher } from './lib/watcher';
import type { BenchOptions, Benchmark } from './benchmark';
import { mib, writeSection } from './report';
import { versionsLine } from './lib/versions';

export interface BurstParams {
  units: number;
  agents: number;
  processes: number;
  /** Probe listing and measure the cluster at rest (figure 6). */
  footprint: boolean;
  restMs: number;
  leaderEnv?: NodeJS.ProcessEnv;
  /**
   * Started just before the burst with the leader's HTTP address, stopped once all run, `after`
   * once the leader's CPU was read (bench/viz.ts).
   */
  observer?: (httpAt: string) => Promise<{ stop(): Promise<void>; after?(): Promise<void> }>;
}

export interface BurstResult extends BurstParams {
  active: number;
  acceptedMs: number;
  allRunningMs: number;
  mutate: ReturnType<typeof summarize>;
  smallMutate?: ReturnType<typeof summarize>;
  failures: number;
  listBurst?: ReturnType<typeof summarize> & { sizes: number[] };
  listRest?: ReturnType<typeof summarize>;
  changesPerPlacedMin: number;
  changesPerPlacedMax: number;
  msgsPerAgentMin: number;
  msgsPerAgentMax: number;
  foreignMessages: number;
  placedMin: number;
  placedMax: number;
  leaderCpuBurstS: number;
  agentsCpuBurstS: number;
  leaderRssBefore: number;
  leaderRssRest: number;
  leaderCpuRestPct?: number;
  /** Leadership terms by the end (1: the leader never lost its lease). */
  epoch: number;
  /** The leader's event-loop delay during the burst (its /metrics), ms. */
  leaderLoop: LoopDelay;
}

interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

/** The leader's event-loop delay since the previous call (flotillad's /metrics). */
async function loopDelay(at: string): Promise<LoopDelay> {
  const text = await (await fetch(`http://${at}/metrics`)).text();
  const g = (name: string): number =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return {
    p50: g('flotilla_event_loop_delay_p50_seconds'),
    p99: g('flotilla_event_loop_delay_p99_seconds'),
    max: g('flotilla_event_loop_delay_max_seconds'),
  };
}

export async function runBurst(p: BurstParams): Promise<BurstResult> {
  const cluster = await startBenchCluster({
    leaders: 1,
    systemdAgents: 0,
    agentTtl: '10s',
    leaseTtl: '5s',
    leaderEnv: p.leaderEnv,
  });
  const leader = cluster.leaders[0];
  // Its /metrics: the HTTP listener it picked (daemonFlags: 127.0.0.1:0).
  const httpPort = await leader.listenerPort('HTTP').catch(async (err: unknown) => {
    await cluster.dispose();
    throw err;
  });
  const metricsAt = `127.0.0.1:${httpPort}`;
  let fleet: AgentFleet | undefined;
  let watcher: ActiveWatcher | undefined;
  const api = connectApi(leader.endpoint, { requestTimeoutMs: 120_000 });
  const lister = connectApi(leader.endpoint, { requestTimeoutMs: 120_000 });
  try {
    fleet = await AgentFleet.start({
      cluster: cluster.clusterName,
      natsUrl: cluster.nats.url,
      leaderFrom: { etcdEndpoints: cluster.etcd.endpoints },
      agentTtlMs: 10_000,
      agents: p.agents,
      processes: p.processes,
    });
    await waitReady(leader.endpoint, p.agents, 120_000);
    await sleep(1000);
    const leaderRssBefore = rssBytes(leader.pid!);
    watcher = new ActiveWatcher(() => leader.endpoint);
    await watcher.ready;
    const names = unitNames('burst', p.units);
    const leaderCpu = cpuMeter([leader.pid!]);
    const agentsCpu = cpuMeter(fleet.pids);
    // The probes run in processes of their own: this one is busy with the watch stream.
    const probe = p.footprint ? await probeProcess('list', leader.endpoint) : undefined;
    const mprobe = p.footprint ? await probeProcess('mutate', leader.endpoint) : undefined;
    const observer = await p.observer?.(metricsAt);
    await loopDelay(metricsAt); // starts the window
    const t0 = performance.now();
    const sub = await submitLaunched(api, names);
    const acceptedMs = performance.now() - t0;
    const active = await watcher.waitActive(names, 600_000);
    await observer?.stop();
    let last = t0;
    for (const n of names) last = Math.max(last, watcher.activeAt.get(n) ?? t0);
    const allRunningMs = last - t0;
    const epoch = Number((await api.getClusterStatus({}).catch(() => ({ epoch: 0 }))).epoch);
    const leaderLoop = await loopDelay(metricsAt);
    const listed = await probe?.stop();
    const small = (await mprobe?.stop())?.ms;
    const lc = leaderCpu();
    const ac = agentsCpu();
    await observer?.after?.();

    const stats = await fleet.stats();
    const ratios = stats.rows.map((r) => (r.units > 0 ? r.scheduleChanges / r.units : NaN));
    const msgs = stats.rows.map((r) => r.scheduleMessages);
    const placed = stats.rows.map((r) => r.units);
    const res: BurstResult = {
      ...p,
      active,
      acceptedMs,
      allRunningMs,
      mutate: summarize(sub.callMs),
      failures: sub.failures,
      changesPerPlacedMin: Math.min(...ratios),
      changesPerPlacedMax: Math.max(...ratios),
      msgsPerAgentMin: Math.min(...msgs),
      msgsPerAgentMax: Math.max(...msgs),
      foreignMessages: stats.rows.reduce((s, r) => s + r.herdMessages - r.scheduleMessages, 0),
      placedMin: Math.min(...placed),
      placedMax: Math.max(...placed),
      leaderCpuBurstS: lc.seconds,
      agentsCpuBurstS: ac.seconds,
      leaderRssBefore,
      leaderRssRest: 0,
      epoch,
      leaderLoop,
    };
    if (small) res.smallMutate = summarize(small);
    if (listed) res.listBurst = { ...summarize(listed.ms), sizes: listed.sizes };
    if (sub.firstError)
      console.log(`${sub.failures} CreateUnits calls failed (retried); first: ${sub.firstError}`);

    await sleep(p.restMs / 3);
    if (p.footprint) {
      const rest = cpuMeter([leader.pid!]);
      await sleep(p.restMs);
      const r = rest();
      res.leaderCpuRestPct = (r.seconds / r.wallSeconds) * 100;
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        const all = await listAllUnitNames(lister);
        ms.push(performance.now() - t);
        if (all.length < p.units) throw new Error(`listing returned ${all.length} units`);
      }
      res.listRest = summarize(ms);
    }
    res.leaderRssRest = rssBytes(leader.pid!);
    return res;
  } finally {
    await watcher?.close();
    api.close();
    lister.close();
    await fleet?.stop();
    await cluster.dispose();
  }
}

const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000)}`;

const INTRO = (processes: number): string[] => [
  `One engine-only flotillad leader (\`--disable-agent\`) on real etcd and NATS; simulated`,
  `agents spread over ${processes} agent processes, each agent with its own NATS connection and a`,
  'SimulatedDriver. Units are created with target `launched` as fast as the API accepts',
  '(`CreateUnits` of 1,000 units, two calls in flight); "running" = observed `active` through the',
  'gRPC Watch API. Leader CPU and RSS are read from /proc.',
  '',
];

function report(a: BurstResult): string {
  return [
    ...INTRO(a.processes),
    '| | Flotilla | target | fleet v1.0 (this machine) | others |',
    '|---|---:|---:|---:|---:|',
    `| ${a.units} units on ${a.agents} agents: all running after | **${fmtMs(a.allRunningMs)}** (${a.active} / ${a.units}) | ≤ 20 s | gRPC engine: 3,000 units took ~125 s | Nomad: ~1,500 containers/s (3 servers) |`,
    `| units/s (submit → all running) | **${rate(a.active, a.allRunningMs)}** | ≥ 1,000 | ~24 (3,000 in 125 s) | |`,
    `| all accepted (durable) after | ${fmtMs(a.acceptedMs)} (${rate(a.units, a.acceptedMs)} units/s) | | | |`,
    '',
    `Units placed per agent: ${a.placedMin}–${a.placedMax}. CPU during the burst: leader ` +
      `${a.leaderCpuBurstS.toFixed(1)} s, agent processes ${a.agentsCpuBurstS.toFixed(1)} s. ` +
      `Leadership terms by the end of the run: ${a.epoch}. The leader's event-loop delay during ` +
      `the burst (its /metrics): p50 ${fmtMs(a.leaderLoop.p50)}, p99 ${fmtMs(a.leaderLoop.p99)}, ` +
      `max ${fmtMs(a.leaderLoop.max)}.`,
  ].join('\n');
}

function largeReport(b: BurstResult): string {
  return [
    ...INTRO(b.processes),
    '| | Flotilla | fleet |',
    '|---|---:|---:|',
    `| ${b.units} units on ${b.agents} agents: all running after | **${fmtMs(b.allRunningMs)}** (${b.active} / ${b.units}) | practical ceiling ~3,000 units (etcd engine), ~20,000 (gRPC engine) |`,
    `| units/s (submit → all running) | **${rate(b.active, b.allRunningMs)}** | |`,
    `| all accepted (durable) after | ${fmtMs(b.acceptedMs)} | |`,
    `| leader RSS (before → after) | **${mib(b.leaderRssBefore)} → ${mib(b.leaderRssRest)}** | |`,
    `| leader memory per unit | **${((b.leaderRssRest - b.leaderRssBefore) / b.units / 1024).toFixed(1)} KiB** | |`,
    '',
    `Units placed per agent: ${b.placedMin}–${b.placedMax}. CPU during the burst: leader ` +
      `${b.leaderCpuBurstS.toFixed(1)} s, agent processes ${b.agentsCpuBurstS.toFixed(1)} s. ` +
      `Leadership terms by the end of the run: ${b.epoch}` +
      (b.epoch > 1
        ? ' — the leader lost its etcd lease (TTL 5 s) while busy and had to be re-elected and restore; see the notes.'
        : ' (the leader kept its lease throughout).') +
      ` Event-loop delay during the burst: p50 ${fmtMs(b.leaderLoop.p50)}, p99 ${fmtMs(b.leaderLoop.p99)}, max ${fmtMs(b.leaderLoop.max)}.`,
  ].join('\n');
}

function footprint(a: BurstResult): string {
  const lb = a.listBurst;
  return [
    `Measured during and after the ${a.units}-unit burst above (same run). Mutating calls: a third`,
    'client sends a single-unit `CreateUnits` every 50 ms during the burst (durable in etcd before',
    "the answer); the burst's own 1,000-unit calls are shown too. Listing: a",
    'second client runs `ListUnits` over every page (10,000 per page) during the burst, pausing 500 ms between listings,',
    `then 20 times at rest with all ${a.units} units. At rest: ${(a.restMs / 1000).toFixed(0)} s with nothing changing`,
    '(agents heartbeat every TTL/3).',
    '',
    '| | Flotilla | target | fleet |',
    '|---|---:|---:|---:|',
    a.smallMutate
      ? `| p99 of small mutating calls during the burst (${a.smallMutate.n} single-unit \`CreateUnits\`, one every 50 ms) | **${fmtMs(a.smallMutate.p99)}** (p50 ${fmtMs(a.smallMutate.p50)}, max ${fmtMs(a.smallMutate.max)}) | ≤ 50 ms | |`
      : undefined,
    `| p99 of the burst's own calls (${a.mutate.n} \`CreateUnits\` of 1,000 units) | ${fmtMs(a.mutate.p99)} (p50 ${fmtMs(a.mutate.p50)}, max ${fmtMs(a.mutate.max)}) | | |`,
    lb
      ? `| p99 of listing every unit during the burst (${lb.n} listings, up to ${Math.max(...lb.sizes)} units) | **${fmtMs(lb.p99)}** (p50 ${fmtMs(lb.p50)}) | ≤ 500 ms | \`list-units\` took minutes at ~2,500 units |`
      : undefined,
    a.listRest
      ? `| p99 of listing ${a.units} units at rest | **${fmtMs(a.listRest.p99)}** (p50 ${fmtMs(a.listRest.p50)}) | ≤ 500 ms | |`
      : undefined,
    `| leader CPU at rest with ${a.units} units | **${(a.leaderCpuRestPct ?? NaN).toFixed(2)} % of one core** | ≤ 5 % | |`,
    `| leader RSS at rest with ${a.units} units | **${mib(a.leaderRssRest)}** (${mib(a.leaderRssBefore)} before the burst) | ≤ 300 MB | |`,
    '',
    `Schedule delivery during the burst (figure 4, Flotilla side): schedule changes received per agent ÷ units placed on it: ` +
      `**${a.changesPerPlacedMin.toFixed(2)}–${a.changesPerPlacedMax.toFixed(2)}** (target exactly 1.00); ` +
      `schedule messages per agent ${a.msgsPerAgentMin}–${a.msgsPerAgentMax} (group commit puts many units in one message); ` +
      `messages an agent received for another machine: ${a.foreignMessages}.`,
  ]
    .filter((l): l is string => l !== undefined)
    .join('\n');
}

async function run(opts: BenchOptions): Promise<void> {
  const small: BurstParams = opts.smoke
    ? { units: 500, agents: 5, processes: 1, footprint: true, restMs: 2000 }
    : { units: 20_000, agents: 50, processes: 2, footprint: true, restMs: 30_000 };
  const a = await runBurst(small);
  const burst = report(a);
  const fp = footprint(a);
  console.log(burst + '\n\n' + fp);
  if (!opts.smoke) {
    writeSection(
      'burst',
      'Burst: 20,000 units on 50 simulated agents',
      'npm run build && node dist/bench/run.js burst',
      `${versionsLine()}\n\n${burst}`,
    );
    writeSection(
      'api-footprint',
      'API latency during the burst, and the leader at rest with 20,000 units',
      'npm run build && node dist/bench/run.js burst',
      `${versionsLine()}\n\n${fp}`,
    );
  }
  if (a.active < a.units) throw new Error(`only ${a.active} of ${a.units} running`);
}

async function runLarge(opts: BenchOptions): Promise<void> {
  const p: BurstParams = opts.smoke
    ? { units: 1000, agents: 20, processes: 2, footprint: false, restMs: 1000 }
    : { units: 100_000, agents: 200, processes: 4, footprint: false, restMs: 3000 };
  const b = await runBurst(p);
  const body = largeReport(b);
  console.log(body);
  if (!opts.smoke)
    writeSection(
      'burst-100k',
      'Burst: 100,000 units on 200 simulated agents',
      'npm run build && node dist/bench/run.js burst-100k',
      `${versionsLine()}\n\n${body}`,
    );
  // Recorded above; the benchmarks after this one still run. (In the run recorded on
  // 2026-11-22 the watch client lost events across two leadership changes while every unit was
  // active, as `flotilla list-units` showed.) Smoke runs must see every unit.
  if (b.active < b.units) {
    const msg = `only ${b.active} of ${b.units} observed running through the watch`;
    if (opts.smoke) throw new Error(msg);
    console.warn(`burst-100k: ${msg}`);
  }
}

export const burst100kBenchmark: Benchmark = {
  name: 'burst-100k',
  description: 'burst: 100,000 units on 200 simulated agents (time, leader RSS, memory per unit)',
  run: runLarge,
};

export const burstBenchmark: Benchmark = {
  name: 'burst',
  description: 'burst: 20,000 units on 50 simulated agents; API latency and leader footprint',
  run,
};
