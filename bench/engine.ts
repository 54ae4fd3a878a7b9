/**
 * The engine against real etcd (issue 4's figures):
 *  - committed events/s through Engine.append: group commit (many callers at once) vs one
 *    transaction per event (callers one after another), same engine, same run;
 *  - snapshot size, write time and the whole restore of a new leader (campaign → snapshot and
 *    tail read → fold → scheduler indexes → actors → serving) at 20,000 and 100,000 units.
 */
import { LocalHub } from '../src/bus/local';
import { Engine } from '../src/engine/engine';
import { foldAll } from '../src/engine/fold';
import { encodeState } from '../src/engine/snapshot';
import type { EventBody, FlotillaEvent } from '../src/events/types';
import { SCHEMA_VERSION } from '../src/events/types';
import { EtcdLogStore } from '../src/store/etcd';
import { unitHash } from '../src/unit';
import type { UnitOption } from '../src/unit/types';
import { startEtcd } from '../test/harness';
import type { Benchmark, BenchOptions } from './benchmark';
import { mib, writeSection } from './report';

const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function unitOptions(i: number): UnitOption[] {
  const opts: UnitOption[] = [
    { section: 'Unit', name: 'Description', value: `Benchmark unit ${i}` },
    { section: 'Service', name: 'ExecStart', value: `/usr/bin/sleep ${100000 + i}` },
    { section: 'Service', name: 'Restart', value: 'always' },
  ];
  if (i % 5 === 0)
    opts.push({ section: 'X-Fleet', name: 'Conflicts', value: `web${i % 50}-*.service` });
  if (i % 7 === 0)
    opts.push({ section: 'X-Fleet', name: 'MachineMetadata', value: `zone=z${i % 3}` });
  return opts;
}

/** The durable events of a cluster with `units` launched units placed on `machines` machines. */
function clusterEvents(units: number, machines: number): FlotillaEvent[] {
  const bodies: EventBody[] = [];
  for (let m = 0; m < machines; m++) {
    bodies.push({
      type: 'MachineJoined',
      machine: machineId(m),
      ip: `10.0.${m >> 8}.${m & 255}`,
      metadata: { zone: `z${m % 3}` },
    });
  }
  for (let i = 0; i < units; i++) {
    const options = unitOptions(i);
    const unit = `web${i % 50}-${i}.service`;
    bodies.push({
      type: 'UnitSubmitted',
      unit,
      options,
      hash: unitHash(options),
      target: 'launched',
    });
    bodies.push({
      type: 'UnitScheduled',
      unit,
      machine: machineId(i % machines),
      reason: 'least loaded',
    });
  }
  return bodies.map(
    (b, k) =>
      ({
        ...b,
        index: k + 1,
        epoch: 1,
        time: 1_700_000_000_000 + k,
        v: SCHEMA_VERSION,
      }) as FlotillaEvent,
  );
}

function machineId(m: number): string {
  return m.toString(16).padStart(32, '0');
}

async function campaign(store: EtcdLogStore, name: string) {
  return store.campaign({ machine: name, address: `${name}:7070` }, new AbortController().signal);
}

async function groupCommit(
  endpoints: string[],
  events: number,
): Promise<{ grouped: number; serial: number }> {
  const store = new EtcdLogStore({
    endpoints,
    cluster: `gc${Date.now()}`,
    leaseTtlSeconds: 5,
    logger: quiet,
  });
  const term = await campaign(store, 'bench');
  const engine = await Engine.start({
    term,
    bus: new LocalHub().connect(),
    cluster: 'gc',
    machineId: 'bench',
    address: 'bench:7070',
    snapshotEvery: 1e9,
  });
  const body = (i: number): EventBody => ({
    type: 'MachineMetadataSet',
    machine: `m${i % 100}`,
    metadata: { k: String(i) },
  });
  let t = performance.now();
  await Promise.all(Array.from({ length: events }, (_, i) => engine.append([body(i)])));
  const grouped = events / ((performance.now() - t) / 1000);
  const serialN = Math.max(50, Math.floor(events / 20));
  t = performance.now();
  for (let i = 0; i < serialN; i++) await engine.append([body(i)]);
  const serial = serialN / ((performance.now() - t) / 1000);
  await engine.stop();
  await store.close();
  return { grouped, serial };
}

interface RestoreFigures {
  units: number;
  snapshotBytes: number;
  encodeMs: number;
  writeMs: number;
  restoreMs: number;
  tail: number;
  rssMiB: number;
}

async function restore(
  endpoints: string[],
  units: number,
  machines: number,
): Promise<RestoreFigures> {
  const cluster = `rs${units}${Date.now()}`;
  const events = clusterEvents(units, machines);
  const state = foldAll(events);
  let t = performance.now();
  const data = encodeState(state);
  const encodeMs = performance.now() - t;

  const writer = new EtcdLogStore({ endpoints, cluster, leaseTtlSeconds: 5, logger: quiet });
  const term = await campaign(writer, 'writer');
  // After the snapshot: a tail of ordinary work (target changes) the new leader folds on top.
  const tailEvents: FlotillaEvent[] = [...state.units.keys()].slice(0, 1000).map((unit, k) => ({
    type: 'UnitTargetSet',
    unit,
    target: 'loaded',
    index: state.index + 1 + k,
    epoch: term.epoch,
    time: 1_800_000_000_000 + k,
    v: SCHEMA_VERSION,
  }));
  t = performance.now();
  const stats = await term.writeSnapshot({ index: state.index, epoch: term.epoch, data });
  const writeMs = performance.now() - t;
  await term.append(tailEvents);
  await term.resign();
  await writer.close();

  const reader = new EtcdLogStore({ endpoints, cluster, leaseTtlSeconds: 5, logger: quiet });
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  t = performance.now();
  const term2 = await campaign(reader, 'reader');
  const campaignMs = performance.now() - t;
  const engine = await Engine.start({
    term: term2,
    bus: new LocalHub().connect(),
    cluster,
    machineId: 'reader',
    address: 'reader:7070',
    snapshotEvery: 1e9,
  });
  const restoreMs = performance.now() - t;
  console.log(
    `  campaign ${campaignMs.toFixed(0)} ms, engine start ${(restoreMs - campaignMs).toFixed(0)} ms`,
  );
  const restored = engine.state.units.size;
  if (restored !== units) throw new Error(`restored ${restored} units, expected ${units}`);
  const rssMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  await engine.stop();
  await reader.close();
  return {
    units,
    snapshotBytes: stats.bytes,
    encodeMs,
    writeMs,
    restoreMs,
    tail: tailEvents.length,
    rssMiB,
  };
}

async function run({ smoke }: BenchOptions): Promise<void> {
  await using etcd = await startEtcd();
  const gc = await groupCommit(etcd.endpoints, smoke ? 200 : 5000);
  console.log(
    `group commit: ${gc.grouped.toFixed(0)} events/s; one txn per event: ${gc.serial.toFixed(0)} events/s`,
  );
  const sizes = smoke
    ? [[500, 10]]
    : [
        [20_000, 50],
        [100_000, 200],
      ];
  const rows: RestoreFigures[] = [];
  for (const [u, m] of sizes) {
    const r = await restore(etcd.endpoints, u, m);
    console.log(
      `restore ${u} units: snapshot ${mib(r.snapshotBytes)}, encode ${r.encodeMs.toFixed(0)} ms, write ${r.writeMs.toFixed(0)} ms, restore ${r.restoreMs.toFixed(0)} ms`,
    );
    rows.push(r);
  }
  if (smoke) return;
  writeSection(
    'engine',
    'Engine on etcd: group commit, snapshots and restore (issue 4)',
    'npm run build && node --expose-gc dist/bench/run.js engine',
    [
      "One etcd 3.4 member (harness), the engine in this process. A new leader's restore is timed from",
      'its campaign to the engine serving: snapshot and log tail read from etcd, verified, folded,',
      'scheduler indexes and actors rebuilt.',
      '',
      '| committed events/s | group commit (5,000 concurrent appends) | one transaction per event |',
      '|---|---:|---:|',
      `| Engine.append | ${gc.grouped.toFixed(0)} | ${gc.serial.toFixed(0)} |`,
      '',
      `Group commit is ${(gc.grouped / gc.serial).toFixed(1)}× one transaction per event.`,
      '',
      '| units | snapshot | chunks ≤ 1 MiB | encode | write to etcd | restore (new leader serving) | target | RSS added by restore |',
      '|---:|---:|---:|---:|---:|---:|---|---:|',
      ...rows.map(
        (r) =>
          `| ${r.units.toLocaleString('en-US')} | ${mib(r.snapshotBytes)} | ${Math.ceil(r.snapshotBytes / 2 ** 20)} | ${r.encodeMs.toFixed(0)} ms | ${r.writeMs.toFixed(0)} ms | ${r.restoreMs.toFixed(0)} ms (+${r.tail} tail events) | ${r.units === 20_000 ? '< 1 s' : '–'} | ${r.rssMiB.toFixed(0)} MiB |`,
      ),
    ].join('\n'),
  );
}

export const engineBenchmark: Benchmark = {
  name: 'engine',
  description: 'engine group commit, snapshot and restore on real etcd',
  run,
};
