/**
 * Issue 7, figure 4: the thundering herd. The same burst (units created with target `launched`
 * as fast as the API accepts, on simulated agents) twice in one invocation, with the same
 * in-process leader (lib/leader-process.ts), differing only in how schedules reach agents:
 * - Flotilla: one NATS subject per machine; only the target agent wakes;
 * - `--watch-all` (fleet's design): every change goes into one shared etcd prefix that every
 *   agent watches; each agent decodes every change and keeps its own (lib/herd.ts).
 * Each design gets fresh etcd and NATS servers.
 */
import { connectApi } from '../src/api/client';
import { startEtcd, startNats } from '../test/harness';
import { AgentFleet } from './lib/agents';
import { LineChild } from './lib/child';
import { profileEnv, waitReady } from './lib/cluster';
import { fmtMs } from './lib/histogram';
import type { LeaderConfig } from './lib/leader-process';
import { cpuMeter } from './lib/proc';
import { submitLaunched } from './lib/submit';
import { unitNames } from './lib/units';
import { ActiveWatcher } from './lib/watcher';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';
import { versionsLine } from './lib/versions';

type Design = 'flotilla' | 'watch-all';

interface HerdRow {
  design: Design;
  units: number;
  agents: number;
  active: number;
  allRunningMs: number;
  msgsPerAgentMin: number;
  msgsPerAgentMax: number;
  ownMsgsPerAgent: number;
  changesPerPlaced: [number, number];
  bytesPerAgent: number;
  leaderCpuS: number;
  agentsCpuS: number;
  etcdCpuS: number;
}

async function runDesign(
  design: Design,
  units: number,
  agents: number,
  processes: number,
): Promise<HerdRow> {
  const etcd = await startEtcd();
  const nats = await startNats();
  const cluster = `herd${design === 'flotilla' ? 'n' : 'e'}${process.pid}`;
  const prefix = `/herd/${cluster}`;
  const cfg: LeaderConfig = {
    cluster,
    natsUrl: nats.url,
    etcdEndpoints: etcd.endpoints,
    agentTtlMs: 10_000,
    watchAll: design === 'watch-all' ? { prefix } : undefined,
  };
  const leader = new LineChild('leader-process.js', [JSON.stringify(cfg)], profileEnv());
  const onSignal = (): void => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let fleet: AgentFleet | undefined;
  let watcher: ActiveWatcher | undefined;
  let api: ReturnType<typeof connectApi> | undefined;
  let cleaned = false;
  async function cleanup(): Promise<void> {
    if (cleaned) return;
    cleaned = true;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await watcher?.close();
    api?.close();
    await fleet?.stop();
    await leader.stop();
    await nats.dispose();
    await etcd.dispose();
  }
  try {
    // The leader serves on a port it picked: "ready 127.0.0.1:PORT".
    const ready = /^ready (\S+)$/.exec(await leader.next(60_000));
    if (!ready) throw new Error(leader.stderr);
    const endpoint = ready[1];
    api = connectApi(endpoint, { requestTimeoutMs: 120_000 });
    fleet = await AgentFleet.start({
      cluster,
      natsUrl: nats.url,
      agentTtlMs: 10_000,
      agents,
      processes,
      watchAll: design === 'watch-all' ? { etcdEndpoints: etcd.endpoints, prefix } : undefined,
    });
    await waitReady(endpoint, agents, 120_000);
    watcher = new ActiveWatcher(() => endpoint);
    await watcher.ready;
    const names = unitNames(`herd-${design}`, units);
    const etcdPid = etcd.members[0].server.pid ?? 0;
    const lc = cpuMeter([leader.pid]);
    const ac = cpuMeter(fleet.pids);
    const ec = cpuMeter([etcdPid]);
    const t0 = performance.now();
    const sub = await submitLaunched(api, names);
    if (sub.failures > 0)
      console.log(
        `${design}: ${sub.failures} CreateUnits calls failed (retried): ${sub.firstError}`,
      );
    const active = await watcher.waitActive(names, 600_000);
    let last = t0;
    for (const n of names) last = Math.max(last, watcher.activeAt.get(n) ?? t0);
    const [l, a, e] = [lc(), ac(), ec()];
    const s = await fleet.stats();
    const msgs = s.rows.map((r) => r.herdMessages);
    const ratios = s.rows.map((r) => r.scheduleChanges / Math.max(1, r.units));
    return {
      design,
      units,
      agents,
      active,
      allRunningMs: last - t0,
      msgsPerAgentMin: Math.min(...msgs),
      msgsPerAgentMax: Math.max(...msgs),
      ownMsgsPerAgent: s.rows.reduce((x, r) => x + r.scheduleMessages, 0) / s.rows.length,
      changesPerPlaced: [Math.min(...ratios), Math.max(...ratios)],
      bytesPerAgent: s.rows.reduce((x, r) => x + r.herdBytes, 0) / s.rows.length,
      leaderCpuS: l.seconds,
      agentsCpuS: a.seconds,
      etcdCpuS: e.seconds,
    };
  } finally {
    await cleanup();
  }
}

function report(f: HerdRow, w: HerdRow): string {
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(1)}×` : '—');
  const row = (r: HerdRow): string =>
    `| ${r.design === 'flotilla' ? '**Flotilla** (subject per machine)' : '`--watch-all` (shared etcd prefix, as fleet)'} | ` +
    `${r.msgsPerAgentMin}–${r.msgsPerAgentMax} | ${r.ownMsgsPerAgent.toFixed(0)} | ` +
    `${r.changesPerPlaced[0].toFixed(2)}–${r.changesPerPlaced[1].toFixed(2)} | ` +
    `${((r.agentsCpuS / r.agents) * 1000).toFixed(0)} ms | ${r.agentsCpuS.toFixed(1)} s | ${r.leaderCpuS.toFixed(1)} s | ${r.etcdCpuS.toFixed(1)} s | ` +
    `${fmtMs(r.allRunningMs)} (${r.active}/${r.units}) |`;
  return [
    `${f.units} units created with target \`launched\` as fast as the API accepts, on ${f.agents} simulated`,
    'agents (each with its own NATS connection), the same in-process leader (Engine + EngineApi on',
    'an etcd term, lib/leader-process.ts) in both runs. Only the schedule delivery differs: Flotilla',
    "publishes each machine's delta on that machine's subject; `--watch-all` writes every delta",
    "under one etcd prefix that every agent watches (fleet's design), and each agent decodes every",
    'change to find its own. Fresh etcd and NATS for each design; CPU from /proc over the burst.',
    '',
    '| design | schedule messages received per agent | of them its own | changes ÷ units placed | agent CPU per agent | agents CPU | leader CPU | etcd CPU | all running after |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    row(f),
    row(w),
    `| ratio \`--watch-all\` ÷ Flotilla | ${ratio(w.msgsPerAgentMax, f.msgsPerAgentMax)} | | | ${ratio(w.agentsCpuS, f.agentsCpuS)} | ${ratio(w.agentsCpuS, f.agentsCpuS)} | ${ratio(w.leaderCpuS, f.leaderCpuS)} | ${ratio(w.etcdCpuS, f.etcdCpuS)} | ${ratio(w.allRunningMs, f.allRunningMs)} |`,
    '',
    `With \`--watch-all\` each agent received every delta of every machine (${w.msgsPerAgentMax} per agent, ` +
      `${(w.bytesPerAgent / 2 ** 20).toFixed(1)} MiB decoded per agent); with Flotilla's subjects each agent received only its own ` +
      `(changes ÷ units placed = 1.00: each unit placed on an agent reached that agent exactly once and no other agent).`,
  ].join('\n');
}

async function run(opts: BenchOptions): Promise<void> {
  const [units, agents, processes] = opts.smoke ? [300, 5, 1] : [20_000, 50, 2];
  const f = await runDesign('flotilla', units, agents, processes);
  const w = await runDesign('watch-all', units, agents, processes);
  const body = report(f, w);
  console.log(body);
  if (!opts.smoke)
    writeSection(
      'herd',
      'Thundering herd: per-machine subjects against a shared etcd watch (`--watch-all`)',
      'npm run build && node dist/bench/run.js herd',
      `${versionsLine()}\n\n${body}`,
    );
  for (const r of [f, w])
    if (r.active < r.units) throw new Error(`${r.design}: only ${r.active} of ${r.units} running`);
}

export const herdBenchmark: Benchmark = {
  name: 'herd',
  description: 'thundering herd: Flotilla subjects vs a fleet-style shared etcd watch',
  run,
};
