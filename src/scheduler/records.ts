/** The scheduler's records of units and machines, and the pure helpers over them. */
import type { Glob } from '../unit/glob';
import { globOf } from '../unit/glob';
import type { TargetState, UnitRequirements } from '../unit/types';
import type { LoadIndex } from './load-index';

export interface UnitRec {
  name: string;
  target: TargetState;
  req: UnitRequirements;
  conflicts: Glob[];
  replaces: Glob[];
  /** Keys of `req.metadata` with at least one value, sorted. */
  metaKeys: string[];
  /** Its MachineMetadata requirement's index (non-global units with metadata only). */
  sig?: SigIndex;
  /** The machine this (non-global, active) unit is placed on. */
  machine?: string;
  /** An unschedule decision owed to the engine (machine lost, unit deactivated). */
  pending?: { machine: string; reason: string };
  /** Machines a global unit runs on (created when it first runs somewhere). */
  globalOn?: Set<string>;
  /** Queued for the next (or the current) plan. */
  dirty: boolean;
  /**
   * While waiting for a machine: the wait group it is in ('' any machine, `id:`, `sig:`, `at:`),
   * or null when only its MachineOf peers can wake it; undefined when not waiting.
   */
  waitKey?: string | null;
  /** Why it is where it is, or why it waits. */
  note: string;
  /** The clock when it last failed to find a machine. */
  evalClock: number;
  visits: number;
  visitPlan: number;
  /** Plans in a row that left it waiting for a reason of that plan only (see retryNextPlan). */
  planRetries?: number;
}

export interface MachineRec {
  id: string;
  metadata: Map<string, string>;
  /** Units on this machine (placed units and the global units running here), sorted. */
  residents: string[];
  /** Conflicts= pattern → residents declaring it. */
  conflictHolders: Map<string, Set<string>>;
  /** Replaces= pattern → residents declaring it. */
  replaceHolders: Map<string, Set<string>>;
  /** Clock of the last change that could let a waiting unit fit here. */
  touched: number;
  /** The signature indexes this machine is in. */
  sigs: SigIndex[];
  /** Its load as recorded in the load indexes (= residents.length once settled). */
  load: number;
}

/**
 * One distinct MachineMetadata requirement ("signature") shared by `refs` units, and the
 * machines satisfying it in (load, ID) order, built on first use and kept up to date after.
 */
export interface SigIndex {
  key: string;
  metadata: Readonly<Record<string, readonly string[]>>;
  keys: string[];
  refs: number;
  loads?: LoadIndex<MachineRec>;
}

export type Verdict = { ok: true; evict: readonly string[] } | { ok: false; reason: string };

export const FITS: Verdict = Object.freeze({
  ok: true as const,
  evict: Object.freeze([]) as readonly string[],
});

export const wantsPlacement = (u: UnitRec): boolean => !u.req.global && u.target !== 'inactive';
export const isGlobalActive = (u: UnitRec): boolean => u.req.global && u.target !== 'inactive';

/** True when `id` is named by a MachineID value (full ID, or fleet's 8-character short ID). */
export function machineIdMatches(id: string, wanted: string): boolean {
  return id === wanted || id.slice(0, 8) === wanted;
}

/** `region=us|eu, disk=ssd`: a MachineMetadata requirement for messages. */
export function formatMetadata(metadata: Readonly<Record<string, readonly string[]>>): string {
  return Object.keys(metadata)
    .filter((k) => metadata[k].length > 0)
    .sort()
    .map((k) => `${k}=${metadata[k].join('|')}`)
    .join(', ');
}

export function sameRequirements(a: UnitRequirements, b: UnitRequirements): boolean {
  const list = (x: readonly string[], y: readonly string[]): boolean =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  if (a.machineId !== b.machineId || a.global !== b.global) return false;
  if (!list(a.machineOf, b.machineOf) || !list(a.conflicts, b.conflicts)) return false;
  if (!list(a.replaces, b.replaces)) return false;
  const ka = Object.keys(a.metadata).sort();
  const kb = Object.keys(b.metadata).sort();
  return list(ka, kb) && ka.every((k) => list(a.metadata[k], b.metadata[k]));
}

export const NO_GLOBS: Glob[] = [];
export const NO_KEYS: string[] = [];

/** Compiled patterns, malformed ones dropped (they match nothing). Shared empty array if none. */
export function compile(patterns: readonly string[]): Glob[] {
  if (patterns.length === 0) return NO_GLOBS;
  return patterns.map(globOf).filter((g) => !g.bad);
}

/** Keys with at least one allowed value, sorted. Shared empty array if none. */
export function metadataKeys(metadata: Readonly<Record<string, readonly string[]>>): string[] {
  const keys = Object.keys(metadata);
  if (keys.length === 0) return NO_KEYS;
  return keys.filter((k) => metadata[k].length > 0).sort();
}

export function addHolder(map: Map<string, Set<string>>, pattern: string, unit: string): void {
  const set = map.get(pattern);
  if (set) set.add(unit);
  else map.set(pattern, new Set([unit]));
}

export function removeHolder(map: Map<string, Set<string>>, pattern: string, unit: string): void {
  const set = map.get(pattern);
  if (!set) return;
  set.delete(unit);
  if (set.size === 0) map.delete(pattern);
}
