import type { Unit } from '../gen/flotilla/v1/flotilla';
import { findUnits } from './cluster-data';
import type { Context } from './command';
import { err, out } from './command';
import { flagBool } from './args';
import { CliError, errorMessage } from './errors';
import { waitOrTrigger } from './lifecycle';
import { uniqueNames } from './units';
import type { TargetState } from './wait';

export interface Transition {
  verb: 'stop' | 'unload';
  target: TargetState;
  /** A unit whose target state is this cannot make the transition (`Unable to stop unit x…`). */
  refuseFrom?: TargetState;
  /** `Successfully stopped units` — printed on stderr with the list once all are there. */
  summary: string;
}

/** Looks up the named units; prints `Units not found in registry` when none exists. */
export async function findNamedUnits(ctx: Context): Promise<Unit[] | undefined> {
  if (ctx.args.length === 0) throw new CliError('No units given');
  let units: Unit[];
  try {
    units = await findUnits(ctx.api(), uniqueNames(ctx.args));
  } catch (e) {
    err(ctx, `Error retrieving units from repository: ${errorMessage(e)}`);
    throw new CliError('', 1);
  }
  if (units.length === 0) {
    err(ctx, 'Units not found in registry');
    return undefined;
  }
  return units;
}

/**
 * stop and unload (fleetctl's runStopUnit/runUnloadUnit): names not in the cluster are
 * skipped; global units are triggered and never waited on; the others get the new target
 * state and are waited on.
 *
 * fleetctl decided from the *current* state, so a unit still starting (target launched,
 * current inactive) could not be stopped, and one still loading was skipped by unload and
 * then came up anyway. Flotilla decides from the target state and waits on every unit not
 * yet at the new state.
 */
export async function changeTargetState(ctx: Context, t: Transition): Promise<number> {
  const units = await findNamedUnits(ctx);
  if (!units) return 0;
  if (t.refuseFrom !== undefined) {
    for (const u of units) {
      if (!u.global && (u.targetState || 'inactive') === t.refuseFrom) {
        err(ctx, `Unable to ${t.verb} unit ${u.name} in state ${t.refuseFrom}`);
        return 1;
      }
    }
  }
  const trigger = units.filter((u) => u.targetState !== t.target);
  if (trigger.length > 0) {
    try {
      await ctx.api().setTargetStates({ names: trigger.map((u) => u.name), targetState: t.target });
    } catch (e) {
      err(ctx, `Error setting target state of units: ${errorMessage(e)}`);
      return 1;
    }
  }
  const triggered = new Set(trigger.map((u) => u.name));
  const wait: string[] = [];
  const acted: string[] = [];
  for (const u of units) {
    if (u.global) {
      if (triggered.has(u.name)) {
        out(ctx, `Triggered global unit ${u.name} ${t.verb}`);
        acted.push(u.name);
      }
    } else if (triggered.has(u.name) || u.currentState !== t.target) {
      wait.push(u.name);
      acted.push(u.name);
    }
  }
  const code = await waitOrTrigger(ctx, wait, t.verb, t.target);
  if (code === 0 && wait.length > 0 && !flagBool(ctx.parsed, 'no-block')) {
    err(ctx, `${t.summary} [${acted.join(' ')}].`);
  }
  return code;
}
