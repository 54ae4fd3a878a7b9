import type { Engine } from '../engine/engine';
import type { FlotillaEvent } from '../events/types';
import { foldedUnitPhase } from './phases';
import type { ClusterView } from './views';

/**
 * Each unit's engine-unit state on the live leader, kept incrementally: an event about a unit
 * marks it dirty, and dirty units are read from the engine's own lifecycles (as last stepped,
 * plus the events the fold queued since) when the view is next asked for — at most a few times a second while a page
 * is open. The counts per state move with them, so counting never scans the cluster. Nothing
 * here makes the engine apply its pending effects early (that would block its event loop for
 * the whole backlog during a burst): lifecycles are stepped from the fold's queue, machines'
 * states read from their actors as they are.
 */
export class LiveStates {
  private readonly phases = new Map<string, string>();
  private readonly totals = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private readonly unwatch: () => void;
  /** Bumped by every event: the stream sends only when it moved. */
  version = 0;
  private lastTime = Date.now();
  /** When the newest event was handed over: committed by the store and folded (this clock). */
  private committedAt = Date.now();
  private readonly listeners = new Set<() => void>();

  constructor(readonly engine: Engine) {
    const w = engine.watch(0, (e: FlotillaEvent) => {
      this.version++;
      this.lastTime = e.time;
      this.committedAt = Date.now();
      if ('unit' in e) this.dirty.add(e.unit);
      for (const l of this.listeners) l();
    });
    this.unwatch = w.close;
    for (const name of engine.state.units.keys()) this.dirty.add(name);
  }

  /** Brings the states of dirty units up to date. */
  flush(): void {
    for (const name of this.dirty) {
      const before = this.phases.get(name);
      // Read from the lifecycle and the events queued for it, without stepping it: the engine
      // steps it in its own turn (memoised: a few map lookups, see phases.ts).
      const u = this.engine.state.units.get(name);
      const after = u ? foldedUnitPhase(this.engine.state, u) : undefined;
      if (before === after) continue;
      if (before !== undefined) this.bump(before, -1);
      if (after !== undefined) {
        this.bump(after, 1);
        this.phases.set(name, after);
      } else this.phases.delete(name);
    }
    this.dirty.clear();
  }

  private bump(phase: string, by: number): void {
    const n = (this.totals.get(phase) ?? 0) + by;
    if (n === 0) this.totals.delete(phase);
    else this.totals.set(phase, n);
  }

  /** Units per state, unfiltered (maintained, not counted). */
  unitTotals(): Record<string, number> {
    this.flush();
    return Object.fromEntries(this.totals);
  }

  /** Called after every event (the stream coalesces). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  view(): ClusterView {
    this.flush();
    const engine = this.engine;
    return {
      state: engine.state,
      time: this.lastTime,
      committedAt: this.committedAt,
      unitPhase: (name) => this.phases.get(name),
      unitTotals: () => Object.fromEntries(this.totals),
      machinePhase: (id) =>
        engine.machinePhaseNow(id) ?? engine.state.machines.get(id)?.presence ?? 'unknown',
    };
  }

  close(): void {
    this.unwatch();
  }
}
