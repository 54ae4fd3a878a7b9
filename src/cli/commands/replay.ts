import path from 'node:path';
import type { FlagSpec } from '../args';
import { flagBool, flagNumber, flagString } from '../args';
import type { Command, Context } from '../command';
import { err, isFull, isJson, out } from '../command';
import { errorMessage } from '../errors';
import { formatTable } from '../tabwriter';
import { machineIdLegend } from '../format';
import { foldAll } from '../../engine/fold';
import { decodeState, toSnapshotDoc } from '../../engine/snapshot';
import type { ClusterState } from '../../engine/state';
import { emptyState } from '../../engine/state';
import type { FlotillaEvent } from '../../events/types';
import { EtcdLogStore } from '../../store/etcd';
import type { EtcdLogStoreOptions } from '../../store/etcd/options';
import { etcdSecurityOf } from '../../daemon/stores';
import { FileLogStore } from '../../store/file';
import type { LogStore, Restored } from '../../store/types';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'until',
    type: 'int',
    default: 0,
    valueName: 'INDEX',
    help: 'Replay up to and including this event (default: all)',
  },
  {
    name: 'unit',
    type: 'string',
    default: '',
    valueName: 'NAME',
    help: "Print one unit's history (every event that touched it)",
  },
  {
    name: 'events',
    type: 'bool',
    default: false,
    help: 'Print the replayed events instead of the resulting state',
  },
];

/**
 * Where to read (or, for restore, write) a cluster's durable store: etcd or a dev data
 * directory (`flotilla viz` and `flotilla backup`/`restore` choose it the same way).
 */
export const STORE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'etcd-servers',
    type: 'string',
    default: 'http://127.0.0.1:2379',
    valueName: 'URLS',
    help: 'etcd client URLs, comma-separated (read-only access)',
  },
  {
    name: 'cluster',
    type: 'string',
    default: 'default',
    valueName: 'NAME',
    help: 'Cluster name (etcd key prefix)',
  },
  ...[
    'etcd-cafile',
    'etcd-certfile',
    'etcd-keyfile',
    'etcd-username',
    'etcd-password',
    'etcd-password-file',
  ].map((name): FlagSpec => ({
    name,
    type: 'string',
    default: '',
    valueName: name.endsWith('file') ? 'FILE' : 'VALUE',
    help: `etcd ${name.slice(5)} (TLS and auth, as flotillad's etcd_${name.slice(5).replace(/-/g, '_')})`,
  })),
  {
    name: 'data-dir',
    type: 'string',
    default: '',
    valueName: 'DIR',
    help: "Read a dev-mode cluster's store (flotillad --dev --data-dir)",
  },
];

const ALL_FLAGS = [...FLAGS, ...STORE_FLAGS];

const silent = { warn: () => undefined };

/** The etcd store named by --etcd-servers, --cluster and the --etcd-* security flags. */
export function etcdOptionsFromFlags(ctx: Context): EtcdLogStoreOptions {
  return {
    endpoints: flagString(ctx.parsed, 'etcd-servers').split(',').filter(Boolean),
    cluster: flagString(ctx.parsed, 'cluster'),
    ...etcdSecurityOf(
      {
        etcd_cafile: flagString(ctx.parsed, 'etcd-cafile'),
        etcd_certfile: flagString(ctx.parsed, 'etcd-certfile'),
        etcd_keyfile: flagString(ctx.parsed, 'etcd-keyfile'),
        etcd_username: flagString(ctx.parsed, 'etcd-username'),
        etcd_password: flagString(ctx.parsed, 'etcd-password'),
        etcd_password_file: flagString(ctx.parsed, 'etcd-password-file'),
      },
      (key) => `--${key.replace(/_/g, '-')}`,
    ),
    logger: silent,
  };
}

/** Durable events and the latest snapshot, read without campaigning or writing anything. */
export async function readStore(ctx: Context): Promise<Restored> {
  const dataDir = flagString(ctx.parsed, 'data-dir');
  const store: LogStore = dataDir
    ? new FileLogStore({ dir: path.join(dataDir, 'store'), logger: silent })
    : new EtcdLogStore(etcdOptionsFromFlags(ctx));
  try {
    return await store.readAll();
  } finally {
    await store.close();
  }
}

/**
 * The state as of `until`, folded by the leader's own fold: from the first event when the log
 * still starts at the beginning, else from the snapshot (the log before it is compacted).
 */
export function replayState(
  r: Restored,
  until: number,
): { state: ClusterState; events: FlotillaEvent[] } {
  const events = r.tail.filter((e) => until === 0 || e.index <= until);
  const fromStart = r.tail.length > 0 && r.tail[0].index === 1;
  if (fromStart || !r.snapshot) return { state: foldAll(events, emptyState()), events };
  if (until !== 0 && until < r.snapshot.index) {
    const oldest = r.tail.find((e) => e.index > 0)?.index ?? r.snapshot.index;
    throw new Error(
      `events before index ${Math.min(oldest, r.snapshot.index)} were compacted behind the snapshot at ${r.snapshot.index} ` +
        `(raise flotillad's log_retention to keep more history)`,
    );
  }
  const state = decodeState(r.snapshot.data);
  return {
    state: foldAll(
      events.filter((e) => e.index > r.snapshot!.index),
      state,
    ),
    events,
  };
}

function describe(e: FlotillaEvent): string {
  const when = new Date(e.time).toISOString();
  const extra: string[] = [];
  if ('unit' in e) extra.push(`unit=${e.unit}`);
  if ('machine' in e) extra.push(`machine=${e.machine}`);
  if ('target' in e) extra.push(`target=${e.target}`);
  if ('reason' in e) extra.push(`reason="${e.reason}"`);
  if ('hash' in e) extra.push(`hash=${e.hash.slice(0, 7)}`);
  return `${e.index} ${when} epoch=${e.epoch} ${e.type}${extra.length ? ' ' + extra.join(' ') : ''}`;
}

export const replay: Command = {
  name: 'replay',
  summary: 'Replay the durable event log and show the cluster as it was at any index',
  usage:
    '[--until=INDEX] [--unit=NAME] [--events] [--json] [--etcd-servers=URLS --cluster=NAME | --data-dir=DIR]',
  description: `Reads the durable log and the latest snapshot straight from the store (etcd, or a
dev-mode data directory) — no leader is needed — and folds the events with the leader's own
fold, up to --until. Prints the units as they were then (target state and placement), the
history of one unit with --unit (every event that touched it, with the scheduler's reasons), or
the events themselves with --events. Transient facts (unit states, machine presence) are not in
the durable log; see 'flotilla events' for them.`,
  flags: ALL_FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    let r: Restored;
    try {
      r = await readStore(ctx);
    } catch (e) {
      err(ctx, `Error reading the event log: ${errorMessage(e)}`);
      return 1;
    }
    const until = flagNumber(ctx.parsed, 'until');
    let replayed: { state: ClusterState; events: FlotillaEvent[] };
    try {
      replayed = replayState(r, until);
    } catch (e) {
      err(ctx, `Error replaying: ${errorMessage(e)}`);
      return 1;
    }
    const { state, events } = replayed;
    const unit = flagString(ctx.parsed, 'unit');
    if (unit || flagBool(ctx.parsed, 'events')) {
      const picked = unit ? events.filter((e) => 'unit' in e && e.unit === unit) : events;
      if (unit && picked.length === 0) {
        err(ctx, `No events for unit ${unit}${until ? ` up to index ${until}` : ''}`);
        return 1;
      }
      for (const e of picked) out(ctx, isJson(ctx) ? JSON.stringify(e) : describe(e));
      return 0;
    }
    if (isJson(ctx)) {
      out(ctx, JSON.stringify(toSnapshotDoc(state), null, 2));
      return 0;
    }
    const rows = [['UNIT', 'HASH', 'DSTATE', 'TARGET']];
    for (const name of [...state.units.keys()].sort()) {
      const u = state.units.get(name)!;
      const target = u.requirements.global
        ? 'global'
        : u.machine
          ? machineIdLegend(u.machine, isFull(ctx))
          : '-';
      rows.push([name, isFull(ctx) ? u.hash : u.hash.slice(0, 7), u.target, target]);
    }
    err(ctx, `State at index ${state.index} (epoch ${state.epoch}): ${state.units.size} units`);
    ctx.io.stdout(formatTable(rows));
    return 0;
  },
};
