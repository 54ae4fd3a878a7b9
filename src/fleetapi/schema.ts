import type { Machine, Unit, UnitOption, UnitState } from '../gen/flotilla/v1/flotilla';

/**
 * fleet API v1's entities (fleet's schema/v1.json) as fleet's Go structs put them on the wire:
 * keys in the order encoding/json wrote them (the generated structs' fields, alphabetical) and
 * every empty string, list or map left out (`omitempty`). JSON.stringify keeps the insertion
 * order of these objects, so building them key by key is what makes the bytes match.
 */
export interface FleetUnitOption {
  name?: string;
  section?: string;
  value?: string;
}

export interface FleetUnit {
  currentState?: string;
  desiredState?: string;
  machineID?: string;
  name?: string;
  options?: FleetUnitOption[];
}

export interface FleetUnitState {
  hash?: string;
  machineID?: string;
  name?: string;
  systemdActiveState?: string;
  systemdLoadState?: string;
  systemdSubState?: string;
}

export interface FleetMachine {
  id?: string;
  metadata?: Record<string, string>;
  primaryIP?: string;
}

/** Copies the non-empty values of `fields`, in order: Go's `omitempty` for strings. */
function strings<T extends object>(fields: [keyof T, string][]): T {
  const out: Record<string, string> = {};
  for (const [k, v] of fields) if (v !== '') out[k as string] = v;
  return out as T;
}

export function fleetUnitOption(o: UnitOption): FleetUnitOption {
  return strings<FleetUnitOption>([
    ['name', o.name],
    ['section', o.section],
    ['value', o.value],
  ]);
}

/**
 * A Flotilla unit as fleet showed it. fleet took `currentState` and `machineID` from the unit's
 * schedule entry, which a global unit never had: both are left out for global units (fleetctl
 * prints "global" and "-" for them). A non-global unit not placed anywhere is "inactive".
 */
export function fleetUnit(u: Unit): FleetUnit {
  const out = strings<FleetUnit>([
    ['currentState', u.global ? '' : u.currentState],
    ['desiredState', u.targetState],
    ['machineID', u.global ? '' : u.targetMachine],
    ['name', u.name],
  ]);
  if (u.options.length > 0) out.options = u.options.map(fleetUnitOption);
  return out;
}

export function fleetUnitState(s: UnitState): FleetUnitState {
  return strings<FleetUnitState>([
    ['hash', s.hash],
    ['machineID', s.machineId],
    ['name', s.name],
    ['systemdActiveState', s.activeState],
    ['systemdLoadState', s.loadState],
    ['systemdSubState', s.subState],
  ]);
}

/** Go marshals a map with its keys sorted. */
export function fleetMachine(m: Machine): FleetMachine {
  const out: FleetMachine = {};
  if (m.id) out.id = m.id;
  const keys = Object.keys(m.metadata).sort();
  if (keys.length > 0) out.metadata = Object.fromEntries(keys.map((k) => [k, m.metadata[k]]));
  if (m.ip) out.primaryIP = m.ip;
  return out;
}

/** A page of a collection: `nextPageToken` first or last as in fleet's structs, omitted when empty. */
export function fleetPage<K extends string, T>(
  key: K,
  items: T[],
  next: string,
  tokenFirst: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (tokenFirst && next) out.nextPageToken = next;
  if (items.length > 0) out[key] = items;
  if (!tokenFirst && next) out.nextPageToken = next;
  return out;
}
