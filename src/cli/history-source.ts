import path from 'node:path';
import type { FlagSpec } from './args';
import { envName, flagString } from './args';
import type { Context } from './command';
import { err } from './command';
import { CliError } from './errors';
import { DEV_DATA_DIR } from '../daemon/config';
import type { etcdSecurityOf as EtcdSecurityOf } from '../daemon/stores';
import { readHistoryToCopy, type HistorySource } from '../history/source';
import type { EtcdLogStoreOptions } from '../store/etcd/options';
import type { RawRestored, Restored } from '../store/types';

/**
 * Where to read (or, for restore, write) a cluster's durable store: etcd or a dev data
 * directory (`flotilla replay`, `events export`, `viz`, `backup`/`restore` choose it the same way).
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
    help: `etcd ${name.slice(5)} (TLS and auth, as flotillad's etcd_${name.slice(5).replace(/-/g, '_')}; also ${envName(name)})`,
    fromEnv: true,
  })),
  {
    name: 'data-dir',
    type: 'string',
    default: '',
    valueName: 'DIR',
    help: "Read a dev-mode cluster's store (flotillad --dev --data-dir)",
  },
];

const silent = { warn: () => undefined };

/** The etcd store named by --etcd-servers, --cluster and the --etcd-* security flags. */
export function etcdOptionsFromFlags(ctx: Context): EtcdLogStoreOptions {
  // Any user on the machine can read a command line (ps, /proc/PID/cmdline).
  if (ctx.parsed.given.has('etcd-password'))
    err(
      ctx,
      `warning: --etcd-password on the command line is visible to every user of this machine; ` +
        `use --etcd-password-file or ${envName('etcd-password')}`,
    );
  // Loaded here, not by every command: it loads the etcd and gRPC clients (most of a second).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { etcdSecurityOf } = require('../daemon/stores') as {
    etcdSecurityOf: typeof EtcdSecurityOf;
  };
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

/** Whether the command line names a store (--data-dir, --etcd-servers or --cluster). */
export function namesStore(given: ReadonlySet<string>): boolean {
  return given.has('data-dir') || given.has('etcd-servers') || given.has('cluster');
}

/** The history source a command's arguments name: FILE, --data-dir DIR, or etcd (the default). */
export function historySourceOf(ctx: Context, files: readonly string[] = ctx.args): HistorySource {
  const dataDir = flagString(ctx.parsed, 'data-dir');
  if (files.length > 1) throw new CliError('Give at most one history file.');
  if (files.length === 1 && dataDir)
    throw new CliError('Give a history file or --data-dir, not both.');
  if (files.length === 1) return { kind: 'file', file: files[0] };
  if (dataDir) return { kind: 'data-dir', dir: path.resolve(dataDir) };
  const source: HistorySource = { kind: 'etcd', options: etcdOptionsFromFlags(ctx) };
  // Nothing named the store: the user may mean a dev daemon's, which is not in etcd.
  if (!ctx.parsed.given.has('etcd-servers'))
    source.unreachableHint = `a dev daemon (flotillad --dev) keeps its store in its data directory: give --data-dir (${DEV_DATA_DIR} by default) or a history file`;
  return source;
}

/**
 * Durable events and the latest snapshot from the store the flags name, to be copied (events
 * from etcd come unparsed), read without campaigning, writing or creating anything; a store that
 * does not exist or holds no cluster is a HISTORY_NOT_FOUND error.
 */
export async function readStoreToCopy(ctx: Context): Promise<Restored | RawRestored> {
  return (await readHistoryToCopy(historySourceOf(ctx, []))).restored;
}
