/**
 * Per-process CPU and memory from /proc, so leader and agent figures are measured per process
 * (not this benchmark process's own counters).
 */
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux we run on). */
const HZ = 100;

/** User + system CPU seconds consumed so far by `pid` (0 if it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces; everything after the last ')' is fixed-position.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / HZ;
  } catch {
    return 0;
  }
}

/** Resident set size of `pid` in bytes (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peak resident set size of `pid` in bytes (VmHWM; 0 if it is gone). */
export function peakRssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU used by a set of processes between two calls: `const stop = cpuMeter(pids); … stop()`. */
export function cpuMeter(pids: number[]): () => { seconds: number; wallSeconds: number } {
  const t0 = performance.now();
  const c0 = pids.map(cpuSeconds);
  return () => ({
    seconds: pids.reduce((s, p, i) => s + cpuSeconds(p) - c0[i], 0),
    wallSeconds: (performance.now() - t0) / 1000,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every `everyMs` until it holds; throws after `timeoutMs`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  everyMs = 50,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}
