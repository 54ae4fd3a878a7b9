import type { ClusterApi } from '../api/types';
import { unitStateRows } from '../api/unit-states';
import type { Unit, UnitState } from '../gen/flotilla/v1/flotilla';

/**
 * fleet's `currentState: launched` for a unit that was started and did not keep running.
 *
 * fleet's agent reported a unit `launched` once it had started it, whatever the unit did next;
 * fleetctl's blocking `start` waits for `launched`, then reads systemd's state from `/state`
 * and fails at once with "Failed to find an active unit" when the unit is not active. Flotilla's
 * STATE column is `launched` only while the unit runs, so a unit that failed
 * (`ExecStart=/bin/false`) or exited 0 at once (`Type=oneshot`, `/bin/true`) stayed `loaded`
 * and fleetctl waited until `--block-attempts` ran out, or for ever.
 *
 * Here a unit reads `launched` through the fleet API when a launch was requested through this
 * API and, since that request, the agent of the machine the unit is placed on has reported a
 * start of the unit with its current file: its `starts` count (start ops applied, see
 * UnitRuntimeState) differs from the one it reported at the request. An agent from before that
 * count reports none; then a `failed` report new since the request counts (the agent only sees
 * a unit fail after starting it). A unit stopped and started again reads `launched` only once
 * it is started anew.
 */
export function startedSinceRequest(u: Unit, row: UnitState | undefined, before: Before): boolean {
  if (u.targetState !== 'launched' || u.currentState === 'launched') return false;
  if (row === undefined || row.machineId !== u.targetMachine || row.hash !== u.hash) return false;
  if (row.starts > 0) return row.starts !== before.starts;
  return row.activeState === 'failed' && rowKey(row) !== before.key;
}

/** What the placed machine reported when the launch was requested. */
export interface Before {
  key: string;
  /** Its `starts` count (0: none reported). */
  starts: number;
}

/** What identifies a reported state: a change of any part is a new report. */
function rowKey(row: UnitState | undefined): string {
  if (!row) return '';
  return [row.machineId, row.hash, row.loadState, row.activeState, row.subState].join('\u0000');
}

/** At most this many launch requests are remembered (the oldest is forgotten first). */
const MAX_REMEMBERED = 10_000;

/**
 * The launch requests this fleet API served, with the state the unit's placed machine
 * reported at the time: what `startedSinceRequest` compares with.
 */
export class LaunchRequests {
  private readonly before = new Map<string, Before>();

  /** Before a write that makes the unit's desired state `launched`. */
  async noteLaunch(api: ClusterApi, name: string, machine: string): Promise<void> {
    const row = machine
      ? (await unitStateRows(api, name)).find((s) => s.machineId === machine)
      : undefined;
    this.before.delete(name);
    this.before.set(name, { key: rowKey(row), starts: row?.starts ?? 0 });
    if (this.before.size > MAX_REMEMBERED) {
      this.before.delete(this.before.keys().next().value as string);
    }
  }

  /** The unit's desired state was set to something else, or it was destroyed. */
  forget(name: string): void {
    this.before.delete(name);
  }

  /** The unit as fleet showed it: `launched` once started since a launch request. */
  async view(api: ClusterApi, u: Unit): Promise<Unit> {
    const before = this.before.get(u.name);
    if (before === undefined || u.targetState !== 'launched' || u.currentState === 'launched')
      return u;
    const row = (await unitStateRows(api, u.name)).find((s) => s.machineId === u.targetMachine);
    return startedSinceRequest(u, row, before) ? { ...u, currentState: 'launched' } : u;
  }
}
