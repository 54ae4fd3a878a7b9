import type { ClusterApi } from '../api/types';
import type { Unit, UnitFailure, UnitState } from '../gen/flotilla/v1/flotilla';
import { unitStateRows } from '../api/unit-states';
import { DIRECT_LOOKUP_MAX, fetchUnits, listAllUnitStates } from './cluster-data';
import { CliError } from './errors';
import type { MachineCache } from './cluster-data';
import { Progress } from './progress';

/**
 * Blocking until units reach a state (fleetctl's tryWaitForUnitStates / waitForUnitStates).
 *
 * fleetctl polled every unit separately every 500 ms from one goroutine per unit. Here one
 * loop checks all pending units at once (a few GetUnit calls, or one paged listing for many
 * units), re-checks as soon as the Watch stream reports an event about a pending unit, and
 * otherwise polls with a short backoff. `--block-attempts=N` keeps fleetctl's meaning of N
 * attempts of ~2 s: the wait gives up N × 2 s after it started.
 */

/** One attempt of --block-attempts. */
export const ATTEMPT_MS = 2000;
const FIRST_POLL_MS = 100;
const MAX_POLL_MS = 1000;
/** After a check, the next one waits at least this long even when events keep arriving. */
const MIN_RECHECK_MS = 50;

export interface WaitIO {
  /** A success line for stdout. */
  out: (line: string) => void;
  /** Raw stderr writes (progress). */
  err: (s: string) => void;
  stderrIsTTY: boolean;
}

export interface Waiter<T> {
  api: ClusterApi;
  names: readonly string[];
  /** 0: wait forever. */
  attempts: number;
  /** Current values of the pending units (absent: not found). */
  fetch: (pending: readonly string[]) => Promise<Map<string, T>>;
  reached: (name: string, value: T | undefined) => boolean;
  /**
   * Why waiting for a unit is pointless (it failed; it cannot be placed), checked before
   * `reached`: the unit stops being waited on and the message is returned with the timeouts.
   */
  gaveUp?: (name: string, value: T | undefined) => Promise<string | undefined>;
  /** The line to print when a unit reaches the state (none when undefined). */
  line?: (name: string, value: T | undefined) => Promise<string | undefined>;
  timeoutMessage: (name: string) => string;
  /** For the progress line: `launched`, `stopped`… */
  what: string;
  io: WaitIO;
  attemptMs?: number;
  signal?: AbortSignal;
}

function sleep(ms: number, wake: { fn?: () => void }, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      wake.fn = undefined;
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    wake.fn = done;
    signal?.addEventListener('abort', done);
  });
}

/** Waits until every name reached its state; returns one error message per unit that did not. */
export async function waitUntil<T>(w: Waiter<T>): Promise<string[]> {
  const pending = [...w.names];
  if (pending.length === 0) return [];
  const attemptMs = w.attemptMs ?? ATTEMPT_MS;
  const start = Date.now();
  const deadline = w.attempts > 0 ? start + w.attempts * attemptMs : Infinity;
  const progress = new Progress({
    write: w.io.err,
    isTTY: w.io.stderrIsTTY,
    total: pending.length,
    what: w.what,
  });

  // Wake-ups from the event stream: any event about a pending unit triggers a re-check.
  const watching = new AbortController();
  const onOuterAbort = (): void => watching.abort();
  w.signal?.addEventListener('abort', onOuterAbort);
  const wake: { fn?: () => void } = {};
  let dirty = false;
  const pendingSet = new Set(pending);
  const gaveUp: string[] = [];
  void (async () => {
    try {
      for await (const ev of w.api.watch({ fromIndex: 0, types: [] }, watching.signal)) {
        if (pendingSet.has(ev.unit)) {
          dirty = true;
          wake.fn?.();
        }
      }
    } catch {
      // No watch (an older server, a follower without it): polling alone still works.
    }
  })();

  try {
    let pollMs = FIRST_POLL_MS;
    for (;;) {
      dirty = false;
      const values = await w.fetch(pending);
      const lines: string[] = [];
      for (let i = 0; i < pending.length;) {
        const name = pending[i];
        const v = values.get(name);
        const why = await w.gaveUp?.(name, v);
        if (why !== undefined) {
          pending.splice(i, 1);
          pendingSet.delete(name);
          gaveUp.push(why);
        } else if (w.reached(name, v)) {
          pending.splice(i, 1);
          pendingSet.delete(name);
          const line = await w.line?.(name, v);
          if (line !== undefined) lines.push(line);
        } else i++;
      }
      if (lines.length > 0) {
        progress.clear();
        for (const l of lines) w.io.out(l);
      }
      progress.update(w.names.length - pending.length);
      if (pending.length === 0 || w.signal?.aborted) break;
      const now = Date.now();
      if (now >= deadline) break;
      if (!dirty) {
        await sleep(Math.min(pollMs, deadline - now), wake, w.signal);
        pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
      }
      await sleep(MIN_RECHECK_MS, {}, w.signal);
    }
  } finally {
    progress.clear();
    watching.abort();
    w.signal?.removeEventListener('abort', onOuterAbort);
  }
  // Interrupted (Ctrl-C): not a timeout; exit like an interrupted shell command.
  if (pending.length > 0 && w.signal?.aborted) throw new CliError('', 130);
  return [...gaveUp, ...pending.map(w.timeoutMessage)];
}

export type TargetState = 'inactive' | 'loaded' | 'launched';

/** How long a unit may stay unplaceable before a blocking start gives up on it, ms. */
export const UNPLACEABLE_MS = 5000;

const sameFailure = (a: UnitFailure | undefined, b: UnitFailure | undefined): boolean =>
  a?.timeMs === b?.timeMs && a?.machineId === b?.machineId;

/** `exit-code, exit status 3`, `signal`… */
export function failureText(f: UnitFailure): string {
  return `${f.result || 'failed'}${f.hasExitStatus ? `, exit status ${f.exitStatus}` : ''}`;
}

/**
 * Why a unit being started, loaded or stopped will not get there: it failed after the wait
 * began (a failure other than the one it had before, `before`; start only), or the scheduler
 * has said for `UNPLACEABLE_MS` why it cannot place it — a unit that no machine takes never
 * becomes `loaded` either, so `load` and `stop` of it would otherwise wait for ever.
 */
export function startGaveUp(
  before: ReadonlyMap<string, UnitFailure | undefined> | undefined,
  machines: MachineCache,
  now: () => number = Date.now,
): (name: string, u: Unit | undefined) => Promise<string | undefined> {
  const unplaceableSince = new Map<string, number>();
  return async (name, u) => {
    if (!u) return undefined;
    const f = u.lastFailure;
    if (before && f && u.phase === 'failed' && !sameFailure(f, before.get(name)))
      return `unit ${name} failed on ${await machines.legend(f.machineId, false)}: ${failureText(f)}`;
    if (u.phase !== 'waiting' || !u.reason) {
      unplaceableSince.delete(name);
      return undefined;
    }
    const since = unplaceableSince.get(name) ?? now();
    unplaceableSince.set(name, since);
    if (now() - since < UNPLACEABLE_MS) return undefined;
    return `unit ${name} cannot be placed: ${u.reason}`;
  };
}

/**
 * Waits until each unit's current state (fleet's STATE column) is `target`, printing
 * `Unit hello.service launched on 32d3a898.../10.0.0.1` (or `Unit x inactive` when the unit
 * has no machine) as each gets there.
 */
export function waitForUnitStates(opts: {
  api: ClusterApi;
  names: readonly string[];
  target: TargetState;
  attempts: number;
  machines: MachineCache;
  io: WaitIO;
  attemptMs?: number;
  signal?: AbortSignal;
  /** With `launched`: each unit's last failure before the wait (a new one ends its wait). */
  failuresBefore?: ReadonlyMap<string, UnitFailure | undefined>;
  /**
   * With `launched`: each unit's start count before its target was set (`startCounts`). A
   * unit its agent has started since, and that is now loaded and not running, ran and exited
   * (a oneshot, a command that finished): it was launched, as fleet's agent would say.
   */
  startsBefore?: ReadonlyMap<string, number>;
}): Promise<string[]> {
  const startsBefore = opts.target === 'launched' ? opts.startsBefore : undefined;
  let startsNow = new Map<string, number>();
  const ranAndExited = (name: string, u: Unit | undefined): boolean =>
    startsBefore !== undefined &&
    u?.currentState === 'loaded' &&
    u.targetState === 'launched' &&
    (startsNow.get(name) ?? 0) > (startsBefore.get(name) ?? 0);
  return waitUntil<Unit>({
    gaveUp:
      opts.target === 'inactive'
        ? undefined
        : startGaveUp(opts.target === 'launched' ? opts.failuresBefore : undefined, opts.machines),
    api: opts.api,
    names: opts.names,
    attempts: opts.attempts,
    attemptMs: opts.attemptMs,
    signal: opts.signal,
    io: opts.io,
    what: opts.target,
    fetch: async (pending) => {
      const units = await fetchUnits(opts.api, pending);
      // Start counts are listed only while a unit being started sits at loaded (rare), and
      // the units read again after them: a count that went up is then older than the state
      // read, so a start that failed shows as failed, not as loaded.
      if (!startsBefore || !pending.some((n) => units.get(n)?.currentState === 'loaded'))
        return units;
      startsNow = await startCounts(opts.api, pending);
      return fetchUnits(opts.api, pending);
    },
    reached: (name, u) =>
      (u !== undefined && u.currentState === opts.target) || ranAndExited(name, u),
    line: async (name, u) => {
      const state = ranAndExited(name, u) ? 'launched' : (u?.currentState ?? opts.target);
      if (!u?.targetMachine) return `Unit ${name} ${state}`;
      return `Unit ${name} ${state} on ${await opts.machines.legend(u.targetMachine, false)}`;
    },
    timeoutMessage: (name) => `timed out waiting for unit ${name} to report state ${opts.target}`,
  });
}

/**
 * How many times the agents have started each of `names` (UnitState.starts, summed over
 * machines), for `waitForUnitStates`' startsBefore.
 */
export async function startCounts(
  api: ClusterApi,
  names: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const add = (s: UnitState): void => void out.set(s.name, (out.get(s.name) ?? 0) + s.starts);
  if (names.length <= DIRECT_LOOKUP_MAX) {
    const rows = await Promise.all(names.map((n) => unitStateRows(api, n)));
    for (const r of rows) r.forEach(add);
    return out;
  }
  const wanted = new Set(names);
  for (const s of await listAllUnitStates(api)) if (wanted.has(s.name)) add(s);
  return out;
}

/** Waits until the named units are gone from the cluster (destroy). */
export function waitForUnitsGone(opts: {
  api: ClusterApi;
  names: readonly string[];
  attempts: number;
  io: WaitIO;
  attemptMs?: number;
}): Promise<string[]> {
  return waitUntil<Unit>({
    ...opts,
    what: 'destroyed',
    fetch: (pending) => fetchUnits(opts.api, pending),
    reached: (_name, u) => u === undefined,
    timeoutMessage: (name) => `timed out waiting for unit ${name} to be destroyed`,
  });
}

const RUNNING = new Set(['active', 'activating', 'reloading', 'deactivating']);

/**
 * Waits on a global unit's rows in ListUnitStates (one per machine): `loaded` when none is
 * running any more, `launched` when every row is active. A global unit has no single current
 * state, which is why fleetctl never waited on one (and its restart did nothing for them).
 */
export function waitForGlobalUnits(opts: {
  api: ClusterApi;
  names: readonly string[];
  target: 'loaded' | 'launched';
  attempts: number;
  io: WaitIO;
  attemptMs?: number;
  /**
   * With `launched`: each row's start count before the target was set (`globalStartCounts`).
   * A row its agent started since that is no longer running ran and exited (a oneshot): done;
   * one that failed ends the wait with an error naming the machine.
   */
  startsBefore?: ReadonlyMap<string, number>;
}): Promise<string[]> {
  const before = opts.target === 'launched' ? opts.startsBefore : undefined;
  const startedSince = (r: UnitState): boolean =>
    before !== undefined && r.starts > (before.get(rowKey(r)) ?? 0);
  return waitUntil<UnitState[]>({
    ...opts,
    what: opts.target,
    gaveUp: async (name, rows) => {
      const failed = (rows ?? []).find((r) => r.activeState === 'failed' && startedSince(r));
      return failed && `global unit ${name} failed on ${failed.machineId}`;
    },
    fetch: async (pending) => {
      const wanted = new Set(pending);
      const out = new Map<string, UnitState[]>(pending.map((n) => [n, []]));
      for (const s of await listAllUnitStates(opts.api)) {
        if (wanted.has(s.name)) out.get(s.name)!.push(s);
      }
      return out;
    },
    reached: (_name, rows) =>
      opts.target === 'loaded'
        ? (rows ?? []).every((r) => !RUNNING.has(r.activeState))
        : (rows ?? []).every(
            (r) => r.activeState === 'active' || (startedSince(r) && !RUNNING.has(r.activeState)),
          ),
    line: async (name, rows) =>
      `Global unit ${name} ${opts.target} on ${rows?.length ?? 0} machine${rows?.length === 1 ? '' : 's'}`,
    timeoutMessage: (name) =>
      `timed out waiting for global unit ${name} to report state ${opts.target}`,
  });
}

/** A row of ListUnitStates: its unit and machine. */
function rowKey(r: UnitState): string {
  return `${r.name}\u0000${r.machineId}`;
}

/** Each row's start count for the global units `names` (for `waitForGlobalUnits`). */
export async function globalStartCounts(
  api: ClusterApi,
  names: readonly string[],
): Promise<Map<string, number>> {
  const wanted = new Set(names);
  const out = new Map<string, number>();
  for (const s of await listAllUnitStates(api))
    if (wanted.has(s.name)) out.set(rowKey(s), s.starts);
  return out;
}
