import type { FlagSpec } from '../args';
import { flagString } from '../args';
import type { Command, Context } from '../command';
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
  usage: `--format=mermaid|dot [${VIZ_MACHINE_NAMES.join('|')}]`,
  description: `With --format, prints the state machines drawn from their XState definitions
(states, nested states, events, guards, eventless and delayed transitions), so diagrams never
drift from the code: engine-unit (a unit's lifecycle on the leader), engine-machine (a machine's
presence), agent and agent-unit. The live visualizer is served by flotillad under /ui/ on its
http_listen address.`,
  flags: FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    const format = flagString(ctx.parsed, 'format');
    if (!format) throw new CliError('--format=mermaid|dot is required');
    ctx.io.stdout(renderDiagrams(format, ctx.args));
    return 0;
  },
};
