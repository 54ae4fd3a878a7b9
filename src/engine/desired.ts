import type { ScheduleDelta, ScheduledUnit, ScheduleFull } from '../protocol/messages';
import { PROTOCOL_VERSION } from '../protocol/messages';
import { serializeUnitFile } from '../unit';
import type { UnitRecord } from './state';

interface Entry {
  hash: string;
  target: 'loaded' | 'launched';
}

/**
 * What every machine should run, derived from the folded state (a projection, never a source of
 * truth), and the per-machine sequence of changes the leader publishes. `set` records where a
 * unit should run now; `flush` turns everything that changed since the last flush into one
 * ScheduleDelta per machine, numbered 1, 2, 3… within the epoch. Only machines whose schedule
 * changed get a message: no fleet-wide wake-ups.
 */
export class DesiredSchedule {
  private readonly byMachine = new Map<string, Map<string, Entry>>();
  private readonly unitMachines = new Map<string, Set<string>>();
  private readonly pending = new Map<string, Map<string, Entry | null>>();
  private readonly seqs = new Map<string, number>();

  constructor(
    readonly epoch: number,
    private readonly unitOf: (name: string) => UnitRecord | undefined,
  ) {}

  /** Sets the machines `unit` should run on (empty: nowhere) with its current hash and target. */
  set(unit: string, machines: Iterable<string>, entry: Entry | null): void {
    const before = this.unitMachines.get(unit) ?? new Set<string>();
    const after = new Set<string>(entry ? machines : []);
    for (const m of before) {
      if (!after.has(m)) {
        this.byMachine.get(m)?.delete(unit);
        this.mark(m, unit, null);
      }
    }
    for (const m of after) {
      let units = this.byMachine.get(m);
      if (!units) this.byMachine.set(m, (units = new Map()));
      const prev = units.get(unit);
      if (!prev || prev.hash !== entry!.hash || prev.target !== entry!.target) {
        units.set(unit, entry!);
        this.mark(m, unit, entry);
      }
    }
    if (after.size === 0) this.unitMachines.delete(unit);
    else this.unitMachines.set(unit, after);
  }

  /** The sequence number of the last delta sent to `machine` in this epoch (0: none). */
  seqOf(machine: string): number {
    return this.seqs.get(machine) ?? 0;
  }

  /**
   * An empty delta with the next sequence number, for an agent that is behind (it missed a
   * delta on the wire): the gap makes it fetch its full schedule.
   */
  nudge(machine: string): ScheduleDelta {
    const seq = this.seqOf(machine) + 1;
    this.seqs.set(machine, seq);
    return { v: PROTOCOL_VERSION, kind: 'delta', epoch: this.epoch, seq, put: [], remove: [] };
  }

  /** Every unit that runs somewhere. */
  units(): string[] {
    return [...this.unitMachines.keys()];
  }

  machinesOf(unit: string): ReadonlySet<string> {
    return this.unitMachines.get(unit) ?? new Set();
  }

  private mark(machine: string, unit: string, entry: Entry | null): void {
    let p = this.pending.get(machine);
    if (!p) this.pending.set(machine, (p = new Map()));
    p.set(unit, entry);
  }

  /**
   * The deltas of every machine whose schedule changed since the last flush, in machine order:
   * one per machine, or several with consecutive numbers when one would encode to more than
   * `maxBytes` (the bus's largest message). Agents apply deltas in order, so a split is
   * invisible to them.
   */
  flush(maxBytes = Infinity): { machine: string; delta: ScheduleDelta }[] {
    const out: { machine: string; delta: ScheduleDelta }[] = [];
    for (const machine of [...this.pending.keys()].sort()) {
      const changes = this.pending.get(machine)!;
      const put: ScheduledUnit[] = [];
      const remove: string[] = [];
      for (const unit of [...changes.keys()].sort()) {
        const e = changes.get(unit)!;
        if (e === null) remove.push(unit);
        else {
          const rec = this.unitOf(unit);
          if (rec) put.push(this.scheduled(rec, e));
        }
      }
      for (const part of splitBySize(put, remove, maxBytes)) {
        const seq = (this.seqs.get(machine) ?? 0) + 1;
        this.seqs.set(machine, seq);
        out.push({
          machine,
          delta: { v: PROTOCOL_VERSION, kind: 'delta', epoch: this.epoch, seq, ...part },
        });
      }
    }
    this.pending.clear();
    return out;
  }

  /**
   * Forgets pending changes without building messages, advancing each changed machine's
   * sequence number as a flush would (a new term: agents fetch their full schedule anyway).
   */
  discard(): void {
    for (const machine of this.pending.keys())
      this.seqs.set(machine, (this.seqs.get(machine) ?? 0) + 1);
    this.pending.clear();
  }

  /**
   * The machine's whole schedule. Callers flush first, so the full schedule and the sequence
   * number agree: it includes every change up to and including delta `seq`.
   */
  full(machine: string): ScheduleFull {
    if (this.pending.has(machine)) this.flushOnlyNumbers(machine);
    const units: ScheduledUnit[] = [];
    const mine = this.byMachine.get(machine);
    for (const unit of [...(mine?.keys() ?? [])].sort()) {
      const rec = this.unitOf(unit);
      if (rec) units.push(this.scheduled(rec, mine!.get(unit)!));
    }
    return {
      v: PROTOCOL_VERSION,
      kind: 'full',
      epoch: this.epoch,
      seq: this.seqs.get(machine) ?? 0,
      units,
    };
  }

  /**
   * One page of the machine's whole schedule: the units after `after` (by name) that fit in
   * `maxBytes`, and `next` when more follow. Every page carries the sequence number current when
   * it was built; an agent that applies the deltas after the first page's number converges
   * (deltas say what a unit should be, not how it changed).
   */
  fullPage(machine: string, after: string | undefined, maxBytes: number): ScheduleFull {
    const full = this.full(machine);
    const start = after === undefined ? 0 : full.units.findIndex((u) => u.unit > after);
    const rest = start < 0 ? [] : full.units.slice(start);
    const [first] = splitBySize(rest, [], maxBytes);
    const page: ScheduleFull = { ...full, units: first.put };
    if (first.put.length < rest.length) page.next = first.put[first.put.length - 1].unit;
    return page;
  }

  /** Defensive: folds unflushed changes into the numbering without a message (the full reply carries them). */
  private flushOnlyNumbers(machine: string): void {
    this.pending.delete(machine);
    this.seqs.set(machine, (this.seqs.get(machine) ?? 0) + 1);
  }

  private scheduled(rec: UnitRecord, e: Entry): ScheduledUnit {
    return {
      unit: rec.name,
      hash: e.hash,
      contents: serializeUnitFile(rec.options),
      target: e.target,
    };
  }
}

/** JSON bytes of a delta with nothing in it (numbers at their widest), plus room to spare. */
const DELTA_OVERHEAD_BYTES = 160;

/**
 * Cuts a delta's changes into parts that encode to at most `maxBytes` each (removals first, in
 * the first part). A single unit larger than that gets a part of its own: publishing it fails
 * with a clear PAYLOAD_TOO_LARGE, and nothing else is held back by it.
 */
export function splitBySize(
  put: ScheduledUnit[],
  remove: string[],
  maxBytes: number,
): { put: ScheduledUnit[]; remove: string[] }[] {
  const parts: { put: ScheduledUnit[]; remove: string[] }[] = [];
  let cur = { put: [] as ScheduledUnit[], remove: [] as string[] };
  let size = DELTA_OVERHEAD_BYTES;
  const room = (bytes: number): void => {
    if (size + bytes > maxBytes && (cur.put.length > 0 || cur.remove.length > 0)) {
      parts.push(cur);
      cur = { put: [], remove: [] };
      size = DELTA_OVERHEAD_BYTES;
    }
    size += bytes;
  };
  for (const r of remove) {
    room(Buffer.byteLength(JSON.stringify(r)) + 1);
    cur.remove.push(r);
  }
  for (const p of put) {
    room(Buffer.byteLength(JSON.stringify(p)) + 1);
    cur.put.push(p);
  }
  parts.push(cur);
  return parts;
}
