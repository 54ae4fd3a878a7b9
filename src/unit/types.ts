/** One `Name=Value` line of a unit file, in file order. */
export interface UnitOption {
  section: string;
  name: string;
  value: string;
}

/**
 * What the user wants of a unit (fleet's "desired state"):
 * inactive = known but not placed; loaded = placed and loaded into systemd; launched = started.
 */
export type TargetState = 'inactive' | 'loaded' | 'launched';
export const TARGET_STATES: readonly TargetState[] = ['inactive', 'loaded', 'launched'];

/** The `[X-Fleet]` section of a unit, resolved (specifiers expanded, legacy spellings merged). */
export interface UnitRequirements {
  /** Full machine ID or its first 8 characters. */
  machineId?: string;
  /** Unit names this unit must share a machine with. */
  machineOf: string[];
  /** key -> allowed values (AND across keys, OR within a key). */
  metadata: Record<string, string[]>;
  /** Glob patterns of units that must not share a machine with this one. */
  conflicts: string[];
  global: boolean;
  /** Glob patterns of units this one displaces from its machine. */
  replaces: string[];
}
