import type { FlagSpec } from './args';
import { flagString } from './args';
import type { Context } from './command';
import { CliError } from './errors';
import { etcdSecurityOf } from '../daemon/stores';
import type { HistorySource } from '../history/source';

/** Flags naming where a retained history is read from (replay, events export). */
export const HISTORY_SOURCE_FLAGS: readonly FlagSpec[] = [
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
  ...['etcd-cafile', 'etcd-certfile', 'etcd-keyfile', 'etcd-username', 'etcd-password'].map(
    (name): FlagSpec => ({
      name,
      type: 'string',
      default: '',
      valueName: name.endsWith('file') ? 'FILE' : 'VALUE',
      help: `etcd ${name.slice(5)} (TLS and auth, as flotillad's etcd_${name.slice(5)})`,
    }),
  ),
  {
    name: 'data-dir',
    type: 'string',
    default: '',
    valueName: 'DIR',
    help: "Read a dev-mode cluster's store (flotillad --dev --data-dir)",
  },
];

/** The history source a command's arguments name: FILE, --data-dir DIR, or etcd (the default). */
export function historySourceOf(ctx: Context, files: readonly string[] = ctx.args): HistorySource {
  const dataDir = flagString(ctx.parsed, 'data-dir');
  if (files.length > 1) throw new CliError('Give at most one history file.');
  if (files.length === 1 && dataDir)
    throw new CliError('Give a history file or --data-dir, not both.');
  if (files.length === 1) return { kind: 'file', file: files[0] };
  if (dataDir) return { kind: 'data-dir', dir: dataDir };
  return {
    kind: 'etcd',
    endpoints: flagString(ctx.parsed, 'etcd-servers').split(',').filter(Boolean),
    cluster: flagString(ctx.parsed, 'cluster'),
    ...etcdSecurityOf(
      {
        etcd_cafile: flagString(ctx.parsed, 'etcd-cafile'),
        etcd_certfile: flagString(ctx.parsed, 'etcd-certfile'),
        etcd_keyfile: flagString(ctx.parsed, 'etcd-keyfile'),
        etcd_username: flagString(ctx.parsed, 'etcd-username'),
        etcd_password: flagString(ctx.parsed, 'etcd-password'),
      },
      (key) => `--${key.replace(/_/g, '-')}`,
    ),
  };
}
