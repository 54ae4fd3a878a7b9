import type { ClusterApi } from '../api/types';
import { ErrorCode, isFlotillaError } from '../errors';
import type { Machine, Unit, UnitState } from '../gen/flotilla/v1/flotilla';
import { UnitView } from '../gen/flotilla/v1/flotilla';
import { machineFullLegend } from './format';

/** Page size for ListUnits/ListUnitStates: 3,000 units are three calls, not 3,000. */
export const PAGE_SIZE = 1000;

/** Up to this many names are looked up one GetUnit each (in parallel); more list every unit. */
export const DIRECT_LOOKUP_MAX = 20;

/** Every unit; `basic` leaves out their options (much less to send and decode). */
export async function listAllUnits(api: ClusterApi, basic = false): Promise<Unit[]> {
  const out: Unit[] = [];
  const view = basic ? UnitView.UNIT_VIEW_BASIC : UnitView.UNIT_VIEW_FULL;
  let pageToken = '';
  do {
    const res = await api.listUnits({ pageSize: PAGE_SIZE, pageToken, view });
    out.push(...res.units);
    pageToken = res.nextPageToken;
  } while (pageToken !== '');
  return out;
}

export async function listAllUnitStates(api: ClusterApi): Promise<UnitState[]> {
  const out: UnitState[] = [];
  let pageToken = '';
  do {
    const res = await api.listUnitStates({ pageSize: PAGE_SIZE, pageToken });
    out.push(...res.states);
    pageToken = res.nextPageToken;
  } while (pageToken !== '');
  return out;
}

/** GetUnit, with "not found" as undefined. */
export async function getUnitOrUndefined(api: ClusterApi, name: string): Promise<Unit | undefined> {
  try {
    return await api.getUnit({ name });
  } catch (err) {
    if (isFlotillaError(err, ErrorCode.UnitNotFound)) return undefined;
    throw err;
  }
}

/**
 * The units among `names` that exist, by name. A few names cost one GetUnit each; many cost
 * one paged listing, so the number of calls never grows with the number of arguments.
 */
export async function fetchUnits(
  api: ClusterApi,
  names: readonly string[],
): Promise<Map<string, Unit>> {
  const out = new Map<string, Unit>();
  if (names.length === 0) return out;
  if (names.length <= DIRECT_LOOKUP_MAX) {
    const found = await Promise.all(names.map((n) => getUnitOrUndefined(api, n)));
    for (const u of found) if (u) out.set(u.name, u);
    return out;
  }
  const wanted = new Set(names);
  for (const u of await listAllUnits(api)) if (wanted.has(u.name)) out.set(u.name, u);
  return out;
}

/** fleetctl's findUnits: the named units that exist, in argument order; unknown names skipped. */
export async function findUnits(api: ClusterApi, names: readonly string[]): Promise<Unit[]> {
  const found = await fetchUnits(api, names);
  return names.flatMap((n) => found.get(n) ?? []);
}

/** ListMachines once per invocation (fleetctl's cachedMachineState). */
export class MachineCache {
  private machines?: Promise<Map<string, Machine>>;

  constructor(private readonly api: ClusterApi) {}

  all(): Promise<Map<string, Machine>> {
    this.machines ??= this.api
      .listMachines({})
      .then((r) => new Map(r.machines.map((m) => [m.id, m])));
    return this.machines;
  }

  /** The legend of a machine; without its IP when the machine is not (or no longer) listed. */
  async legend(id: string, full: boolean): Promise<string> {
    const m = (await this.all()).get(id);
    return machineFullLegend({ id, ip: m?.ip }, full);
  }
}
