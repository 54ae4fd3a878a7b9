import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BENCHMARKS_MD = path.resolve(__dirname, '..', '..', 'docs', 'benchmarks.md');

/** The machine a benchmark ran on, for the record. */
export function machineLine(): string {
  const cpus = os.cpus();
  const mem = Math.round(os.totalmem() / 2 ** 30);
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${mem} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/**
 * Replaces the section `id` of docs/benchmarks.md (between `<!-- bench:id -->` and
 * `<!-- /bench:id -->`) with `body`, or appends it. Each benchmark owns its section, so
 * running one benchmark never disturbs another's figures. `smoke` runs never write.
 */
export function writeSection(id: string, title: string, command: string, body: string): void {
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const date = new Date().toISOString().slice(0, 10);
  const section = [
    start,
    `## ${title}`,
    '',
    `Measured ${date} on ${machineLine()}.`,
    `Reproduce: \`${command}\``,
    '',
    body.trim(),
    end,
  ].join('\n');
  let text = fs.existsSync(BENCHMARKS_MD)
    ? fs.readFileSync(BENCHMARKS_MD, 'utf8')
    : '# Benchmarks\n\nEvery figure here is written by `npm run bench` (see `bench/`).\n';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(BENCHMARKS_MD, text);
}

/** Percentile (0..100) of a sorted array of numbers, nearest-rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
