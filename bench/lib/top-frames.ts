/**
 * `node dist/bench/lib/top-frames.js FILE.cpuprofile [N]`: the functions with the most self
 * time in a V8 CPU profile (written by `node --cpu-prof`), with their share of all samples.
 * Set FLOTILLA_BENCH_CPU_PROF=<dir> when running a benchmark to profile its daemons and agents.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export function topFrames(file: string, n = 15): string[] {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
  };
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  for (const id of prof.samples) {
    const node = byId.get(id);
    if (!node) continue;
    const f = node.callFrame;
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = prof.samples.length || 1;
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, c]) => `${((c / total) * 100).toFixed(1).padStart(5)} %  ${k}`);
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  console.log(topFrames(file, Number(n ?? 15)).join('\n'));
}
