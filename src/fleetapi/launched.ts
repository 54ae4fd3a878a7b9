import type { ClusterApi } from '../api/types';
import { encodePageToken } from '../engine/requests';
import type { Unit, UnitState } from '../gen/flotilla/v1/flotilla';

/**
 * fleet's `currentState: launched` for a unit that was started and then failed.
 *
 * fleet's agent reported a unit `launched` once it had started it, whatever the unit did next;
 * fleetctl's blocking `start` waits for `launched`, then reads systemd's state and fails at once
 * with "Failed to find an active unit" when the unit is not active. Flotilla's STATE column is
 * `launched` only while the unit runs, so a unit whose process failed (`ExecStart=/bin/false`)
 * stayed `loaded` and fleetctl waited forever.
 *
 * Here a unit reads `launched` through the fleet API when a launch was requested through this
 * API and, since that request, the machine the unit is placed on reports it `failed` with its
 * current file: the agent started it (a unit is only seen failed after a start) and it failed.
 * A failed state reported before the request does not count — a unit that failed, is stopped
 * and started again reads `launched` only once it runs or fails anew.
 *
 * Not covered: a unit that exits 0 (an `inactive` unit looks the same whether it ran or not),
 * and one that fails again with exactly the state it failed with before the request (the
 * engine keeps no new report of it); fleetctl then waits until `--block-attempts`.
 */
export function startedAndFailed(u: Unit, row: UnitState | undefined, before: string): boolean {
  return (
    u.targetState === 'launched' &&
    u.currentState !== 'launched' &&
    row !== undefined &&
    row.machineId === u.targetMachine &&
    row.hash === u.hash &&
    row.activeState === 'failed' &&
    rowKey(row) !== before
  );
}

/** What identifies a reported state: a change of any part is a new report. */
function rowKey(row: UnitState | undefined): string {
  if (!row) return '';
  return [row.machineId, row.hash, row.loadState, row.activeState, row.subState].join('\u0000');
}

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

/** At most this many launch requests are remembered (the oldest is forgotten first). */
const MAX_REMEMBERED = 10_000;

/**
 * The launch requests this fleet API served, with the state the unit's placed machine
 * reported at the time: what `startedAndFailed` compares with.
 */
export class LaunchRequests {
  private readonly before = new Map<string, string>();

  /** Before a write that makes the unit's desired state `launched`. */
  async noteLaunch(api: ClusterApi, name: string, machine: string): Promise<void> {
    const row = machine
      ? (await unitStateRows(api, name)).find((s) => s.machineId === machine)
      : undefined;
    this.before.delete(name);
    this.before.set(name, rowKey(row));
    if (this.before.size > MAX_REMEMBERED) {
      this.before.delete(this.before.keys().next().value as string);
    }
  }

  /** The unit's desired state was set to something else, or it was destroyed. */
  forget(name: string): void {
    this.before.delete(name);
  }

  /** The unit as fleet showed it: `launched` once started and failed since a launch request. */
  async view(api: ClusterApi, u: Unit): Promise<Unit> {
    const before = this.before.get(u.name);
    if (before === undefined || u.targetState !== 'launched' || u.currentState === 'launched')
      return u;
    const row = (await unitStateRows(api, u.name)).find((s) => s.machineId === u.targetMachine);
    return startedAndFailed(u, row, before) ? { ...u, currentState: 'launched' } : u;
  }
}
