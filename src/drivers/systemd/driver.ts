import fs from 'node:fs';
import { ErrorCode, FlotillaError } from '../../errors';
import type { Driver, DriverOp, DriverOpResult, DriverUnitState } from '../driver';
import { applyBatch, type UnitRow } from './batch';
import {
  MANAGER_IFACE,
  MANAGER_PATH,
  PROPERTIES_IFACE,
  SYSTEMD_NAME,
  SystemdBus,
  UNIT_IFACE,
} from './bus';
import { UnitsDirectory } from './files';
import { journalLines } from './journal';
import { formatStatus } from './status';
import { RUNNING_STATES, UnitTracker } from './tracker';
import { isValidUnitName, unitType } from '../../unit';
import { unitObjectPath } from './unitfile';

export interface SystemdDriverOptions {
  /**
   * D-Bus address of the bus systemd is on ("unix:path=…/bus"), connected to as a session bus.
   * This is how tests reach a `systemd --user` started by the harness.
   */
  busAddress?: string;
  /** Without busAddress: the user's session bus (true) or the system bus (false, default). */
  userBus?: boolean;
  /** Where unit files are written and linked from (fleet: /run/fleet/units). */
  unitsDirectory: string;
}

/** Counters for the benchmark and /metrics. */
export interface SystemdDriverStats {
  /** D-Bus method calls sent (to systemd and to the bus daemon). */
  calls: number;
  callsByMethod: Record<string, number>;
  /** Signals delivered by the driver's match rules. */
  signalsReceived: number;
  /** Of those, signals about a managed unit or an awaited job. */
  signalsHandled: number;
  statesEmitted: number;
  /** Manager.Reload calls made by apply(). */
  reloads: number;
  batches: number;
}

/** systemd's interface for a unit type's own properties (MainPID, Result, …). */
const TYPE_IFACE: Record<string, string> = {
  service: 'Service',
  socket: 'Socket',
  timer: 'Timer',
  mount: 'Mount',
  automount: 'Automount',
  swap: 'Swap',
  path: 'Path',
  slice: 'Slice',
  scope: 'Scope',
};

function typeInterface(unit: string): string | undefined {
  const t = TYPE_IFACE[unitType(unit)];
  return t ? `org.freedesktop.systemd1.${t}` : undefined;
}

/**
 * Match rules: the bus daemon delivers only these signals. PropertiesChanged is matched for the
 * whole unit namespace (one rule; a rule per unit would hit the system bus's limit of 512 match
 * rules per connection) and filtered by object path in O(1); Manager signals by member, so the
 * JobNew/UnitFilesChanged/… traffic of a busy machine never reaches the agent.
 */
const MATCH_RULES = [
  ...['JobRemoved', 'UnitNew', 'UnitRemoved', 'Reloading'].map(
    (member) =>
      `type='signal',sender='${SYSTEMD_NAME}',path='${MANAGER_PATH}',` +
      `interface='${MANAGER_IFACE}',member='${member}'`,
  ),
  `type='signal',sender='${SYSTEMD_NAME}',interface='${PROPERTIES_IFACE}',` +
    `member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'`,
];

/**
 * The systemd driver: talks to systemd's Manager (org.freedesktop.systemd1) over D-Bus, on the
 * system bus, the user's session bus, or a given address.
 *
 * The units directory is the driver's whole memory: the files in it are the units it manages;
 * each is linked into systemd's runtime unit directory (runtime=true, gone after a reboot, as
 * fleet did) and enabled (runtime) when it has an [Install] section.
 *
 * Adoption: after an agent restart, a new driver on the same directory finds the same files,
 * reports the running units through list(), and applying the same load+start again changes
 * nothing (no reload, no restart: the MainPID stays).
 */
export class SystemdDriver implements Driver {
  readonly kind = 'systemd' as const;
  private readonly bus: SystemdBus;
  private readonly tracker = new UnitTracker();
  private readonly files: UnitsDirectory;
  private readonly counters = { reloads: 0, batches: 0 };
  /**
   * Own Manager.Reload calls waiting for their reply. systemd sends Reloading(false) before it
   * replies, so a reload signal seen while this is > 0 is the driver's own.
   */
  private ownReloads = 0;
  /** apply() calls run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  private opened = false;

  constructor(private readonly opts: SystemdDriverOptions) {
    if (!opts.unitsDirectory) {
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        'systemd driver: unitsDirectory is required',
      );
    }
    this.bus = new SystemdBus({ busAddress: opts.busAddress, userBus: opts.userBus ?? false });
    this.files = new UnitsDirectory(opts.unitsDirectory);
    this.tracker.onReloaded = () => this.reloaded();
    this.bus.onClose((err) => this.tracker.jobs.failAll(err));
  }

  /** Live counters (read a field each time you need it). */
  get stats(): SystemdDriverStats {
    return {
      calls: this.bus.stats.calls,
      callsByMethod: { ...this.bus.stats.callsByMethod },
      signalsReceived: this.bus.stats.signalsReceived,
      signalsHandled: this.tracker.stats.signalsHandled,
      statesEmitted: this.tracker.stats.statesEmitted,
      reloads: this.counters.reloads,
      batches: this.counters.batches,
    };
  }

  get unitsDirectory(): string {
    return this.files.dir;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    this.files.ensure();
    for (const unit of this.files.names()) this.manageFile(unit);
    try {
      await this.bus.connect((s) => this.tracker.handle(s));
      await Promise.all(MATCH_RULES.map((r) => this.bus.addMatch(r)));
      // Without Subscribe systemd sends no unit or job signals at all.
      await this.bus.manager('Subscribe');
    } catch (err) {
      this.bus.disconnect();
      if (err instanceof FlotillaError) throw err;
      throw new FlotillaError(
        ErrorCode.DriverFailed,
        `systemd driver: cannot subscribe to systemd: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err, retryable: true },
      );
    }
    this.opened = true;
  }

  async close(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    // Units keep running: nothing is stopped, Unsubscribe happens with the disconnect.
    this.bus.disconnect();
    this.tracker.jobs.failAll(new Error('driver closed'));
  }

  apply(ops: DriverOp[]): Promise<DriverOpResult[]> {
    const run = async (): Promise<DriverOpResult[]> => {
      this.requireOpen();
      this.counters.batches++;
      return this.tracker.jobs.capture(() =>
        applyBatch(
          {
            bus: this.bus,
            tracker: this.tracker,
            files: this.files,
            reloadStarted: () => {
              this.ownReloads++;
              this.counters.reloads++;
            },
            reloadFinished: () => {
              this.ownReloads--;
            },
          },
          ops,
        ),
      );
    };
    const next = this.queue.then(run, run);
    // Only the order is chained: the caller gets `next`'s error itself.
    this.queue = next.catch(() => undefined);
    return next;
  }

  async list(): Promise<DriverUnitState[]> {
    this.requireOpen();
    const names = this.files.names();
    const present = new Set(names);
    for (const unit of this.tracker.names()) if (!present.has(unit)) this.tracker.forget(unit);
    for (const unit of names) this.manageFile(unit);
    if (names.length === 0) return [];

    const marks = new Map(names.map((n) => [n, this.tracker.mark(this.tracker.get(n)!)]));
    const [rows] = (await this.bus.manager('ListUnitsByNames', 'as', [names])) as [UnitRow[]];
    await Promise.all(
      rows.map(async ([unit, , load, active, sub]) => {
        const rec = this.tracker.get(unit);
        if (!rec) return;
        rec.inMemory = true;
        const iface = typeInterface(unit);
        let mainPid: number | undefined;
        let result: string | undefined;
        let exitStatus: number | undefined;
        try {
          if (iface && unitType(unit) === 'service' && RUNNING_STATES.has(active)) {
            mainPid = Number(await this.bus.getProperty(rec.path, iface, 'MainPID'));
          } else if (iface && active === 'failed') {
            result = String(await this.bus.getProperty(rec.path, iface, 'Result'));
            if (unitType(unit) === 'service')
              exitStatus = Number(await this.bus.getProperty(rec.path, iface, 'ExecMainStatus'));
          }
        } catch (err) {
          // The unit changed under us (stopped, garbage-collected): its signals will follow.
          // A lost connection, though, must not pass for a state.
          if (err instanceof FlotillaError) throw err;
        }
        this.tracker.update(
          rec,
          { load, active, sub, mainPid, result, exitStatus },
          false,
          marks.get(unit),
        );
      }),
    );
    return names.map((unit) => this.tracker.stateOf(this.tracker.get(unit)!));
  }

  onState(listener: (state: DriverUnitState) => void): () => void {
    return this.tracker.listen(listener);
  }

  async status(unit: string): Promise<string> {
    this.requireOpen();
    this.requireName(unit);
    const rec = this.tracker.get(unit);
    const path = rec?.path ?? unitObjectPath(unit);
    const iface = typeInterface(unit);
    const [unitProps, typeProps] = await Promise.all([
      this.bus.getAll(path, UNIT_IFACE),
      iface ? this.bus.getAll(path, iface).catch(() => ({})) : Promise.resolve({}),
    ]);
    return formatStatus(unit, { ...unitProps, ...typeProps }, Date.now(), readComm);
  }

  journal(
    unit: string,
    lines: number,
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<string> {
    this.requireName(unit);
    // A bus address is how a user manager is reached (the harness's, or a user's own).
    const user = this.opts.userBus === true || this.opts.busAddress !== undefined;
    return journalLines(unit, lines, follow, signal, { user });
  }

  private manageFile(unit: string): void {
    const contents = this.files.read(unit);
    if (contents !== undefined) this.tracker.manage(unit, contents);
  }

  /**
   * Someone reloaded systemd (not this driver's own batch, which reads load states back
   * itself): load states may have changed. One call for the managed units in memory;
   * ListUnitsByPatterns does not load the others.
   */
  private reloaded(): void {
    if (this.ownReloads > 0) return;
    const names = this.tracker.names();
    if (names.length === 0) return;
    const marks = new Map(names.map((n) => [n, this.tracker.mark(this.tracker.get(n)!)]));
    this.bus
      // Patterns are fnmatch globs: escape the backslash in names like "foo\x2dbar.service".
      .manager('ListUnitsByPatterns', 'asas', [[], names.map((n) => n.replace(/\\/g, '\\\\'))])
      .then(([rows]) => {
        for (const [unit, , load, active, sub] of rows as UnitRow[]) {
          const rec = this.tracker.get(unit);
          if (!rec) continue;
          // The reload may have been for an edited file: report the hash of what is there now.
          const contents = this.files.read(unit);
          if (contents !== undefined) this.tracker.manage(unit, contents);
          this.tracker.update(rec, { load, active, sub }, true, marks.get(unit));
        }
      })
      .catch(() => {
        // Connection gone or systemd busy: the next signal or list() brings the state.
      });
  }

  private requireOpen(): void {
    if (!this.opened) {
      throw new FlotillaError(ErrorCode.InvalidState, 'systemd driver: open() it first');
    }
  }

  private requireName(unit: string): void {
    if (!isValidUnitName(unit)) {
      throw new FlotillaError(
        ErrorCode.InvalidArgument,
        `invalid unit name: ${JSON.stringify(unit)}`,
      );
    }
  }
}

function readComm(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
