import type { ClusterApi } from '../api/types';
import type { FlotillaError } from '../errors';
import { clip, ErrorCode, isFlotillaError } from '../errors';
import type { Unit } from '../gen/flotilla/v1/flotilla';
import { UnitView } from '../gen/flotilla/v1/flotilla';
import { splitUnitName, validateUnitName } from '../unit';
import { fleetError } from './errors';
import { fleetPageOf } from './pagination';
import type { LaunchRequests } from './launched';
import type { UnitBody } from './request';
import { fleetPage, fleetUnit } from './schema';

/**
 * The /units resource over a ClusterApi, as fleet's api/units.go behaved. Each function returns
 * the HTTP status and body to send, or throws a FlotillaError (see errors.ts for the status).
 */
export interface Reply {
  status: number;
  body?: unknown;
}

function notFound(name: string): FlotillaError {
  return fleetError(404, ErrorCode.UnitNotFound, `unit ${clip(name)} does not exist`, {
    unit: name,
  });
}

/** The unit, or undefined when the cluster has none of that name. */
async function findUnit(api: ClusterApi, name: string): Promise<Unit | undefined> {
  try {
    return await api.getUnit({ name });
  } catch (err) {
    if (isFlotillaError(err, ErrorCode.UnitNotFound)) return undefined;
    throw err;
  }
}

export async function getUnit(
  api: ClusterApi,
  launches: LaunchRequests,
  name: string,
): Promise<Reply> {
  const u = await findUnit(api, name);
  if (!u) throw notFound(name);
  return { status: 200, body: fleetUnit(await launches.view(api, u)) };
}

export async function listUnits(
  api: ClusterApi,
  launches: LaunchRequests,
  limit: number,
  token: string,
): Promise<Reply> {
  const { items, next } = await fleetPageOf<Unit>(
    async (pageSize, after) => {
      const r = await api.listUnits({
        pageSize,
        pageToken: after,
        view: UnitView.UNIT_VIEW_FULL,
      });
      return { items: r.units, next: r.nextPageToken };
    },
    limit,
    token,
  );
  const units = await Promise.all(items.map((u) => launches.view(api, u)));
  return { status: 200, body: fleetPage('units', units.map(fleetUnit), next, true) };
}

export async function destroyUnit(
  api: ClusterApi,
  launches: LaunchRequests,
  name: string,
): Promise<Reply> {
  launches.forget(name);
  const r = await api.destroyUnits({ names: [name] });
  if (!r.destroyed.includes(name)) throw notFound(name);
  return { status: 204 };
}

/** fleet refused to activate a template ("foo@.service") with 400. */
function refuseTemplate(name: string, desiredState: string): void {
  if (desiredState !== 'inactive' && splitUnitName(name)?.isTemplate) {
    throw fleetError(400, ErrorCode.InvalidArgument, `cannot activate template "${clip(name)}"`, {
      unit: name,
    });
  }
}

/**
 * PUT /units/{name}: creates the unit (201) when it does not exist; replaces the file of an
 * existing unit when `options` are sent and differ from the stored ones (201: fleet v1.0's
 * api/units.go re-created it, with the sent desired state or `inactive` — fleetctl's
 * `--replace`); sets the desired state (204) of an existing unit whose options are absent or
 * the same.
 */
export async function setUnit(
  api: ClusterApi,
  launches: LaunchRequests,
  urlName: string,
  body: UnitBody,
): Promise<Reply> {
  const name = body.name || urlName;
  if (name !== urlName) {
    throw fleetError(
      400,
      ErrorCode.InvalidArgument,
      `name in URL "${clip(urlName)}" differs from unit name in request body "${clip(name)}"`,
      { field: 'name', unit: urlName },
    );
  }
  validateUnitName(name);
  const existing = await findUnit(api, name);
  if (!existing) {
    if (body.options.length === 0) {
      throw fleetError(
        409,
        ErrorCode.InvalidArgument,
        `unit ${clip(name)} does not exist and options field empty`,
        { field: 'options', unit: name },
      );
    }
    const target = body.desiredState || 'inactive';
    refuseTemplate(name, target);
    await noteTarget(api, launches, name, '', target);
    const r = await api.createUnits({
      units: [{ name, options: body.options, targetState: target }],
      replace: false,
    });
    // Created by someone else since getUnit: carry on as an update, as fleet's next PUT would.
    if (r.results[0]?.outcome === 'created') return { status: 201 };
  } else if (body.options.length > 0 && (await replaceFile(api, existing, body.options))) {
    // fleet re-created the unit with the sent desired state, empty meaning inactive: fleetctl's
    // --replace then waits for `inactive` before it loads or starts the new file.
    const target = body.desiredState || 'inactive';
    await noteTarget(api, launches, name, existing.targetMachine, target);
    await setTarget(api, name, target);
    return { status: 201 };
  }
  if (!body.desiredState) {
    throw fleetError(
      409,
      ErrorCode.InvalidArgument,
      `must provide desiredState to update existing unit ${clip(name)}`,
      { field: 'desiredState', unit: name },
    );
  }
  await noteTarget(api, launches, name, existing?.targetMachine ?? '', body.desiredState);
  await setTarget(api, name, body.desiredState);
  return { status: 204 };
}

/** Remembers a launch request (what the unit's machine reports before it), forgets others. */
async function noteTarget(
  api: ClusterApi,
  launches: LaunchRequests,
  name: string,
  machine: string,
  target: string,
): Promise<void> {
  if (target === 'launched') await launches.noteLaunch(api, name, machine);
  else launches.forget(name);
}

async function setTarget(api: ClusterApi, name: string, desiredState: string): Promise<void> {
  refuseTemplate(name, desiredState);
  try {
    await api.setTargetStates({ names: [name], targetState: desiredState });
  } catch (err) {
    // Destroyed between the two calls.
    if (isFlotillaError(err, ErrorCode.UnitNotFound)) throw notFound(name);
    throw err;
  }
}

/**
 * Replaces the unit's file with `options` when they differ from the stored ones (the engine
 * compares the units' hashes); true when it did.
 */
async function replaceFile(
  api: ClusterApi,
  existing: Unit,
  options: UnitBody['options'],
): Promise<boolean> {
  const r = await api.createUnits({
    units: [{ name: existing.name, options, targetState: existing.targetState }],
    replace: true,
  });
  const outcome = r.results[0]?.outcome;
  // Destroyed since getUnit: created again, with the desired state it had.
  return outcome === 'replaced' || outcome === 'created';
}
