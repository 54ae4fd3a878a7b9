/**
 * Issue 7, figure 1: fleet's own profile. 3,000 trivial units, one start request every 100 ms,
 * on 3 agent daemons with the systemd driver, each on its own real `systemd --user`, and one
 * engine-only leader, over real etcd and NATS. Start delay = the request is sent → the unit is
 * observed active through the gRPC Watch API.
 */
import { connectApi } from '../src/api/client';
import { startBenchCluster, waitReady } from './lib/cluster';
import { fmtMs, histogram, summarize } from './lib/histogram';
import { cpuMeter, peakRssBytes, sleep } from './lib/proc';
import { destroyAll, trivialSpec, unitNames } from './lib/units';
import { ActiveWatcher } from './lib/watcher';
import type { BenchOptions, Benchmark } from './benchmark';
import { mib, writeSection } from './report';
import { versionsLine } from './lib/versions';

const INTERVAL_MS = 100;

async function run(opts: BenchOptions): Promise<void> {
  // FLOTILLA_BENCH_UNITS overrides the size for investigations; such runs write nothing.
  const override = Number(process.env.FLOTILLA_BENCH_UNITS ?? 0);
  const n = override > 0 ? override : opts.smoke ? 20 : 3000;
  const settleMs = opts.smoke ? 30_000 : 300_000;
  const cluster = await startBenchCluster({ leaders: 1, systemdAgents: 3 });
  let watcher: ActiveWatcher | undefined;
  const leader = cluster.leaders[0];
  const api = connectApi(leader.endpoint);
  try {
    await waitReady(leader.endpoint, 3);
    watcher = new ActiveWatcher(() => leader.endpoint);
    await watcher.ready;
    const names = unitNames('profile', n);
    const requestAt = new Map<string, number>();
    const requestWall = new Map<string, number>();
    const apiMs: number[] = [];
    const leaderCpu = cpuMeter([leader.pid!]);
    const agentCpu = cpuMeter(cluster.agents.map((a) => a.pid!));
    const t0 = performance.now();
    const calls: Promise<void>[] = [];
    let failures = 0;
    for (let i = 0; i < n; i++) {
      const wait = t0 + i * INTERVAL_MS - performance.now();
      if (wait > 0) await sleep(wait);
      const at = performance.now();
      requestAt.set(names[i], at);
      requestWall.set(names[i], Date.now());
      calls.push(
        api.createUnits({ units: [trivialSpec(names[i], 'launched')], replace: false }).then(
          () => void apiMs.push(performance.now() - at),
          () => void failures++,
        ),
      );
    }
    await Promise.all(calls);
    const lastRequest = performance.now();
    const active = await watcher.waitActive(names, settleMs);
    const lc = leaderCpu();
    const ac = agentCpu();
    const delays: number[] = [];
    let lastActive = t0;
    for (const name of names) {
      const a = watcher.activeAt.get(name);
      if (a === undefined) continue;
      delays.push(a - requestAt.get(name)!);
      lastActive = Math.max(lastActive, a);
    }
    const s = summarize(delays);
    // Where the time goes, from the leader's event timestamps (same host clock as Date.now()).
    const parts = {
      sched: [] as number[],
      agent: [] as number[],
      toActive: [] as number[],
      watch: [] as number[],
    };
    for (const name of names) {
      const rq = requestWall.get(name)!;
      const sc = watcher.scheduledTime.get(name);
      const fr = watcher.firstReportTime.get(name);
      const ac = watcher.activeTime.get(name);
      const seen = watcher.activeSeenWall.get(name);
      if (sc === undefined || fr === undefined || ac === undefined || seen === undefined) continue;
      parts.sched.push(sc - rq);
      parts.agent.push(fr - sc);
      parts.toActive.push(ac - fr);
      parts.watch.push(seen - ac);
    }
    const part = (xs: number[]): string => {
      const q = summarize(xs);
      return `p50 ${fmtMs(q.p50)}, p99 ${fmtMs(q.p99)}`;
    };
    const api99 = summarize(apiMs);
    const perMachine = new Map<string, number>();
    for (const m of watcher.activeOn.values()) perMachine.set(m, (perMachine.get(m) ?? 0) + 1);
    const rate = active / ((lastActive - t0) / 1000);
    const lines = [
      `${n} trivial units (\`ExecStart=/bin/sleep 100000\`), one \`CreateUnits\` with target`,
      '`launched` every 100 ms (the equivalent of `fleetctl start --no-block`), from one client.',
      '3 agent daemons (`--disable-engine`, systemd driver, each on its own `systemd --user`),',
      '1 engine-only leader (`--disable-agent`), real etcd and NATS, all on this machine.',
      'Start delay: request sent → unit observed `active` through the gRPC Watch API.',
      '',
      '| | Flotilla | fleet v1.0 gRPC engine (this machine) | fleet v1.0 etcd engine (this machine) | fleet, 2016 (maintainers) | target |',
      '|---|---:|---:|---:|---:|---:|',
      `| units active | **${active} / ${n}** | 3000 / 3000 | 2577 / 3000 (300 s after the last start) | — | all |`,
      `| p50 start delay | **${fmtMs(s.p50)}** | 13.4 s | — | 32–36 s | ≤ 50 ms |`,
      `| p90 | **${fmtMs(s.p90)}** | 49.8 s | — | — | |`,
      `| p99 | **${fmtMs(s.p99)}** | 62.8 s | 292 s (of those active) | 133–178 s | ≤ 250 ms |`,
      `| max | **${fmtMs(s.max)}** | 74.5 s | — | — | |`,
      `| units/s (first request → last active) | **${rate.toFixed(2)}** | — | — | ~5.5 | 10 (the request rate) |`,
      '',
      `Request rate is fixed at 10/s, so 10 units/s is the ceiling of this profile. ` +
        `CreateUnits latency p50 ${fmtMs(api99.p50)}, p99 ${fmtMs(api99.p99)}, max ${fmtMs(api99.max)}; ` +
        `${failures} failed requests. Units per machine: ${[...perMachine.values()].sort((a, b) => a - b).join(' / ')}. ` +
        `Last request sent ${((lastRequest - t0) / 1000).toFixed(1)} s after the first.`,
      `CPU over the run: leader ${lc.seconds.toFixed(1)} s (${((lc.seconds / lc.wallSeconds) * 100).toFixed(1)} % of one core), ` +
        `3 agents together ${ac.seconds.toFixed(1)} s; leader peak RSS ${mib(peakRssBytes(leader.pid!))}.`,
      '',
      'Where the delay goes (leader event timestamps): request → `UnitScheduled` committed ' +
        `${part(parts.sched)}; → first state report folded ${part(parts.agent)}; → report ` +
        `saying active folded ${part(parts.toActive)}; → seen by the watch client ${part(parts.watch)}.`,
      '',
      'Start delay histogram:',
      '',
      histogram(delays),
    ];
    const body = lines.join('\n');
    console.log(body);
    if (!opts.smoke && override === 0)
      writeSection(
        'fleet-profile',
        "fleet's profile: 3,000 units, one start every 100 ms, real systemd",
        'npm run build && node dist/bench/run.js fleet-profile',
        `${versionsLine()}\n\n${body}`,
      );
    if (active < n) throw new Error(`only ${active} of ${n} units became active`);
    await destroyAll(api, names);
  } finally {
    await watcher?.close();
    api.close();
    await cluster.dispose();
  }
}

export const fleetProfileBenchmark: Benchmark = {
  name: 'fleet-profile',
  description: "fleet's profile: 3,000 units, one start every 100 ms, 3 systemd agents",
  run,
};
