import { encodePageToken } from './page-token';
import type { UnitState } from '../gen/flotilla/v1/flotilla';
import type { ClusterApi } from './types';

/**
 * The rows of one unit in ListUnitStates, by machine. The engine's cursor is
 * `<unit>\u0000<machine>`, so the unit's name as a cursor starts the page at its first row.
 */
export async function unitStateRows(api: ClusterApi, name: string): Promise<UnitState[]> {
  const out: UnitState[] = [];
  let after = encodePageToken('states', name);
  for (;;) {
    const page = await api.listUnitStates({ pageSize: 64, pageToken: after });
    for (const s of page.states) {
      if (s.name !== name) return out;
      out.push(s);
    }
    if (!page.nextPageToken) return out;
    after = page.nextPageToken;
  }
}
