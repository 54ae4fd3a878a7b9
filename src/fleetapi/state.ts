import type { ClusterApi } from '../api/types';
import { clip, ErrorCode } from '../errors';
import type { UnitState } from '../gen/flotilla/v1/flotilla';
import { fleetError } from './errors';
import { unitStateRows } from '../api/unit-states';
import type { PageSource } from './pagination';
import { fleetPageOf } from './pagination';
import { fleetPage, fleetUnitState } from './schema';
import type { Reply } from './units';

/** ListUnitStates as a page source: one row per (unit, machine) that reported. */
function stateSource(api: ClusterApi): PageSource<UnitState> {
  return async (pageSize, after) => {
    const r = await api.listUnitStates({ pageSize, pageToken: after });
    return { items: r.states, next: r.nextPageToken };
  };
}

/** GET /state, optionally filtered by `machineID` and `unitName` (the first value of each, as fleet). */
export async function listStates(
  api: ClusterApi,
  limit: number,
  token: string,
  filter: { machineID: string; unitName: string },
): Promise<Reply> {
  const { items, next } = await fleetPageOf(stateSource(api), limit, token, (s) => {
    if (filter.machineID && s.machineId !== filter.machineID) return false;
    if (filter.unitName && s.name !== filter.unitName) return false;
    return true;
  });
  return { status: 200, body: fleetPage('states', items.map(fleetUnitState), next, true) };
}

/**
 * GET /state/{name} (in fleet's discovery document): the unit's state; for a unit reported by
 * several machines (a global unit) the first by machine ID.
 */
export async function getState(api: ClusterApi, name: string): Promise<Reply> {
  const [found] = await unitStateRows(api, name);
  if (found) return { status: 200, body: fleetUnitState(found) };
  throw fleetError(404, ErrorCode.UnitNotFound, `unit state of ${clip(name)} does not exist`, {
    unit: name,
  });
}
