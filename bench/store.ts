/**
 * The etcd store on a real etcd (one member, started by the test harness):
 *  (a) committed events/s: one txn per event vs group commit (batches of 10/100/1000), and
 *      1,000 concurrent callers behind a group committer like the engine's; then the time to
 *      restore the whole log;
 *  (b) snapshots of synthetic states of 20,000 and 100,000 units (~500 B per unit): size,
 *      chunks, write time, restore time;
 *  (c) failover: the leader process killed with SIGKILL, time until a waiting candidate wins,
 *      for a 2 s and a 5 s lease TTL.
 * `--smoke`: tiny sizes, one failover, writes nothing.
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { SCHEMA_VERSION, type FlotillaEvent } from '../src/events/types';
import { EtcdLogStore } from '../src/store/etcd';
import type { Term } from '../src/store/types';
import { spawnLeader } from '../test/fixtures/store-spawn';
import { startEtcd, type EtcdCluster } from '../test/harness';
import type { BenchOptions, Benchmark } from './benchmark';
import { mib, percentile, writeSection } from './report';

const silent = { warn: () => undefined };
const never = () => new AbortController().signal;
let clusterSeq = 0;

function event(index: number, epoch: number): FlotillaEvent {
  return {
    index,
    epoch,
    time: 1_700_000_000_000 + index,
    v: SCHEMA_VERSION,
    type: 'UnitScheduled',
    unit: `web-${index % 5000}@${index}.service`,
    machine: (index * 2654435761).toString(16).padStart(32, '0').slice(0, 32),
    reason: 'placed by the scheduler: least loaded machine matching MachineMetadata',
  };
}

async function lead(etcd: EtcdCluster, ttl = 5): Promise<{ store: EtcdLogStore; term: Term }> {
  const store = new EtcdLogStore({
    endpoints: etcd.endpoints,
    cluster: `bench${process.pid}x${++clusterSeq}`,
    leaseTtlSeconds: ttl,
    logger: silent,
  });
  const term = await store.campaign({ machine: 'bench', address: 'bench:7070' }, never());
  return { store, term };
}

interface ThroughputRow {
  mode: string;
  events: number;
  appends: number;
  seconds: number;
  p50: number;
  p99: number;
}

/** Sequential appends of `batch` events each, `total` events in all. */
async function sequential(
  term: Term,
  next: { index: number },
  batch: number,
  total: number,
): Promise<ThroughputRow> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let done = 0; done < total; done += batch) {
    const events: FlotillaEvent[] = [];
    for (let i = 0; i < batch; i++) events.push(event(next.index++, term.epoch));
    const s = performance.now();
    await term.append(events);
    lat.push(performance.now() - s);
  }
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    mode: batch === 1 ? 'one txn per event' : `group commit, ${batch} events/append`,
    events: total,
    appends: lat.length,
    seconds,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
  };
}

/**
 * `callers` concurrent callers each committing `perCaller` events one at a time, behind a group
 * committer that sends whatever is waiting (up to `maxBatch`) as one append — the engine's pattern.
 */
async function concurrent(
  term: Term,
  next: { index: number },
  callers: number,
  perCaller: number,
  maxBatch: number,
): Promise<ThroughputRow & { meanBatch: number }> {
  const waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  let busy = false;
  const sizes: number[] = [];
  const lat: number[] = [];
  const pump = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    while (waiting.length > 0) {
      const group = waiting.splice(0, maxBatch);
      const events = group.map(() => event(next.index++, term.epoch));
      sizes.push(group.length);
      try {
        await term.append(events);
        group.forEach((g) => g.resolve());
      } catch (err) {
        group.forEach((g) => g.reject(err));
      }
    }
    busy = false;
  };
  const commit = (): Promise<void> =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      void pump();
    });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (let i = 0; i < perCaller; i++) {
        const s = performance.now();
        await commit();
        lat.push(performance.now() - s);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return {
    mode: `${callers} concurrent callers, 1 event each, group commit`,
    events: callers * perCaller,
    appends: sizes.length,
    seconds,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    meanBatch: sizes.reduce((a, b) => a + b, 0) / sizes.length,
  };
}

/** A plausible folded state: units with 5 options, a hash, a target and a machine each. */
function syntheticState(units: number): Uint8Array {
  const list = [];
  for (let i = 0; i < units; i++) {
    const name = `svc-${i % 997}@${i}.service`;
    list.push({
      name,
      options: [
        { section: 'Unit', name: 'Description', value: `Service ${i} of the synthetic cluster` },
        { section: 'Service', name: 'ExecStart', value: `/usr/bin/docker run --rm app:${i % 17}` },
        { section: 'Service', name: 'Restart', value: 'always' },
        { section: 'X-Fleet', name: 'MachineMetadata', value: `region=r${i % 4}` },
        { section: 'X-Fleet', name: 'Conflicts', value: `svc-${i % 997}@*.service` },
      ],
      hash: (i * 2654435761).toString(16).padStart(40, 'a').slice(0, 40),
      target: 'launched',
      machine: (i * 40503).toString(16).padStart(32, '0').slice(0, 32),
    });
  }
  return new TextEncoder().encode(JSON.stringify({ index: units, units: list }));
}

interface SnapshotRow {
  units: number;
  bytes: number;
  chunks: number;
  writeMs: number;
  restoreMs: number;
}

async function snapshotRound(etcd: EtcdCluster, units: number): Promise<SnapshotRow> {
  const { store, term } = await lead(etcd);
  try {
    const data = syntheticState(units);
    const t0 = performance.now();
    const stats = await term.writeSnapshot({ index: units, epoch: term.epoch, data });
    const writeMs = performance.now() - t0;
    await term.resign();
    // The restore a new leader does: campaign, then read and verify every chunk.
    const next = await store.campaign({ machine: 'heir', address: 'heir:7070' }, never());
    const t1 = performance.now();
    const r = await next.restore();
    const restoreMs = performance.now() - t1;
    if (r.snapshot?.data.length !== data.length) throw new Error('snapshot did not round-trip');
    await next.compact(units);
    return { units, bytes: stats.bytes, chunks: stats.chunks, writeMs, restoreMs };
  } finally {
    await store.close();
  }
}

async function failoverRound(etcd: EtcdCluster, ttl: number): Promise<number> {
  const cluster = `failover${process.pid}x${++clusterSeq}`;
  const leader = spawnLeader({
    endpoints: etcd.endpoints,
    cluster,
    machine: 'a',
    leaseTtlSeconds: ttl,
    appends: 0,
    batch: 1,
  });
  const store = new EtcdLogStore({
    endpoints: etcd.endpoints,
    cluster,
    leaseTtlSeconds: ttl,
    logger: silent,
  });
  try {
    await leader.waitFor(/^idle$/);
    const pending = store.campaign({ machine: 'b', address: 'b:7070' }, never());
    await new Promise((r) => setTimeout(r, 200));
    const t0 = performance.now();
    await leader.kill();
    await pending;
    return performance.now() - t0;
  } finally {
    await leader.kill();
    await store.close();
  }
}

const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

async function run(opts: BenchOptions): Promise<void> {
  const loadBefore = os.loadavg()[0];
  const etcd = await startEtcd();
  try {
    // (a) throughput
    const { store, term } = await lead(etcd);
    const next = { index: 1 };
    const rows: (ThroughputRow & { meanBatch?: number })[] = [];
    const single = opts.smoke ? 100 : 2000;
    rows.push(await sequential(term, next, 1, single));
    for (const batch of opts.smoke ? [10, 100] : [10, 100, 1000]) {
      rows.push(await sequential(term, next, batch, opts.smoke ? batch * 10 : batch * 200));
    }
    rows.push(await concurrent(term, next, opts.smoke ? 100 : 1000, opts.smoke ? 5 : 50, 1000));
    for (const r of rows) {
      console.log(
        `${r.mode}: ${fmt(r.events / r.seconds)} events/s (${r.appends} appends, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms)`,
      );
    }
    const logEvents = next.index - 1;
    const t0 = performance.now();
    const restored = await term.restore();
    const logRestoreMs = performance.now() - t0;
    if (restored.tail.length !== logEvents) throw new Error('log did not round-trip');
    console.log(`restore of ${logEvents} events: ${logRestoreMs.toFixed(0)} ms`);
    await store.close();

    // (b) snapshots
    const snaps: SnapshotRow[] = [];
    for (const units of opts.smoke ? [500] : [20_000, 100_000]) {
      const s = await snapshotRound(etcd, units);
      snaps.push(s);
      console.log(
        `snapshot ${units} units: ${mib(s.bytes)} in ${s.chunks} chunks, write ${s.writeMs.toFixed(0)} ms, restore ${s.restoreMs.toFixed(0)} ms`,
      );
    }

    // (c) failover
    const fails: { ttl: number; ms: number[] }[] = [];
    for (const ttl of opts.smoke ? [2] : [2, 5]) {
      const ms: number[] = [];
      for (let i = 0; i < (opts.smoke ? 1 : 3); i++) ms.push(await failoverRound(etcd, ttl));
      ms.sort((a, b) => a - b);
      fails.push({ ttl, ms });
      console.log(`failover, lease TTL ${ttl} s: ${ms.map((m) => m.toFixed(0)).join(', ')} ms`);
    }

    if (opts.smoke) return;
    const body = [
      'One etcd 3.4 member started by the test harness (data in a temp directory, heartbeat 50 ms,',
      'election timeout 500 ms), one `EtcdLogStore` term, in one Node process. Events are',
      `\`UnitScheduled\` (~${Buffer.byteLength(JSON.stringify(event(1, 1)))} bytes of JSON). Appends are fenced txns;`,
      'a term runs its appends one at a time, so throughput comes from batching, not from',
      'concurrent txns. etcd, the benchmark and the leader processes share the machine',
      `(load average before/after: ${loadBefore.toFixed(1)} / ${os.loadavg()[0].toFixed(1)}).`,
      '',
      '### (a) Committed events per second',
      '',
      '| mode | events | appends (txns) | events/s | append p50 | append p99 |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.mode}${r.meanBatch ? ` (mean batch ${r.meanBatch.toFixed(0)})` : ''} | ${fmt(r.events)} | ${fmt(r.appends)} | ${fmt(r.events / r.seconds)} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms |`,
      ),
      '',
      `Restoring the whole log afterwards (${fmt(logEvents)} events, paged range reads at one revision): ${fmt(logRestoreMs)} ms.`,
      '',
      '### (b) Snapshots',
      '',
      'Synthetic folded state: every unit with 5 options, a 40-hex hash, a target and a machine',
      '(JSON). Written in 1 MiB chunks (one fenced txn each), manifest last; restored by a new',
      'term (chunks read in pages, every chunk and the whole checked against sha256).',
      '',
      '| units | size | chunks | bytes/unit | write | restore |',
      '|---:|---:|---:|---:|---:|---:|',
      ...snaps.map(
        (s) =>
          `| ${fmt(s.units)} | ${mib(s.bytes)} | ${s.chunks} | ${fmt(s.bytes / s.units)} | ${fmt(s.writeMs)} ms | ${fmt(s.restoreMs)} ms |`,
      ),
      '',
      '### (c) Failover',
      '',
      'The leader runs in its own process; a candidate waits in this one. Time from SIGKILL of',
      'the leader to the candidate holding a term (3 rounds each). The floor is the lease TTL:',
      "etcd only deletes the dead leader's key when its lease expires (etcd checks expiry every",
      '500 ms); the candidate then wins through its watch on the key.',
      '',
      '| lease TTL | min | median | max |',
      '|---:|---:|---:|---:|',
      ...fails.map(
        (f) =>
          `| ${f.ttl} s | ${fmt(f.ms[0])} ms | ${fmt(percentile(f.ms, 50))} ms | ${fmt(f.ms[f.ms.length - 1])} ms |`,
      ),
    ].join('\n');
    writeSection(
      'store',
      'etcd store: group commit, snapshots, failover',
      'npm run build && node dist/bench/run.js store',
      body,
    );
  } finally {
    await etcd.dispose();
  }
}

export const storeBenchmark: Benchmark = {
  name: 'store',
  description:
    'etcd store: committed events/s (group commit vs one txn per event), snapshots, failover',
  run,
};
