import http from 'node:http';
import type { FlagSpec } from '../args';
import { flagString } from '../args';
import type { Command, Context } from '../command';
import { err, out } from '../command';
import { errorMessage } from '../errors';
import { offlineBackend } from '../../viz/backend';
import { VizServer } from '../../viz/server';
import type { Restored } from '../../store/types';
import { STORE_FLAGS } from './replay';
import { historySourceOf } from '../history-source';
import { readHistory } from '../../history/source';
import { CliError } from '../errors';
import { VIZ_MACHINE_NAMES, vizGraphs } from '../../viz/machines';
import { toDot, toMermaid } from '../../viz/render';

const FORMATS = ['mermaid', 'dot'];

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'format',
    type: 'string',
    default: '',
    valueName: 'mermaid|dot',
    help: "Print the machines' diagrams in this format instead of serving the visualizer",
    check: (v) => (v === '' || FORMATS.includes(String(v)) ? undefined : 'must be mermaid or dot'),
  },
  {
    name: 'listen',
    type: 'string',
    default: '127.0.0.1:0',
    valueName: 'HOST:PORT',
    help: 'Where to serve the visualizer of a history (default: a free loopback port)',
  },
  ...STORE_FLAGS,
];

/** The diagrams of the named machines (all when none is named), drawn from their definitions. */
export function renderDiagrams(format: string, names: readonly string[]): string {
  const graphs = vizGraphs();
  const unknown = names.filter((n) => !graphs.has(n));
  if (unknown.length > 0)
    throw new CliError(
      `unknown machine ${unknown.join(', ')} (known: ${VIZ_MACHINE_NAMES.join(', ')})`,
    );
  const render = format === 'dot' ? toDot : toMermaid;
  const picked = names.length > 0 ? names : VIZ_MACHINE_NAMES;
  return picked
    .map(
      (n) =>
        (picked.length > 1 && format === 'mermaid' ? `%% ${n}\n` : '') + render(graphs.get(n)!),
    )
    .join('\n');
}

export const viz: Command = {
  name: 'viz',
  summary: 'Draw the lifecycle machines, or serve the visualizer over an exported history',
  usage: `--format=mermaid|dot [${VIZ_MACHINE_NAMES.join('|')}] | [--listen=HOST:PORT] FILE | --data-dir=DIR | --etcd-servers=URLS --cluster=NAME`,
  description: `With --format, prints the state machines drawn from their XState definitions
(states, nested states, events, guards, eventless and delayed transitions), so diagrams never
drift from the code: engine-unit (a unit's lifecycle on the leader), engine-machine (a machine's
presence), agent and agent-unit.

Without --format, serves the visualizer over a cluster's retained history read offline (a FILE
written by 'flotilla events export' or 'flotilla backup', a dev-mode data directory, or etcd
read-only: nothing is written) on a local port: the same views as flotillad's /ui/, with the
scrubber over the whole history. No network access is needed: the page and its layouts are
served by this command. The live visualizer is served by
flotillad under /ui/ on its http_listen address.`,
  flags: FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    const format = flagString(ctx.parsed, 'format');
    if (format) {
      ctx.io.stdout(renderDiagrams(format, ctx.args));
      return 0;
    }
    if (
      ctx.args.length === 0 &&
      !ctx.parsed.given.has('data-dir') &&
      !ctx.parsed.given.has('etcd-servers')
    )
      throw new CliError(
        'give --format=mermaid|dot, or a history to serve: FILE, --data-dir DIR or --etcd-servers URLS',
      );
    const source = historySourceOf(ctx);
    let restored: Restored;
    try {
      restored = (await readHistory(source)).restored;
    } catch (e) {
      err(ctx, `Error reading the history: ${errorMessage(e)}`);
      return 1;
    }
    if (!restored.snapshot && restored.tail.length === 0) {
      err(ctx, 'Error: the store holds no cluster history (wrong --data-dir or --cluster?)');
      return 1;
    }
    return serveHistory(ctx, restored, flagString(ctx.parsed, 'listen'));
  },
};

/** Serves the visualizer over a history read once, until interrupted. */
async function serveHistory(ctx: Context, restored: Restored, listen: string): Promise<number> {
  const viz = new VizServer(offlineBackend(restored));
  const server = http.createServer((req, res) => {
    if (!viz.handle(req, res)) res.writeHead(302, { location: '/ui/' }).end();
  });
  const i = listen.lastIndexOf(':');
  const host = i > 0 ? listen.slice(0, i) : '127.0.0.1';
  const port = Number(listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CliError(`--listen: "${listen}" is not HOST:PORT`);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    err(ctx, `Error listening on ${listen}: ${errorMessage(e)}`);
    return 1;
  }
  const a = server.address();
  const url = `http://${host}:${a && typeof a === 'object' ? a.port : port}/ui/`;
  out(ctx, `Serving the visualizer of this history at ${url} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) return resolve();
    ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  viz.close();
  server.close();
  server.closeAllConnections();
  return 0;
}
