/**
 * Issue 7, figure 2: 3,000 trivial units started in one command on the 3 systemd agents, and in
 * the same run the floor: the same number of units started with bare D-Bus calls on the same 3
 * managers, one process per manager, no scheduler (lib/floor-process.ts).
 */
import path from 'node:path';
import { connectApi } from '../src/api/client';
import { LineChild } from './lib/child';
import { startBenchCluster, waitReady } from './lib/cluster';
import { fmtMs } from './lib/histogram';
import { cpuMeter, sleep } from './lib/proc';
import { destroyAll, trivialSpec, unitNames } from './lib/units';
import { ActiveWatcher } from './lib/watcher';
import type { BenchCluster } from './lib/cluster';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';
import { versionsLine } from './lib/versions';

/** Starts `perManager` units on every manager with bare D-Bus calls; ms until all are active. */
async function floor(cluster: BenchCluster, perManager: number, tag: string): Promise<number> {
  const children = cluster.managers.map(
    (m, i) =>
      new LineChild('floor-process.js', [
        m.busAddress,
        path.join(m.dir, `floor-${tag}`),
        `floor${tag}m${i}`,
        String(perManager),
      ]),
  );
  try {
    for (const c of children) if ((await c.next(30_000)) !== 'ready') throw new Error(c.stderr);
    const goAt = Date.now();
    for (const c of children) c.send('go');
    const done = await Promise.all(children.map((c) => c.nextJson<{ doneAt: number }>()));
    const ms = Math.max(...done.map((d) => d.doneAt)) - goAt;
    for (const c of children) c.send('clean');
    for (const c of children) await c.next(120_000);
    return ms;
  } finally {
    for (const c of children) await c.stop();
  }
}

async function run(opts: BenchOptions): Promise<void> {
  // FLOTILLA_BENCH_UNITS overrides the size for investigations; such runs write nothing.
  const override = Number(process.env.FLOTILLA_BENCH_UNITS ?? 0);
  const n = override > 0 ? override : opts.smoke ? 30 : 3000;
  const cluster = await startBenchCluster({ leaders: 1, systemdAgents: 3 });
  const leader = cluster.leaders[0];
  const api = connectApi(leader.endpoint, { requestTimeoutMs: 60_000 });
  let watcher: ActiveWatcher | undefined;
  try {
    await waitReady(leader.endpoint, 3);
    const floorBefore = await floor(cluster, n / 3, 'a');
    await sleep(2000);

    watcher = new ActiveWatcher(() => leader.endpoint);
    await watcher.ready;
    const names = unitNames('once', n);
    const leaderCpu = cpuMeter([leader.pid!]);
    const agentCpu = cpuMeter(cluster.agents.map((a) => a.pid!));
    const t0 = performance.now();
    await api.createUnits({
      units: names.map((nm) => trivialSpec(nm, 'launched')),
      replace: false,
    });
    const ackMs = performance.now() - t0;
    const active = await watcher.waitActive(names, opts.smoke ? 30_000 : 600_000);
    const lc = leaderCpu();
    const ac = agentCpu();
    const allMs = Math.max(...names.map((nm) => watcher!.activeAt.get(nm) ?? NaN)) - t0;
    const perMachine = new Map<string, number>();
    for (const m of watcher.activeOn.values()) perMachine.set(m, (perMachine.get(m) ?? 0) + 1);

    await destroyAll(api, names);
    // The agents stop and unload them; wait until no unit of ours is still active.
    const deadline = performance.now() + 120_000;
    while (performance.now() < deadline) {
      const gone = names.every((nm) => (watcher!.inactiveAt.get(nm) ?? 0) > 0);
      if (gone) break;
      await sleep(200);
    }
    await sleep(2000);
    const floorAfter = await floor(cluster, n / 3, 'b');
    const floorMs = Math.min(floorBefore, floorAfter);
    const ratio = allMs / floorMs;

    const body = [
      `${n} trivial units created with target \`launched\` in one \`CreateUnits\` call (the`,
      'equivalent of `fleetctl start --no-block` with all units), on 3 agent daemons with the',
      'systemd driver, each on its own `systemd --user`, one engine-only leader, real etcd and NATS.',
      'Time: call sent → the last unit observed `active` through the gRPC Watch API.',
      'Floor: the same number of trivial units on the same 3 managers, one process per manager',
      'making only the D-Bus calls any tool must make (write the files, `LinkUnitFiles`, one',
      '`Reload`, `StartUnit` × N, poll `ListUnitsByPatterns` until all are active); measured',
      'before and after the Flotilla run, the faster one counts.',
      '',
      '| | time until all active | vs floor |',
      '|---|---:|---:|',
      `| **Flotilla** | **${fmtMs(allMs)}** (${active} / ${n} active) | **${ratio.toFixed(2)}×** |`,
      `| floor: bare D-Bus, same managers | ${fmtMs(floorMs)} (before ${fmtMs(floorBefore)}, after ${fmtMs(floorAfter)}) | 1.00× |`,
      `| fleet v1.0 gRPC engine (this machine, 3,000 units) | ~125 s | — |`,
      `| fleet v1.0 etcd engine (this machine, 3,000 units) | 2,247 active after 563 s; 2,999 after 568 s | — |`,
      `| fleet, 300 units (gRPC / etcd engine) | ~7.4 s / ~13 s | — |`,
      `| target | ≤ 15 s | ≤ 1.5× |`,
      '',
      `The call was acknowledged (durable in etcd) after ${fmtMs(ackMs)}. Units per machine: ` +
        `${[...perMachine.values()].sort((a, b) => a - b).join(' / ')}. CPU until all active: leader ` +
        `${lc.seconds.toFixed(1)} s, 3 agents together ${ac.seconds.toFixed(1)} s ` +
        `(fleetd used ~600 CPU-seconds for 3,000 units with the etcd engine).`,
    ].join('\n');
    console.log(body);
    if (!opts.smoke && override === 0)
      writeSection(
        'start-at-once',
        '3,000 units at once on real systemd, against the D-Bus floor',
        'npm run build && node dist/bench/run.js start-at-once',
        `${versionsLine()}\n\n${body}`,
      );
    if (active < n) throw new Error(`only ${active} of ${n} units became active`);
  } finally {
    await watcher?.close();
    api.close();
    await cluster.dispose();
  }
}

export const startAtOnceBenchmark: Benchmark = {
  name: 'start-at-once',
  description: '3,000 units in one command on 3 systemd agents, and the bare D-Bus floor',
  run,
};
