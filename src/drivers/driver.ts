import type { UnitRuntimeState } from '../events/types';

/**
 * One operation on the local unit manager. A batch is applied in the order
 * unload < load < reload < stop < start (fleet's agent order), whatever order it is given in.
 */
export type DriverOp =
  /** Write the canonical unit file (`contents`, whose SHA-1 is `hash`) and link it (runtime). */
  | { kind: 'load'; unit: string; contents: string; hash: string }
  /** Stop, disable, remove the file, reset-failed. */
  | { kind: 'unload'; unit: string }
  | { kind: 'start'; unit: string }
  | { kind: 'stop'; unit: string };

export interface DriverOpResult {
  op: DriverOp;
  ok: boolean;
  /** Why it failed, naming the unit and systemd's error. */
  error?: string;
}

export interface DriverUnitState extends UnitRuntimeState {
  unit: string;
}

/**
 * The agent's only way to touch the machine. Implementations: systemd (D-Bus), process (child
 * processes, dev mode), simulated (in memory, benchmarks). A driver never stops or starts a unit
 * on its own; it does what `apply` says and reports what it observes.
 */
export interface Driver {
  readonly kind: 'systemd' | 'process' | 'simulated';
  /** Connects (D-Bus, …) and starts following state changes. */
  open(): Promise<void>;
  /** Disconnects. Leaves every unit as it is (running units keep running). */
  close(): Promise<void>;
  /** Applies one batch; at most one daemon reload for all its loads and unloads. */
  apply(ops: DriverOp[]): Promise<DriverOpResult[]>;
  /** Every unit this driver manages (files in its units directory) with its state; for adoption. */
  list(): Promise<DriverUnitState[]>;
  /** Called for every observed change of a managed unit's state (signals, not polling). */
  onState(listener: (state: DriverUnitState) => void): () => void;
  /** `systemctl status`-like text for one unit. */
  status(unit: string): Promise<string>;
  /** The unit's last `lines` log lines; with `follow`, goes on until the signal aborts. */
  journal(
    unit: string,
    lines: number,
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<string>;
}
