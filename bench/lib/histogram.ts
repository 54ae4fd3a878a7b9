/**
 * Latency summaries: percentiles and a text histogram in the style of fleet's own benchmark
 * output (bucket range, percent, bar, count).
 */
import { percentile } from '../report';

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(values: number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length > 0 ? s[s.length - 1] : NaN,
  };
}

/** Bucket upper bounds in ms (the last bucket is open). */
const BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** A fenced text block: one line per non-empty bucket. */
export function histogram(valuesMs: number[], width = 40): string {
  const counts = new Array<number>(BOUNDS_MS.length + 1).fill(0);
  for (const v of valuesMs) {
    let i = BOUNDS_MS.findIndex((b) => v < b);
    if (i < 0) i = BOUNDS_MS.length;
    counts[i]++;
  }
  const total = valuesMs.length || 1;
  const top = Math.max(...counts, 1);
  const first = counts.findIndex((c) => c > 0);
  const last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
  const lines: string[] = [];
  for (let i = Math.max(0, first); i <= last && first >= 0; i++) {
    const lo = i === 0 ? 0 : BOUNDS_MS[i - 1];
    const range = i < BOUNDS_MS.length ? `${fmtMs(lo)} – ${fmtMs(BOUNDS_MS[i])}` : `≥ ${fmtMs(lo)}`;
    const pct = ((counts[i] / total) * 100).toFixed(2).padStart(6);
    const bar = '█'.repeat(Math.round((counts[i] / top) * width)).padEnd(width);
    lines.push(`${range.padEnd(17)} ${pct}%  ${bar} ${counts[i]}`);
  }
  return ['```', ...lines, '```'].join('\n');
}
