/**
 * systemd driver throughput on one real `systemd --user` (test/harness): load+start N trivial
 * units in one batch each, then stop and unload them, for N = 300 and 1,000 (20 with --smoke).
 * "All active" is observed the way the agent observes it: through onState (signals).
 */
import os from 'node:os';
import path from 'node:path';
import type { DriverOp } from '../src/drivers/driver';
import { SystemdDriver, sha1 } from '../src/drivers/systemd';
import { startSystemd } from '../test/harness';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';

interface Row {
  units: number;
  loadMs: number;
  startMs: number;
  allActiveMs: number;
  stopMs: number;
  unloadMs: number;
  callsUp: number;
  callsDown: number;
  reloads: number;
  signalsReceived: number;
  signalsHandled: number;
  methods: Record<string, number>;
  /** CPU time of this process (user+system) over the whole cycle. */
  cpuMs: number;
}

function unitFile(i: number): string {
  return `[Unit]\nDescription=bench unit ${i}\n\n[Service]\nExecStart=/bin/sleep 100000\n`;
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) > 0) out[k] = v - (a[k] ?? 0);
  return out;
}

function check(results: { ok: boolean; error?: string }[], what: string): void {
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new Error(`${what}: ${failed.length} op(s) failed, first: ${failed[0].error}`);
  }
}

async function measure(driver: SystemdDriver, n: number): Promise<Row> {
  const units = Array.from({ length: n }, (_, i) => `bench-${n}-${i}.service`);
  const active = new Set<string>();
  let allActive: () => void = () => {};
  const allActiveP = new Promise<void>((r) => (allActive = r));
  const off = driver.onState((s) => {
    if (s.sub !== 'running' || !s.unit.startsWith(`bench-${n}-`)) return;
    active.add(s.unit);
    if (active.size === n) allActive();
  });

  const s0 = driver.stats;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  check(
    await driver.apply(
      units.map((unit, i): DriverOp => {
        const contents = unitFile(i);
        return { kind: 'load', unit, contents, hash: sha1(contents) };
      }),
    ),
    'load',
  );
  const t1 = performance.now();
  check(await driver.apply(units.map((unit): DriverOp => ({ kind: 'start', unit }))), 'start');
  const t2 = performance.now();
  await allActiveP;
  const t3 = performance.now();
  off();
  const s1 = driver.stats;

  check(await driver.apply(units.map((unit): DriverOp => ({ kind: 'stop', unit }))), 'stop');
  const t4 = performance.now();
  check(await driver.apply(units.map((unit): DriverOp => ({ kind: 'unload', unit }))), 'unload');
  const t5 = performance.now();
  const s2 = driver.stats;
  const cpu = process.cpuUsage(cpu0);

  return {
    units: n,
    loadMs: t1 - t0,
    startMs: t2 - t1,
    allActiveMs: t3 - t0,
    stopMs: t4 - t3,
    unloadMs: t5 - t4,
    callsUp: s1.calls - s0.calls,
    callsDown: s2.calls - s1.calls,
    reloads: s2.reloads - s0.reloads,
    signalsReceived: s2.signalsReceived - s0.signalsReceived,
    signalsHandled: s2.signalsHandled - s0.signalsHandled,
    methods: diff(s0.callsByMethod, s2.callsByMethod),
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000)}`;
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function report(rows: Row[], load: number[]): string {
  const lines = [
    'One `systemd --user` (test harness), one driver, one batch per step; trivial units',
    '(`ExecStart=/bin/sleep 100000`). "until all active" runs from the start of the load batch',
    'until onState has reported every unit `active (running)`. systemd, the bus daemon, the',
    `agent and the units share the machine (load average before/after: ${load.map((l) => l.toFixed(1)).join(' / ')}).`,
    '',
    '| units | load (units/s) | start (units/s) | until all active | D-Bus calls/unit (load+start) | stop (units/s) | unload (units/s) | D-Bus calls/unit (stop+unload) | reloads |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.units} | ${rate(r.units, r.loadMs)} | ${rate(r.units, r.startMs)} | ${sec(r.allActiveMs)} | ` +
        `${(r.callsUp / r.units).toFixed(2)} | ${rate(r.units, r.stopMs)} | ${rate(r.units, r.unloadMs)} | ` +
        `${(r.callsDown / r.units).toFixed(2)} | ${r.reloads} |`,
    ),
    '',
    'D-Bus calls by method, whole cycle (load, start, stop, unload):',
    '',
    ...rows.map(
      (r) =>
        `- ${r.units} units: ` +
        Object.entries(r.methods)
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([m, c]) => `${m} ${c}`)
          .join(', ') +
        `; signals received ${r.signalsReceived}, handled ${r.signalsHandled}; ` +
        `agent CPU ${(r.cpuMs / r.units).toFixed(2)} ms/unit`,
    ),
  ];
  return lines.join('\n');
}

async function run(opts: BenchOptions): Promise<void> {
  const sizes = opts.smoke ? [20] : [300, 1000];
  const loadBefore = os.loadavg()[0];
  const manager = await startSystemd();
  const driver = new SystemdDriver({
    busAddress: manager.busAddress,
    unitsDirectory: path.join(manager.dir, 'units'),
  });
  const rows: Row[] = [];
  try {
    await driver.open();
    for (const n of sizes) {
      const row = await measure(driver, n);
      rows.push(row);
      console.log(
        `${n} units: load ${rate(n, row.loadMs)}/s, start ${rate(n, row.startMs)}/s, ` +
          `all active ${sec(row.allActiveMs)}, ${(row.callsUp / n).toFixed(2)} calls/unit, ` +
          `stop ${rate(n, row.stopMs)}/s, unload ${rate(n, row.unloadMs)}/s, reloads ${row.reloads}`,
      );
    }
  } finally {
    await driver.close();
    await manager.dispose();
  }
  const body = report(rows, [loadBefore, os.loadavg()[0]]);
  if (opts.smoke) {
    console.log(body);
    return;
  }
  writeSection(
    'driver',
    'systemd driver: load, start, stop, unload',
    'npm run build && node dist/bench/run.js driver',
    body,
  );
}

export const driverBenchmark: Benchmark = {
  name: 'driver',
  description:
    'systemd driver on a real systemd --user: load+start, stop+unload of 300 and 1,000 units',
  run,
};
