/**
 * Issue 11, point 6: soak. 20,000 units running on simulated agents under two engine-only
 * flotillad leader candidates (lease TTL 2 s, log kept whole: --log-retention), real etcd and
 * NATS. A client writes 20 times a second for 10 minutes, alternating a new unit (target
 * inactive) and setting that unit's target to loaded (the scheduler places it, an agent loads
 * it); the leader is killed with SIGKILL half way through. Measured: the leaders' RSS every
 * few seconds (flat once snapshots run?), acknowledged writes missing afterwards, and the
 * durable log read back from etcd: every acknowledged write's event exactly once, no event
 * doubled, indexes strictly increasing, epochs never going back, no unit scheduled twice
 * without an unschedule between, and the units the log describes equal to the API's listing.
 * `--smoke`: 300 units, 5 agents, 20 s of writes.
 */
import { connectApi, type ApiClient } from '../src/api/client';
import type { FlotillaEvent } from '../src/events/types';
import { UnitView } from '../src/gen/flotilla/v1/flotilla';
import { openLogStore } from '../src/store/open';
import { startLoadedCluster } from './lib/loaded';
import type { DaemonNode } from '../test/helpers/cluster';
import { fmtMs } from './lib/histogram';
import { rssBytes, sleep } from './lib/proc';
import type { BenchOptions, Benchmark } from './benchmark';
import { mib, writeSection } from './report';
import { versionsLine } from './lib/versions';

interface Write {
  kind: 'create' | 'target';
  unit: string;
  sent: number;
  acked?: number;
}

interface RssSample {
  /** Seconds since the writes began. */
  t: number;
  leader: number;
  rss: number;
  snapshotIndex: number;
}

/** What the durable log says about the writes: each acknowledged one's event exactly once. */
export function checkLog(
  events: FlotillaEvent[],
  writes: Write[],
): { missing: number; doubled: number; disorder: number; doubleScheduled: number } {
  const count = new Map<string, number>();
  let disorder = 0;
  const scheduled = new Map<string, number>();
  let doubleScheduled = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (i > 0 && (e.index <= events[i - 1].index || e.epoch < events[i - 1].epoch)) disorder++;
    if (e.type === 'UnitSubmitted')
      count.set(`create ${e.unit}`, (count.get(`create ${e.unit}`) ?? 0) + 1);
    if (e.type === 'UnitTargetSet' && e.target === 'loaded')
      count.set(`target ${e.unit}`, (count.get(`target ${e.unit}`) ?? 0) + 1);
    if (e.type === 'UnitScheduled') {
      const n = (scheduled.get(e.unit) ?? 0) + 1;
      if (n > 1) doubleScheduled++;
      scheduled.set(e.unit, n);
    }
    if (e.type === 'UnitUnscheduled')
      scheduled.set(e.unit, Math.max(0, (scheduled.get(e.unit) ?? 0) - 1));
  }
  let missing = 0;
  let doubled = 0;
  for (const w of writes) {
    const n = count.get(`${w.kind} ${w.unit}`) ?? 0;
    if (w.acked !== undefined && n === 0) missing++;
    if (n > 1) doubled++;
  }
  return { missing, doubled, disorder, doubleScheduled };
}

/** Units the log leaves in the cluster (submitted, not destroyed since). */
function unitsOfLog(events: FlotillaEvent[]): Set<string> {
  const out = new Set<string>();
  for (const e of events) {
    if (e.type === 'UnitSubmitted') out.add(e.unit);
    if (e.type === 'UnitDestroyed') out.delete(e.unit);
  }
  return out;
}

async function listAll(api: ApiClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let pageToken = '';
  do {
    const r = await api.listUnits({ pageSize: 10_000, pageToken, view: UnitView.UNIT_VIEW_BASIC });
    for (const u of r.units) out.set(u.name, u.targetState);
    pageToken = r.nextPageToken;
  } while (pageToken !== '');
  return out;
}

async function run(opts: BenchOptions): Promise<void> {
  const [units, agents, processes, durationMs, sampleMs] = opts.smoke
    ? [300, 5, 1, 20_000, 1000]
    : [20_000, 50, 2, 600_000, 5000];
  const loaded = await startLoadedCluster({
    prefix: 'soak',
    units,
    agents,
    processes,
    leaderFlags: ['--log-retention', '100000000'],
  });
  const { cluster, leader: old } = loaded;
  const clients = new Map<DaemonNode, ApiClient>();
  const api = (n: DaemonNode): ApiClient => {
    let c = clients.get(n);
    if (!c) clients.set(n, (c = connectApi(n.endpoint, { requestTimeoutMs: 5000 })));
    return c;
  };
  try {
    // 20 writes a second, each sent on time whatever happened to the previous ones, to the
    // leader candidates still running in turn (a follower forwards to the leader).
    const writes: Write[] = [];
    const created = new Map<string, Write>();
    const inFlight = new Set<Promise<void>>();
    const t0 = performance.now();
    const send = async (i: number): Promise<void> => {
      const live = cluster.leaders.filter((l) => l.running);
      const n = live[i % live.length];
      // Even writes create unit k; odd ones set the target of unit k-1 (created 150 ms earlier).
      const kind = i % 2 === 0 ? 'create' : 'target';
      const k = kind === 'create' ? i >> 1 : (i >> 1) - 1;
      const unit = `soak-w-${k}.service`;
      const w: Write = { kind, unit, sent: performance.now() };
      // A target is set only on a unit whose creation was acknowledged.
      if (kind === 'target' && !created.get(unit)?.acked) return;
      if (kind === 'create') created.set(unit, w);
      writes.push(w);
      try {
        if (w.kind === 'create')
          await api(n).createUnits({
            units: [
              {
                name: unit,
                options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 100000' }],
                targetState: '',
              },
            ],
            replace: false,
          });
        else await api(n).setTargetStates({ names: [unit], targetState: 'loaded' });
        w.acked = performance.now();
      } catch {
        /* not acknowledged: may or may not have landed, never twice */
      }
    };
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        if (inFlight.size < 200) {
          const p: Promise<void> = send(i).finally(() => inFlight.delete(p));
          inFlight.add(p);
        }
        await sleep(50 - ((performance.now() - t0) % 50));
      }
      await Promise.all(inFlight);
    })();

    const rss: RssSample[] = [];
    let killedAt = NaN;
    let failoverMs = NaN;
    let next = old;
    // A restoring leader of 20,000 units on a busy host may take longer than one status call.
    const leaderWithin = async (ms: number): Promise<DaemonNode> => {
      const end = performance.now() + ms;
      for (;;) {
        try {
          return await cluster.currentLeader();
        } catch (err) {
          if (performance.now() > end) throw err;
          await sleep(500);
        }
      }
    };
    while (performance.now() - t0 < durationMs) {
      await sleep(sampleMs);
      const t = (performance.now() - t0) / 1000;
      for (const l of cluster.leaders.filter((x) => x.running)) {
        const s = await api(l)
          .getClusterStatus({})
          .catch(() => undefined);
        rss.push({
          t,
          leader: l.index,
          rss: rssBytes(l.pid!),
          snapshotIndex: Number(s?.snapshotIndex ?? 0),
        });
      }
      if (Number.isNaN(killedAt) && performance.now() - t0 >= durationMs / 2) {
        killedAt = performance.now();
        await old.kill();
        while (performance.now() - killedAt < 60_000) {
          const ack = writes.find((w) => w.sent >= killedAt && w.acked !== undefined);
          if (ack) {
            failoverMs = ack.acked! - killedAt;
            break;
          }
          await sleep(20);
        }
        next = await leaderWithin(60_000);
      }
    }
    writing = false;
    await writer;
    await sleep(3000);

    const reader = connectApi(next.endpoint, { requestTimeoutMs: 60_000 });
    const listed = await listAll(reader);
    reader.close();
    const acked = writes.filter((w) => w.acked !== undefined);
    const lost = acked.filter((w) =>
      w.kind === 'create' ? !listed.has(w.unit) : listed.get(w.unit) !== 'loaded',
    ).length;
    const store = openLogStore({
      kind: 'etcd',
      endpoints: cluster.etcd.endpoints,
      cluster: cluster.clusterName,
    });
    const restored = await store.readAll();
    await store.close();
    const events = restored.tail;
    const log = checkLog(events, writes);
    const fromLog = unitsOfLog(events);
    const logMatches =
      events[0]?.index === 1 &&
      fromLog.size === listed.size &&
      [...listed.keys()].every((u) => fromLog.has(u));

    // RSS of the new leader after its first snapshot, at the start and the end of that stretch.
    const newer = rss.filter((s) => s.leader === next.index && s.t * 1000 >= killedAt - t0);
    const baseIdx = newer.find((s, i) => i > 0 && s.snapshotIndex > newer[0].snapshotIndex);
    const after = baseIdx ? newer.filter((s) => s.t >= baseIdx.t) : newer;
    const rssStart = after[0]?.rss ?? NaN;
    const rssEnd = after.at(-1)?.rss ?? NaN;
    const rssMax = Math.max(...after.map((s) => s.rss));
    const olds = rss.filter((s) => s.leader === old.index);
    const oldFirstSnap = olds.find((s) => s.snapshotIndex > 0) ?? olds[0];
    const series = (xs: RssSample[]): string =>
      xs
        .filter((_, i) => i % Math.max(1, Math.floor(xs.length / 8)) === 0 || i === xs.length - 1)
        .map((s) => `${Math.round(s.t)} s ${mib(s.rss)}`)
        .join(', ');
    const span = (ms: number): string =>
      ms >= 60_000 ? `${ms / 60_000} minutes` : `${ms / 1000} s`;
    const body = [
      `${units} units running on ${agents} simulated agents; two engine-only flotillad leader candidates`,
      '(`--lease-ttl 2s`, `--log-retention 100000000` so the whole log stays in etcd), real etcd and NATS.',
      `For ${span(durationMs)} a client sends 20 writes a second through the leader candidates in turn,`,
      'alternating a new unit (target inactive) and that unit’s target set to loaded; the leader is',
      `killed with SIGKILL after ${span(durationMs / 2)}. RSS is the leaders' VmRSS every ${sampleMs / 1000} s.`,
      '',
      '| | Flotilla | target |',
      '|---|---:|---:|',
      `| writes sent / acknowledged | ${writes.length} / ${acked.length} | |`,
      `| kill -9 → the new leader acknowledges a write | ${fmtMs(failoverMs)} | (lease TTL 2 s + restore) |`,
      `| acknowledged writes missing afterwards (API) | **${lost}** | 0 |`,
      `| acknowledged writes without their event in the log | **${log.missing}** | 0 |`,
      `| writes whose event is in the log more than once | **${log.doubled}** | 0 |`,
      `| events out of order (index not increasing, epoch going back) | **${log.disorder}** | 0 |`,
      `| units scheduled twice without an unschedule between | **${log.doubleScheduled}** | 0 |`,
      `| the log's units equal the API's listing (${listed.size} units, ${events.length} events from index 1) | ${logMatches ? 'yes' : '**no**'} | yes |`,
      `| old leader RSS: at its first snapshot → before the kill | ${mib(oldFirstSnap?.rss ?? NaN)} → ${mib(olds.at(-1)?.rss ?? NaN)} | flat |`,
      `| new leader RSS: after its first snapshot → end (max) | ${mib(rssStart)} → ${mib(rssEnd)} (${mib(rssMax)}) | flat |`,
      '',
      `Old leader RSS: ${series(olds)}.`,
      `New leader RSS: ${series(newer)}.`,
    ].join('\n');
    console.log(body);
    if (!opts.smoke)
      writeSection(
        'soak',
        'Soak: 20 writes/s for 10 minutes on 20,000 units, leader killed half way',
        'npm run build && node --expose-gc dist/bench/run.js soak',
        `${versionsLine()}\n\n${body}`,
      );
    if (lost + log.missing + log.doubled + log.disorder + log.doubleScheduled > 0 || !logMatches)
      throw new Error(
        'soak: acknowledged writes lost or transitions lost/doubled (see the table above)',
      );
  } finally {
    for (const c of clients.values()) c.close();
    await loaded.dispose();
  }
}

export const soakBenchmark: Benchmark = {
  name: 'soak',
  description:
    'soak: 20 writes/s for 10 minutes on 20,000 units with a leader failover in the middle',
  run,
};
