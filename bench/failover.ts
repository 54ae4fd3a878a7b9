/**
 * Issue 7, figure 5: failover. Two engine-only flotillad leader candidates (lease TTL 2 s) on
 * real etcd and NATS, simulated agents running a burst's worth of units. A client writes
 * continuously through the follower (which forwards to the leader); the leader is killed with
 * SIGKILL. Measured: kill → the first write sent after it that is acknowledged (the new leader
 * accepts writes); unit stop/start/load/unload operations the agents' drivers performed from
 * before the kill until everything settled; acknowledged writes missing afterwards.
 */
import { connectApi } from '../src/api/client';
import { startLoadedCluster } from './lib/loaded';
import { fmtMs } from './lib/histogram';
import { sleep } from './lib/proc';
import { listAllUnitNames } from './lib/units';
import type { AgentStatsRow } from './lib/agents-process';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';
import { versionsLine } from './lib/versions';

const opsOf = (rows: AgentStatsRow[]): number =>
  rows.reduce((s, r) => s + r.starts + r.stops + r.loads + r.unloads, 0);
const activeOf = (rows: AgentStatsRow[]): number => rows.reduce((s, r) => s + r.active, 0);

async function run(opts: BenchOptions): Promise<void> {
  const [units, agents, processes] = opts.smoke ? [300, 5, 1] : [20_000, 50, 2];
  const loaded = await startLoadedCluster({ prefix: 'fo', units, agents, processes });
  const { cluster, fleet, leader: old, names } = loaded;
  try {
    const follower = cluster.leaders.find((l) => l !== old)!;
    const running = loaded.active;
    await sleep(opts.smoke ? 1000 : 3000);
    const before = await fleet.stats();

    // Writes through the follower, each a new unit (target inactive: no placement), one sent
    // every 20 ms whatever happened to the previous ones: a write stuck on the dead leader must
    // not hold back the ones that measure when the new leader takes over.
    const writer = connectApi(follower.endpoint, { requestTimeoutMs: 3000 });
    const acked: string[] = [];
    const sends: { sent: number; acked?: number }[] = [];
    const inFlight = new Set<Promise<void>>();
    let failed = 0;
    let writing = true;
    const write = async (i: number): Promise<void> => {
      const name = `fo-write-${i}.service`;
      const rec: { sent: number; acked?: number } = { sent: performance.now() };
      sends.push(rec);
      try {
        await writer.createUnits({
          units: [
            {
              name,
              options: [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }],
              targetState: '',
            },
          ],
          replace: false,
        });
        rec.acked = performance.now();
        acked.push(name);
      } catch {
        failed++;
      }
    };
    const loop = (async () => {
      for (let i = 0; writing; i++) {
        if (inFlight.size < 200) {
          const p: Promise<void> = write(i).finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await sleep(20);
      }
      await Promise.all(inFlight);
    })();
    await sleep(opts.smoke ? 1000 : 2000);
    const tKill = performance.now();
    await old.kill();
    let newLeaderMs = NaN;
    const deadline = performance.now() + 60_000;
    while (performance.now() < deadline) {
      const firstAck = sends.find((s) => s.sent >= tKill && s.acked !== undefined);
      if (firstAck) {
        newLeaderMs = firstAck.acked! - tKill;
        break;
      }
      await sleep(20);
    }
    await sleep(opts.smoke ? 1000 : 5000);
    writing = false;
    await loop;
    writer.close();
    await sleep(opts.smoke ? 3000 : 15_000);
    const after = await fleet.stats();
    const reader = connectApi(follower.endpoint, { requestTimeoutMs: 60_000 });
    const present = new Set(await listAllUnitNames(reader));
    reader.close();
    const lost = acked.filter((n) => !present.has(n)).length;
    const burstPresent = names.filter((n) => present.has(n)).length;
    const ops = opsOf(after.rows) - opsOf(before.rows);
    const body = [
      `${units} units running on ${agents} simulated agents; two engine-only flotillad leader`,
      'candidates, `--lease-ttl 2s`, real etcd and NATS. One client writes through the follower every',
      '20 ms (one new unit per `CreateUnits`, acknowledged only once durable); the leader is',
      "killed with SIGKILL. Driver operations are the agents' simulated-systemd op counters",
      '(load, start, stop, unload) from before the kill until 15 s after the new leader took over.',
      '',
      '| | Flotilla | target | fleet |',
      '|---|---:|---:|---:|',
      `| kill -9 → the new leader acknowledges a write | **${fmtMs(newLeaderMs)}** | (lease TTL 2 s + restore) | |`,
      `| unit stop/start/load/unload operations issued | **${ops}** | 0 | restarted healthy units on lost leases (fleet issues 1289, 1181, 1145) |`,
      `| acknowledged writes lost | **${lost}** of ${acked.length} | 0 | |`,
      `| units still running afterwards | ${activeOf(after.rows)} / ${running} (all ${burstPresent} still in the cluster) | all | |`,
      '',
      `${failed} writes failed or timed out while there was no leader (the client is told; none of them was acknowledged).`,
    ].join('\n');
    console.log(body);
    if (!opts.smoke)
      writeSection(
        'failover',
        'Failover: kill -9 the leader with 20,000 units running',
        'npm run build && node dist/bench/run.js failover',
        `${versionsLine()}\n\n${body}`,
      );
  } finally {
    await loaded.dispose();
  }
}

export const failoverBenchmark: Benchmark = {
  name: 'failover',
  description: 'failover: kill -9 the leader with 20,000 units running',
  run,
};
