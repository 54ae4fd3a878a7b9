/** Trivial unit specs for the API, and chunked API calls (gRPC messages stay small). */
import type { ClusterApi } from '../../src/api/types';
import type { UnitSpec } from '../../src/gen/flotilla/v1/flotilla';
import { UnitView } from '../../src/gen/flotilla/v1/flotilla';

export function unitNames(prefix: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${from + i}.service`);
}

/** A unit fleet's benchmark would have used: one long sleep, nothing else. */
export function trivialSpec(name: string, targetState = ''): UnitSpec {
  return {
    name,
    options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 100000' }],
    targetState,
  };
}

export function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Destroys units in chunks (agents stop and unload them). */
export async function destroyAll(api: ClusterApi, names: string[], chunk = 5000): Promise<void> {
  for (const c of chunks(names, chunk)) await api.destroyUnits({ names: c });
}

/** Every unit name in the cluster (paged ListUnits, the BASIC view list-unit-files uses). */
export async function listAllUnitNames(api: ClusterApi, pageSize = 10_000): Promise<string[]> {
  const names: string[] = [];
  let pageToken = '';
  do {
    const r = await api.listUnits({ pageSize, pageToken, view: UnitView.UNIT_VIEW_BASIC });
    for (const u of r.units) names.push(u.name);
    pageToken = r.nextPageToken;
  } while (pageToken !== '');
  return names;
}
