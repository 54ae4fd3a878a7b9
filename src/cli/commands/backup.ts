import fs from 'node:fs';
import type { Command, Context } from '../command';
import { err, out } from '../command';
import { CliError, errorMessage } from '../errors';
import { flagBool, flagString } from '../args';
import { historyIndex, parseHistory } from '../../history/export-format';
import { writeHistoryFile } from '../../history/export';
import type { RestoreTarget, restoreHistory as RestoreHistory } from '../../history/restore';
import type { RawRestored, Restored } from '../../store/types';
import { readStoreToCopy } from '../history-source';
import { STORE_FLAGS, etcdOptionsFromFlags } from './replay';

export const backup: Command = {
  name: 'backup',
  summary: "Write the cluster's durable state (snapshot and retained log) to a file",
  usage: 'FILE [--etcd-servers=URLS --cluster=NAME | --data-dir=DIR]',
  description: `Online: reads the store while the cluster runs, at one etcd revision, so the file
holds the durable state at one log index. The file is the versioned history format
(src/history/export-format.ts): a header (format version, cluster, index range, snapshot digest),
the latest snapshot, the retained events, and an end line. Restore it with 'flotilla restore'.`,
  flags: STORE_FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length !== 1) throw new CliError('One backup file must be provided');
    const file = ctx.args[0];
    let r: Restored | RawRestored;
    try {
      r = await readStoreToCopy(ctx);
    } catch (e) {
      err(ctx, `Error reading the store: ${errorMessage(e)}`);
      return 1;
    }
    const cluster = flagString(ctx.parsed, 'data-dir') ? 'dev' : flagString(ctx.parsed, 'cluster');
    if (!r.snapshot && r.tail.length === 0) {
      err(ctx, `Error: the store of cluster ${cluster} is empty; nothing to back up`);
      return 1;
    }
    let bytes: number;
    try {
      bytes = writeHistoryFile(file, r, cluster).bytes;
    } catch (e) {
      err(ctx, `Error writing ${file}: ${errorMessage(e)}`);
      return 1;
    }
    const index = Math.max(r.tail.at(-1)?.index ?? 0, r.snapshot?.index ?? 0);
    out(
      ctx,
      `Backup of cluster ${cluster} at index ${index} written to ${file} ` +
        `(${r.snapshot ? `snapshot at ${r.snapshot.index}, ` : ''}${r.tail.length} events, ${bytes} bytes)`,
    );
    return 0;
  },
};

export const restore: Command = {
  name: 'restore',
  summary: "Restore a backup into an empty store (offline: stop the cluster's daemons first)",
  usage: 'FILE --data-dir=DIR | --etcd-servers=URLS --cluster=NAME [--force]',
  description: `Writes a file made by 'flotilla backup' into a dev-mode data directory or an etcd
cluster prefix. Refuses a store that is not empty unless --force (which deletes what is there),
and an etcd cluster whose leader is alive in any case. The first leader elected on the restored
store has the same units, hashes and target states; machines and unit states come back from the
agents as they reconnect.`,
  flags: [
    ...STORE_FLAGS,
    { name: 'force', type: 'bool', default: false, help: 'Replace a store that is not empty' },
  ],
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length !== 1) throw new CliError('One backup file must be provided');
    const dataDir = flagString(ctx.parsed, 'data-dir');
    const toEtcd = ctx.parsed.given.has('etcd-servers');
    if (Boolean(dataDir) === toEtcd)
      throw new CliError(
        'Name exactly one target: --data-dir=DIR or --etcd-servers=URLS --cluster=NAME',
      );
    if (toEtcd && !ctx.parsed.given.has('cluster'))
      throw new CliError('--cluster=NAME is required with --etcd-servers');
    const file = ctx.args[0];
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      err(ctx, `Error reading ${file}: ${errorMessage(e)}`);
      return 1;
    }
    try {
      const h = parseHistory(text, file);
      const target: RestoreTarget = dataDir
        ? { kind: 'file', dataDir }
        : { kind: 'etcd', options: etcdOptionsFromFlags(ctx) };
      // Loaded here: it loads the etcd client, which every other command would pay for.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { restoreHistory } = require('../../history/restore') as {
        restoreHistory: typeof RestoreHistory;
      };
      const r = await restoreHistory(target, h, flagBool(ctx.parsed, 'force'));
      out(
        ctx,
        `Restored cluster ${h.header.cluster} at index ${historyIndex(h.header)} into ${r.where} ` +
          `(${r.snapshotIndex ? `snapshot at ${r.snapshotIndex}, ` : ''}${r.events} events)`,
      );
      return 0;
    } catch (e) {
      err(ctx, `Error restoring ${file}: ${errorMessage(e)}`);
      return 1;
    }
  },
};
