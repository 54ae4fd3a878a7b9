/**
 * Scheduler at scale: 100,000 units on 1,000 machines (2,000 on 20 with --smoke), a quarter of
 * them with Conflicts or MachineMetadata, plus MachineOf followers, Replaces pairs and global
 * units. Measures a cold placement of everything (one plan()), then the incremental paths the
 * engine uses every day: one unit submitted, a machine lost, a machine joining, an idle plan.
 * Memory: heap and RSS growth of the scheduler with everything placed, per unit.
 */
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Decision, SchedMachine, SchedUnit } from '../src/scheduler';
import { Scheduler } from '../src/scheduler';
import { parseUnitFile, unitRequirements } from '../src/unit';
import type { BenchOptions, Benchmark } from './benchmark';
import { mib, percentile, writeSection } from './report';

const REGIONS = ['us-east', 'us-west', 'eu-central', 'ap-south'];
/** Racks of machines; at full size a rack is 2% of the machines. */
const racksFor = (nMachines: number): number => Math.min(50, nMachines);

interface Scenario {
  machines: SchedMachine[];
  units: SchedUnit[];
  counts: Record<string, number>;
}

/** A deterministic PRNG (mulberry32), so every run places the same cluster. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function machineId(i: number): string {
  // 32 hex characters, like /etc/machine-id.
  return (i * 2654435761 + 0x9e3779b9).toString(16).padStart(8, '0').repeat(4).slice(0, 32);
}

function machineOf(i: number, racks: number): SchedMachine {
  return {
    id: machineId(i),
    metadata: { region: REGIONS[i % 4], disk: i % 3 === 0 ? 'ssd' : 'hdd', rack: `r${i % racks}` },
  };
}

/** Reads a unit the way the engine does: unit file text → options → requirements. */
function unitOf(
  name: string,
  xfleet: string[],
  target: SchedUnit['target'] = 'launched',
): SchedUnit {
  const text = `[Unit]\nDescription=${name}\n\n[Service]\nExecStart=/bin/true\n\n[X-Fleet]\n${xfleet.join('\n')}\n`;
  return { name, target, requirements: unitRequirements(name, parseUnitFile(text)).requirements };
}

function scenario(nUnits: number, nMachines: number): Scenario {
  const rand = rng(42);
  const racks = racksFor(nMachines);
  const machines = Array.from({ length: nMachines }, (_, i) => machineOf(i, racks));
  const units: SchedUnit[] = [];
  const counts: Record<string, number> = {
    plain: 0,
    metadata: 0,
    conflicts: 0,
    machineOf: 0,
    replaces: 0,
    global: 0,
  };
  const add = (kind: string, u: SchedUnit): void => {
    units.push(u);
    counts[kind]++;
  };
  // Global units: agents on every matching machine; they count in the load.
  for (let g = 0; g < 8; g++) {
    add(
      'global',
      unitOf(`node-agent-${g}.service`, [
        'Global=true',
        `MachineMetadata=region=${REGIONS[g % 4]}`,
      ]),
    );
  }
  const perTemplate = instances(nMachines);
  let template = 0;
  let i = 0;
  while (units.length < nUnits) {
    const r = rand();
    if (r < 0.016) {
      // Conflicts: instances of one template kept on distinct machines.
      for (let k = 0; k < perTemplate && units.length < nUnits; k++) {
        add('conflicts', unitOf(`svc${template}@${k}.service`, ['Conflicts=%p@*.service']));
      }
      template++;
    } else if (r < 0.166) {
      const region = REGIONS[Math.floor(rand() * 4)];
      const body =
        rand() < 0.15
          ? [`MachineMetadata=rack=r${Math.floor(rand() * racks)}`] // selective: one rack
          : rand() < 0.5
            ? [`MachineMetadata=region=${region}`, 'MachineMetadata=disk=ssd']
            : [
                `MachineMetadata="region=${region}" "region=${REGIONS[(REGIONS.indexOf(region) + 1) % 4]}"`,
              ];
      add('metadata', unitOf(`job-${i}.service`, body));
    } else if (r < 0.191) {
      add('plain', unitOf(`db-${i}.service`, []));
      if (units.length < nUnits)
        add('machineOf', unitOf(`db-${i}-backup.service`, [`MachineOf=db-${i}.service`]));
    } else if (r < 0.206) {
      add('plain', unitOf(`api-${i}-v1.service`, []));
      if (units.length < nUnits)
        add('replaces', unitOf(`api-${i}-v2.service`, [`Replaces=api-${i}-v1.service`]));
    } else {
      add('plain', unitOf(`app-${i}.service`, []));
    }
    i++;
  }
  return { machines, units, counts };
}

/** Instances per Conflicts template: at most 10, and never more than a quarter of the machines. */
function instances(nMachines: number): number {
  return Math.min(10, Math.max(2, Math.floor(nMachines / 4)));
}

let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose_gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

interface Cold {
  upsertMs: number;
  planMs: number;
  decisions: Decision[];
  scheduler: Scheduler;
}

/** One plan as the engine runs it: decided, then committed (applied to the indexes). */
function planAndCommit(sch: Scheduler): Decision[] {
  const d = sch.plan();
  sch.commit(d);
  return d;
}

function cold(s: Scenario): Cold {
  const t0 = performance.now();
  const scheduler = new Scheduler();
  for (const m of s.machines) scheduler.upsertMachine(m);
  for (const u of s.units) scheduler.upsertUnit(u);
  const t1 = performance.now();
  const decisions = planAndCommit(scheduler);
  const t2 = performance.now();
  return { upsertMs: t1 - t0, planMs: t2 - t1, decisions, scheduler };
}

/** Sanity: everything placeable is placed and no rule is broken where it is cheap to check. */
function verify(s: Scenario, sch: Scheduler): void {
  const waiting = sch.waitingUnits();
  if (waiting.length > 0)
    throw new Error(`${waiting.length} unit(s) not placed, e.g. ${sch.explain(waiting[0])}`);
  const machines = new Map(s.machines.map((m) => [m.id, m]));
  const byTemplate = new Map<string, Set<string>>();
  for (const u of s.units) {
    if (u.requirements.global) continue;
    const at = sch.placementOf(u.name) as string;
    const m = machines.get(at);
    for (const [k, vs] of Object.entries(u.requirements.metadata)) {
      if (!m || !vs.includes(m.metadata[k])) throw new Error(`${u.name} on ${at} breaks ${k}`);
    }
    if (u.requirements.conflicts.length > 0) {
      const t = u.name.slice(0, u.name.indexOf('@'));
      const used = byTemplate.get(t) ?? new Set<string>();
      if (used.has(at)) throw new Error(`${u.name} shares ${at} with a conflicting instance`);
      used.add(at);
      byTemplate.set(t, used);
    }
    for (const p of u.requirements.machineOf) {
      if (sch.placementOf(p) !== at) throw new Error(`${u.name} is not with ${p}`);
    }
  }
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

const fmt = (ms: number): string => (ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(2)} ms`);

async function run(opts: BenchOptions): Promise<void> {
  const nUnits = opts.smoke ? 2_000 : 100_000;
  const nMachines = opts.smoke ? 20 : 1_000;
  const rounds = opts.smoke ? 1 : 5;
  const loadBefore = os.loadavg()[0];

  const tGen = performance.now();
  const s = scenario(nUnits, nMachines);
  const genMs = performance.now() - tGen;
  const constrained = s.units.filter(
    (u) => u.requirements.conflicts.length > 0 || Object.keys(u.requirements.metadata).length > 0,
  ).length;
  console.log(
    `scenario: ${s.units.length} units (${JSON.stringify(s.counts)}), ${nMachines} machines; ` +
      `${((100 * constrained) / s.units.length).toFixed(1)}% with Conflicts or MachineMetadata; ` +
      `parsed and resolved in ${fmt(genMs)}`,
  );

  // Cold placement, a few rounds; memory measured on the last one.
  const upserts: number[] = [];
  const plans: number[] = [];
  let last: Cold | undefined;
  let heap0 = 0;
  let rss0 = 0;
  for (let r = 0; r < rounds; r++) {
    last = undefined;
    gc();
    heap0 = process.memoryUsage().heapUsed;
    rss0 = process.memoryUsage().rss;
    last = cold(s);
    upserts.push(last.upsertMs);
    plans.push(last.planMs);
    console.log(
      `cold round ${r + 1}: upsert ${fmt(last.upsertMs)}, plan ${fmt(last.planMs)}, ${last.decisions.length} decisions`,
    );
  }
  const c = last as Cold;
  gc();
  const heapDelta = process.memoryUsage().heapUsed - heap0;
  const rssDelta = process.memoryUsage().rss - rss0;
  const placedUnits = s.units.filter((u) => !u.requirements.global).length;
  const net = c.decisions.reduce((n, d) => n + (d.kind === 'schedule' ? 1 : -1), 0);
  if (net !== placedUnits) throw new Error(`expected ${placedUnits} placements, got ${net}`);
  verify(s, c.scheduler);
  const sch = c.scheduler;
  c.decisions.length = 0; // the decisions are the engine's to keep, not the scheduler's

  // One unit at a time, on the loaded cluster: submit + plan, as the engine does per event.
  const rand = rng(7);
  const apps = s.units.filter((u) => u.name.startsWith('app-')).map((u) => u.name);
  const single: number[] = [];
  const n = opts.smoke ? 200 : 2_000;
  for (let k = 0; k < n; k++) {
    const kind = k % 4;
    const name = kind === 1 ? `late-g${k % 97}@${k}.service` : `late-${k}.service`;
    const u =
      kind === 0
        ? unitOf(name, [])
        : kind === 1
          ? unitOf(name, ['Conflicts=%p@*.service'])
          : kind === 2
            ? unitOf(name, [`MachineMetadata=rack=r${Math.floor(rand() * racksFor(nMachines))}`])
            : unitOf(name, [`MachineOf=${apps[Math.floor(rand() * apps.length)]}`]);
    const t = performance.now();
    sch.upsertUnit(u);
    const ds = planAndCommit(sch);
    single.push(performance.now() - t);
    if (ds.length !== 1) throw new Error(`${name}: ${ds.length} decisions`);
  }
  single.sort((a, b) => a - b);

  // A machine lost: its units move (MachineOf followers with their peers).
  const victim = s.machines[Math.floor(nMachines / 2)].id;
  const onVictim = sch.loadOf(victim) ?? 0;
  let t = performance.now();
  sch.removeMachine(victim);
  const lostDecisions = planAndCommit(sch).length;
  const lostMs = performance.now() - t;

  // A machine joins: nothing moves (no rebalancing), nothing waits.
  t = performance.now();
  sch.upsertMachine(machineOf(nMachines + 1, racksFor(nMachines)));
  const joinDecisions = planAndCommit(sch).length;
  const joinMs = performance.now() - t;

  // Nothing to do.
  t = performance.now();
  planAndCommit(sch);
  const idleMs = performance.now() - t;

  const total = upserts.map((u, k) => u + plans[k]);
  const rows = [
    '| step | time | decisions |',
    '|---|---:|---:|',
    `| cold: upsert ${nMachines} machines + ${s.units.length} units (median of ${rounds}) | ${fmt(median(upserts))} | — |`,
    `| cold: plan() placing all of them (median of ${rounds}) | ${fmt(median(plans))} | ${placedUnits} |`,
    `| **cold total** (median; min–max ${fmt(Math.min(...total))}–${fmt(Math.max(...total))}) | **${fmt(median(total))}** | ${placedUnits} |`,
    `| one unit submitted + plan(), p50 / p99 / max over ${n} | ${fmt(percentile(single, 50))} / ${fmt(percentile(single, 99))} / ${fmt(single[single.length - 1])} | 1 each |`,
    `| machine lost (${onVictim} units on it) + plan() | ${fmt(lostMs)} | ${lostDecisions} |`,
    `| machine joins + plan() | ${fmt(joinMs)} | ${joinDecisions} |`,
    `| plan() with nothing to do | ${fmt(idleMs)} | 0 |`,
  ];
  const loadAfter = os.loadavg()[0];
  const memory = [
    `Memory of the scheduler with everything placed (after GC, inputs excluded): heap +${mib(heapDelta)}, ` +
      `RSS +${mib(rssDelta)}; ${Math.round(heapDelta / s.units.length)} bytes of heap per unit.`,
  ];
  const mix =
    `${s.units.length} units: ${s.counts.plain} plain, ${s.counts.conflicts} with Conflicts (templates of ` +
    `${instances(nMachines)} instances, \`Conflicts=%p@*.service\`), ${s.counts.metadata} with MachineMetadata ` +
    `(region, region+disk, or one rack of ${racksFor(nMachines)}), ${s.counts.machineOf} MachineOf followers, ` +
    `${s.counts.replaces} with Replaces, ${s.counts.global} global; ` +
    `${((100 * constrained) / s.units.length).toFixed(1)}% have Conflicts or MachineMetadata. ` +
    `Machines carry region (4), disk (2) and rack (${racksFor(nMachines)}) metadata.`;
  console.log([...rows, '', ...memory].join('\n'));
  if (opts.smoke) return;
  writeSection(
    'scheduler',
    `Scheduler: ${s.units.length.toLocaleString('en')} units on ${nMachines.toLocaleString('en')} machines`,
    'npm run build && node dist/bench/run.js scheduler',
    [
      mix,
      'Units are read from unit-file text with the real parser before timing starts. "Cold" is a',
      'fresh `Scheduler` fed every machine and unit, then one `plan()` that places everything.',
      'The incremental rows run on that loaded cluster. Every placement is checked afterwards.',
      '',
      ...rows,
      '',
      ...memory,
      '',
      `System load average (1 min) ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after: ` +
        'other work shares these 2 cores, so single rounds vary; the median is the figure to use.',
    ].join('\n'),
  );
}

export const schedulerBenchmark: Benchmark = {
  name: 'scheduler',
  description: 'place 100,000 units on 1,000 machines; incremental plans; memory',
  run,
};
