import type { DriverOp, DriverOpResult } from '../driver';
import { UNIT_IFACE, dbusErrorName, describeError, type SystemdBus } from './bus';
import type { UnitsDirectory } from './files';
import type { UnitTracker } from './tracker';
import { isValidUnitName } from '../../unit';
import { firstMissing, hasInstallSection, sha1 } from './unitfile';

const NO_SUCH_UNIT = 'org.freedesktop.systemd1.NoSuchUnit';

/** fleet's agent order: unload < load < (reload) < stop < start. */
const RANK: Record<DriverOp['kind'], number> = { unload: 0, load: 1, stop: 2, start: 3 };

export interface BatchContext {
  bus: SystemdBus;
  tracker: UnitTracker;
  files: UnitsDirectory;
  /** Called just before the batch's one Manager.Reload call, and when its reply (or error) came. */
  reloadStarted: () => void;
  reloadFinished: () => void;
}

interface Entry {
  op: DriverOp;
  index: number;
}

/** A row of Manager.ListUnitsByNames / ListUnits: (ssssssouso). */
export type UnitRow = [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  number,
  string,
  string,
];

/**
 * Sorts a batch into the order it is applied in: by kind (unload, load, stop, start), then by unit
 * name, then by position in the batch. Deterministic whatever order the ops came in.
 */
export function orderOps<T extends { op: DriverOp; index: number }>(entries: T[]): T[] {
  return [...entries].sort(
    (a, b) =>
      RANK[a.op.kind] - RANK[b.op.kind] ||
      (a.op.unit < b.op.unit ? -1 : a.op.unit > b.op.unit ? 1 : 0) ||
      a.index - b.index,
  );
}

/**
 * Applies one batch. Never throws for a failing op: every op gets a result, and a failure names
 * the unit and systemd's error. Steps:
 *
 * 1. unloads: stop (if it may be running) and wait for the job; DisableUnitFiles(runtime) for all
 *    of them in one call (this also removes the link); ResetFailedUnit if failed; remove the file.
 * 2. loads: write files whose contents differ; one LinkUnitFiles(runtime, force) for all of them
 *    and one EnableUnitFiles(runtime, force) for those with an [Install] section. Both report
 *    only what they changed, so an identical, already linked file changes nothing.
 * 3. exactly one Manager.Reload, only if something changed on disk or systemd says a unit needs
 *    it (NeedDaemonReload, for identical files: a previous agent may have died before reloading).
 *    A running unit whose file did not change is never reloaded, stopped or restarted.
 * 4. one ListUnitsByNames for the loaded units: a unit file systemd refuses (bad-setting, error,
 *    masked…) fails its load op with systemd's LoadError.
 * 5. stops, then starts: all issued at once, each waited for by its JobRemoved signal.
 */
export async function applyBatch(ctx: BatchContext, ops: DriverOp[]): Promise<DriverOpResult[]> {
  const { bus, tracker } = ctx;
  const out = new Outcome();
  const fail = (e: Entry, error: string): void => out.fail(e, error);
  const succeed = (e: Entry): void => out.succeed(e);
  const pending = (e: Entry): boolean => out.pending(e);

  const all = orderOps(ops.map((op, index) => ({ op, index })));
  for (const e of all) {
    if (!isValidUnitName(e.op.unit)) fail(e, `${e.op.kind} ${e.op.unit}: invalid unit name`);
  }
  const of = (kind: DriverOp['kind']): Entry[] =>
    all.filter((e) => e.op.kind === kind && pending(e));

  let changed = false;
  changed = (await unloadAll(ctx, of('unload'), out)) || changed;

  const loads = of('load');
  // What systemd holds in memory before we write: a unit it has never loaded (or only knows as
  // "not-found") needs no daemon reload — systemd loads a new unit file on first use, and retries
  // a "not-found" unit once its unit directories change. Skipping the reload (50–70 ms, and it
  // re-reads every unit) is what keeps the latency of a single start low.
  const before = await loadStatesBefore(ctx, loads);
  const touched = new Set<string>();
  const wrote = await writeAndLink(ctx, loads, out, touched);
  const stale =
    before === undefined ||
    [...touched].some((u) => before.has(u) && before.get(u) !== 'not-found');
  const reload = async (): Promise<void> => {
    ctx.reloadStarted();
    try {
      await bus.manager('Reload');
    } catch (err) {
      for (const e of loads.filter(pending))
        fail(e, `load ${e.op.unit}: daemon reload failed: ${describeError(err)}`);
    } finally {
      ctx.reloadFinished();
    }
  };
  if (changed || (wrote && stale)) {
    await reload();
  } else if (wrote) {
    // Safety net: if systemd did not pick a new file up by itself, reload after all.
    const names = [...touched].filter((u) => !u.includes('@.'));
    const rows = names.length === 0 ? [] : await listByNames(ctx, names);
    if (rows === undefined || rows.some((r) => r[2] !== 'loaded')) await reload();
  }
  // Read back what changed, and what this driver has not seen loaded yet (after a restart).
  await verifyLoads(
    ctx,
    loads.filter(
      (e) => pending(e) && (touched.has(e.op.unit) || tracker.get(e.op.unit)?.load !== 'loaded'),
    ),
    out,
  );
  for (const e of loads) succeed(e);
  const failedLoads = new Set(loads.filter((e) => out.failed(e)).map((e) => e.op.unit));

  await Promise.all(
    of('stop').map(async (e) => {
      const error = await runJob(bus, tracker, 'StopUnit', e.op.unit);
      if (error === undefined) succeed(e);
      else fail(e, `stop ${e.op.unit}: ${error}`);
    }),
  );

  await Promise.all(
    of('start').map(async (e) => {
      const unit = e.op.unit;
      if (failedLoads.has(unit)) {
        fail(e, `start ${unit}: not started because its load in this batch failed`);
        return;
      }
      const error = await runJob(bus, tracker, 'StartUnit', unit);
      if (error !== undefined) {
        fail(e, `start ${unit}: ${error}`);
        return;
      }
      const missing = firstMissing(tracker.get(unit)?.execPaths ?? []);
      if (missing) {
        fail(
          e,
          `start ${unit}: ExecStart= executable ${missing} does not exist or is not executable; ` +
            `systemd forked the service but its process cannot run (status 203/EXEC)`,
        );
        return;
      }
      succeed(e);
    }),
  );

  for (const e of all) succeed(e);
  return out.inOrder(ops);
}

/**
 * Issues StartUnit/StopUnit(unit, "replace") and waits for the job's JobRemoved.
 * Returns undefined on success, else why. Stopping a unit systemd has not loaded succeeds.
 */
async function runJob(
  bus: SystemdBus,
  tracker: UnitTracker,
  method: 'StartUnit' | 'StopUnit',
  unit: string,
): Promise<string | undefined> {
  let job: string;
  try {
    [job] = (await bus.manager(method, 'ss', [unit, 'replace'])) as [string];
  } catch (err) {
    if (method === 'StopUnit' && dbusErrorName(err) === NO_SUCH_UNIT) return undefined;
    return describeError(err);
  }
  let result: string;
  try {
    result = await tracker.jobs.wait(job);
  } catch (err) {
    return describeError(err);
  }
  if (result === 'done') return undefined;
  const rec = tracker.get(unit);
  const unitResult = rec?.result && rec.result !== 'success' ? `, unit Result: ${rec.result}` : '';
  return `systemd job ${job} finished with result "${result}"${unitResult}`;
}

async function unloadAll(ctx: BatchContext, unloads: Entry[], out: Outcome): Promise<boolean> {
  const { bus, tracker, files } = ctx;
  const fail = (e: Entry, error: string): void => out.fail(e, error);
  if (unloads.length === 0) return false;
  let changed = false;

  // Stop what may be running. Not in memory, inactive or failed means nothing runs.
  await Promise.all(
    unloads.map(async (e) => {
      const rec = tracker.get(e.op.unit);
      const idle =
        rec !== undefined &&
        (rec.inMemory === false || rec.active === 'inactive' || rec.active === 'failed');
      if (idle) return;
      const error = await runJob(bus, tracker, 'StopUnit', e.op.unit);
      if (error !== undefined) fail(e, `unload ${e.op.unit}: stop failed, unit kept: ${error}`);
    }),
  );
  const stopped = unloads.filter((e) => !out.failed(e));

  // Disabling removes the runtime link and any [Install] symlinks in one call for the batch.
  const disabled = await perUnit(
    stopped,
    async (batch) => {
      const [changes] = (await bus.manager('DisableUnitFiles', 'asb', [
        batch.map((e) => e.op.unit),
        true,
      ])) as [unknown[]];
      if (changes.length > 0) changed = true;
    },
    (e, err) => fail(e, `unload ${e.op.unit}: DisableUnitFiles failed: ${describeError(err)}`),
  );

  await Promise.all(
    disabled.map(async (e) => {
      const rec = tracker.get(e.op.unit);
      if (rec !== undefined && rec.active !== undefined && rec.active !== 'failed') return;
      try {
        await bus.manager('ResetFailedUnit', 's', [e.op.unit]);
      } catch (err) {
        if (dbusErrorName(err) !== NO_SUCH_UNIT) {
          fail(e, `unload ${e.op.unit}: ResetFailedUnit failed: ${describeError(err)}`);
        }
      }
    }),
  );

  for (const e of disabled) {
    try {
      if (files.remove(e.op.unit)) changed = true;
      tracker.forget(e.op.unit);
    } catch (err) {
      fail(
        e,
        `unload ${e.op.unit}: cannot remove ${files.pathOf(e.op.unit)}: ${describeError(err)}`,
      );
    }
  }
  return changed;
}

/**
 * Writes, links and enables; returns whether anything changed that needs a daemon reload, and
 * adds to `touched` the units whose file, links or loaded copy changed.
 */
async function writeAndLink(
  ctx: BatchContext,
  loads: Entry[],
  out: Outcome,
  touched: Set<string>,
): Promise<boolean> {
  const { bus, tracker, files } = ctx;
  const fail = (e: Entry, error: string): void => out.fail(e, error);
  if (loads.length === 0) return false;
  let changed = false;
  const identical: Entry[] = [];
  const wasInstalled: Entry[] = [];

  for (const e of loads) {
    if (e.op.kind !== 'load') continue;
    const { unit, contents, hash } = e.op;
    const actual = sha1(contents);
    if (actual !== hash) {
      fail(e, `load ${unit}: hash ${hash} is not the SHA-1 of the contents (${actual})`);
      continue;
    }
    try {
      const existing = files.read(unit);
      if (existing === contents) {
        identical.push(e);
      } else {
        if (existing !== undefined && hasInstallSection(existing)) wasInstalled.push(e);
        files.write(unit, contents);
        touched.add(unit);
        changed = true;
      }
      tracker.manage(unit, contents);
    } catch (err) {
      fail(e, `load ${unit}: cannot write ${files.pathOf(unit)}: ${describeError(err)}`);
    }
  }
  let ok = loads.filter((e) => !out.failed(e));

  // A changed file that had an [Install] section may no longer want what it wanted: drop its
  // old symlinks (and its link, re-created just below) before enabling the new contents.
  if (wasInstalled.length > 0) {
    await perUnit(
      wasInstalled.filter((e) => ok.includes(e)),
      async (batch) => {
        await bus.manager('DisableUnitFiles', 'asb', [batch.map((e) => e.op.unit), true]);
      },
      (e, err) => fail(e, `load ${e.op.unit}: DisableUnitFiles failed: ${describeError(err)}`),
    );
    ok = ok.filter((e) => !out.failed(e));
  }

  const paths = (batch: Entry[]): string[] => [
    ...new Set(batch.map((e) => files.pathOf(e.op.unit))),
  ];
  // Changes are (type, symlink, destination); the destination is the driver's file.
  const noteChanges = (changes: unknown[]): void => {
    for (const c of changes as [string, string, string][]) {
      touched.add(c[2].slice(c[2].lastIndexOf('/') + 1));
    }
    if (changes.length > 0) changed = true;
  };
  ok = await perUnit(
    ok,
    async (batch) => {
      const [changes] = (await bus.manager('LinkUnitFiles', 'asbb', [
        paths(batch),
        true,
        true,
      ])) as [unknown[]];
      noteChanges(changes);
    },
    (e, err) => fail(e, `load ${e.op.unit}: LinkUnitFiles failed: ${describeError(err)}`),
  );

  const installable = ok.filter((e) => e.op.kind === 'load' && hasInstallSection(e.op.contents));
  await perUnit(
    installable,
    async (batch) => {
      const [, changes] = (await bus.manager('EnableUnitFiles', 'asbb', [
        paths(batch),
        true,
        true,
      ])) as [boolean, unknown[]];
      noteChanges(changes);
    },
    (e, err) => fail(e, `load ${e.op.unit}: EnableUnitFiles failed: ${describeError(err)}`),
  );

  if (!changed) {
    // Identical files: reload only if systemd holds an older copy (an agent died between
    // writing and reloading). Units systemd has not in memory are read fresh when needed.
    const stale = await Promise.all(
      identical
        .filter((e) => !out.failed(e) && tracker.get(e.op.unit)?.inMemory !== false)
        .map(async (e) => {
          const rec = tracker.get(e.op.unit)!;
          let stale = true;
          try {
            stale = (await bus.getProperty(rec.path, UNIT_IFACE, 'NeedDaemonReload')) === true;
          } catch {
            // Unknown: reloading is the safe answer.
          }
          if (stale) touched.add(e.op.unit);
          return stale;
        }),
    );
    changed = stale.some(Boolean);
  }
  return changed;
}

/** Reads back load states in one call; refused unit files fail their load op. */
/** Load state of each unit to be loaded, as systemd has it now; undefined when unknown. */
async function loadStatesBefore(
  ctx: BatchContext,
  loads: Entry[],
): Promise<Map<string, string> | undefined> {
  const names = [...new Set(loads.map((e) => e.op.unit).filter((u) => !u.includes('@.')))];
  if (names.length === 0) return new Map();
  const rows = await listByNames(ctx, names);
  return rows && new Map(rows.map((r) => [r[0], r[2]]));
}

async function listByNames(ctx: BatchContext, names: string[]): Promise<UnitRow[] | undefined> {
  try {
    const [rows] = (await ctx.bus.manager('ListUnitsByNames', 'as', [names])) as [UnitRow[]];
    return rows;
  } catch {
    return undefined;
  }
}

async function verifyLoads(ctx: BatchContext, loads: Entry[], out: Outcome): Promise<void> {
  const { bus, tracker } = ctx;
  const fail = (e: Entry, error: string): void => out.fail(e, error);
  // A template ("web@.service") cannot be loaded on its own; nothing to check.
  const checked = loads.filter((e) => !e.op.unit.includes('@.'));
  if (checked.length === 0) return;
  const names = [...new Set(checked.map((e) => e.op.unit))];
  const marks = new Map(
    names.map((n) => [n, tracker.get(n) ? tracker.mark(tracker.get(n)!) : undefined]),
  );
  let rows: UnitRow[];
  try {
    [rows] = (await bus.manager('ListUnitsByNames', 'as', [names])) as [UnitRow[]];
  } catch (err) {
    for (const e of checked)
      fail(e, `load ${e.op.unit}: cannot read its state: ${describeError(err)}`);
    return;
  }
  const byName = new Map(rows.map((r) => [r[0], r]));
  await Promise.all(
    checked.map(async (e) => {
      const row = byName.get(e.op.unit);
      const rec = tracker.get(e.op.unit);
      if (!row || !rec) return;
      rec.inMemory = true;
      tracker.update(
        rec,
        { load: row[2], active: row[3], sub: row[4] },
        true,
        marks.get(e.op.unit),
      );
      if (row[2] === 'loaded') return;
      let reason = '';
      try {
        const [name, text] = (await bus.getProperty(rec.path, UNIT_IFACE, 'LoadError')) as [
          string,
          string,
        ];
        if (text) reason = `: ${text} (${name})`;
      } catch {
        // The load state alone still says what is wrong.
      }
      fail(e, `load ${e.op.unit}: systemd refused the unit file (load state "${row[2]}")${reason}`);
    }),
  );
}

/**
 * Runs `call` once for the whole batch; if systemd rejects it, runs it per unit to find which
 * unit it rejects. Returns the entries that succeeded.
 */
async function perUnit(
  entries: Entry[],
  call: (batch: Entry[]) => Promise<void>,
  onError: (e: Entry, err: unknown) => void,
): Promise<Entry[]> {
  if (entries.length === 0) return [];
  try {
    await call(entries);
    return entries;
  } catch (err) {
    if (entries.length === 1) {
      onError(entries[0], err);
      return [];
    }
  }
  const ok: Entry[] = [];
  await Promise.all(
    entries.map(async (e) => {
      try {
        await call([e]);
        ok.push(e);
      } catch (err) {
        onError(e, err);
      }
    }),
  );
  return entries.filter((e) => ok.includes(e));
}

/** One result per op of the batch, by position; the first failure of an op is the one kept. */
class Outcome {
  private readonly results = new Map<number, DriverOpResult>();

  fail(e: Entry, error: string): void {
    if (!this.failed(e)) this.results.set(e.index, { op: e.op, ok: false, error });
  }

  succeed(e: Entry): void {
    if (!this.results.has(e.index)) this.results.set(e.index, { op: e.op, ok: true });
  }

  failed(e: Entry): boolean {
    return this.results.get(e.index)?.ok === false;
  }

  pending(e: Entry): boolean {
    return !this.results.has(e.index);
  }

  inOrder(ops: DriverOp[]): DriverOpResult[] {
    return ops.map(
      (op, i) =>
        this.results.get(i) ?? { op, ok: false, error: `${op.kind} ${op.unit}: not applied` },
    );
  }
}
