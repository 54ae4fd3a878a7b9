import type { Unit, UnitFailure } from '../gen/flotilla/v1/flotilla';
import { fetchUnits, MachineCache } from './cluster-data';
import type { Context } from './command';
import { blockAttempts, err, out, waitIO } from './command';
import { flagBool } from './args';
import { CliError, errorMessage } from './errors';
import { isTemplateName, resolveUnits, templatesNeeded, uniqueNames } from './units';
import type { CreatingCommand } from './units';
import { startCounts, waitForUnitStates } from './wait';
import type { TargetState } from './wait';

/**
 * The shared path of submit, load and start (fleetctl's lazyCreateUnits followed by
 * setTargetStateOfUnits and tryWaitForUnitStates), with a bounded number of calls whatever
 * the number of units: one lookup (GetUnit each, or one paged listing), one CreateUnits for
 * new units and one for replacements, one SetTargetStates, then the wait.
 */

export interface Created {
  /** Every unit named by the arguments, in order. */
  names: string[];
  /** Their state in the cluster after creation. */
  units: Map<string, Unit>;
  /** Units replaced by --replace (waited on by start/load even if already at the target). */
  replaced: Set<string>;
}

/** Creates (or replaces) the units named by the arguments; prints fleetctl's lines. */
export async function lazyCreateUnits(ctx: Context, command: CreatingCommand): Promise<Created> {
  const api = ctx.api();
  const replace = flagBool(ctx.parsed, 'replace');
  const names = uniqueNames(ctx.args);
  const cluster = await fetchUnits(api, names);
  const templates = templatesNeeded(ctx.args, cluster, ctx.io.fileExists);
  for (const [name, u] of await fetchUnits(api, templates)) cluster.set(name, u);

  const plan = resolveUnits({
    args: ctx.args,
    command,
    replace,
    cluster,
    read: ctx.io.readUnitFile,
  });
  for (const l of plan.stdout) out(ctx, l);
  for (const l of plan.stderr) err(ctx, l);

  const replaced = new Set<string>();
  if (plan.create.length > 0) {
    const res = await api.createUnits({ units: plan.create, replace: false });
    for (const r of res.results) {
      if (r.outcome === 'created') out(ctx, `Unit ${r.name} inactive`);
      else if (r.outcome === 'differs') {
        // Created by someone else between our lookup and our write, with other content.
        err(
          ctx,
          `WARNING: Unit ${r.name} in registry differs from local unit file. Add --replace to override.`,
        );
      }
    }
  }
  if (plan.replace.length > 0) {
    const res = await api.createUnits({ units: plan.replace, replace: true });
    for (const r of res.results) if (r.outcome === 'replaced') replaced.add(r.name);
  }
  const units =
    plan.create.length > 0 || plan.replace.length > 0 ? await fetchUnits(api, names) : cluster;
  return { names: plan.names, units, replaced };
}

/** Runs lazyCreateUnits with fleetctl's error prefix. */
export async function createOrReport(
  ctx: Context,
  command: CreatingCommand,
): Promise<Created | undefined> {
  try {
    return await lazyCreateUnits(ctx, command);
  } catch (e) {
    err(ctx, `Error creating units: ${errorMessage(e)}`);
    return undefined;
  }
}

const VERB_ING: Record<string, string> = { load: 'loading', start: 'starting' };

/**
 * load/start: create what is missing, set the target state of the units not already there,
 * print `Triggered global unit x start` for global units and wait for the others (or print
 * `Triggered unit x start` once with --no-block).
 */
export async function createAndSetTarget(
  ctx: Context,
  verb: 'load' | 'start',
  target: TargetState,
): Promise<number> {
  if (ctx.args.length === 0) throw new CliError('No units given');
  const created = await createOrReport(ctx, verb);
  if (!created) return 1;
  const api = ctx.api();

  for (const name of created.names) {
    if (isTemplateName(name)) {
      err(ctx, `Error ${VERB_ING[verb]} units: cannot activate template "${name}"`);
      return 1;
    }
  }
  const triggered = created.names.filter((n) => created.units.get(n)?.targetState !== target);
  const isTriggered = new Set(triggered);
  let startsBefore: Map<string, number> | undefined;
  try {
    // What the agents had started before: a unit started now that runs and exits (a oneshot)
    // ends at loaded, and is done once its count went up (waitForUnitStates).
    if (target === 'launched' && triggered.length > 0 && blockAttempts(ctx) >= 0)
      startsBefore = await startCounts(api, triggered);
    if (triggered.length > 0) await api.setTargetStates({ names: triggered, targetState: target });
  } catch (e) {
    err(ctx, `Error ${VERB_ING[verb]} units: ${errorMessage(e)}`);
    return 1;
  }

  const waitFor: string[] = [];
  for (const name of created.names) {
    const wasTriggered = isTriggered.has(name);
    if (!wasTriggered && !created.replaced.has(name)) continue;
    if (created.units.get(name)?.global) {
      if (wasTriggered) out(ctx, `Triggered global unit ${name} ${verb}`);
    } else waitFor.push(name);
  }
  const failuresBefore = new Map(created.names.map((n) => [n, created.units.get(n)?.lastFailure]));
  return waitOrTrigger(ctx, waitFor, verb, target, failuresBefore, startsBefore);
}

/** fleetctl's tryWaitForUnitStates: --no-block prints `Triggered unit x verb` (once). */
export async function waitOrTrigger(
  ctx: Context,
  names: readonly string[],
  verb: string,
  target: TargetState,
  failuresBefore?: ReadonlyMap<string, UnitFailure | undefined>,
  startsBefore?: ReadonlyMap<string, number>,
): Promise<number> {
  const attempts = blockAttempts(ctx);
  if (attempts < 0) {
    for (const n of names) out(ctx, `Triggered unit ${n} ${verb}`);
    return 0;
  }
  const api = ctx.api();
  const errors = await waitForUnitStates({
    api,
    names,
    target,
    attempts,
    machines: new MachineCache(api),
    io: waitIO(ctx),
    signal: ctx.signal,
    failuresBefore,
    startsBefore,
  });
  for (const e of errors) err(ctx, `Error waiting for units: ${e}`);
  return errors.length > 0 ? 1 : 0;
}
