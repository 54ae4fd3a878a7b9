/**
 * `node dist/bench/lib/top-frames.js FILE.cpuprofile [N]`: the functions with the most self
 * time and the most total (inclusive) time in a V8 CPU profile, as a share of the samples in
 * which the process was busy (idle samples left out). Set FLOTILLA_BENCH_CPU_PROF=<dir> when
 * running a benchmark to profile its daemons, leaders and agent processes.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

const IDLE = new Set(['(idle)', '(program)']);

export function topFrames(file: string, n = 15): { busy: number; self: string[]; total: string[] } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
  };
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of prof.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  const keyOf = (node: ProfileNode): string => {
    const f = node.callFrame;
    const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${where}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busy = 0;
  for (const id of prof.samples) {
    const node = byId.get(id);
    if (!node || IDLE.has(node.callFrame.functionName)) continue;
    busy++;
    const k = keyOf(node);
    self.set(k, (self.get(k) ?? 0) + 1);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = keyOf(byId.get(cur)!);
      if (seen.has(kk) || kk === '(root)') continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + 1);
    }
  }
  const top = (m: Map<string, number>): string[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, c]) => `${((c / Math.max(1, busy)) * 100).toFixed(1).padStart(5)} %  ${k}`);
  return { busy, self: top(self), total: top(total) };
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  const t = topFrames(file, Number(n ?? 15));
  console.log(
    `busy samples: ${t.busy}\n\nself time:\n${t.self.join('\n')}\n\ntotal time:\n${t.total.join('\n')}`,
  );
}
