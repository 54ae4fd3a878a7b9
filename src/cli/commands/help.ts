import { flagUsage, GLOBAL_FLAGS, envName } from '../args';
import type { Command, Context } from '../command';
import { out } from '../command';
import { CliError } from '../errors';
import { formatTable } from '../tabwriter';
import { cliVersion } from '../../version';

/** Filled in by the registry (avoids an import cycle). */
export const registry: { commands: readonly Command[] } = { commands: [] };

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l ? `\t${l}` : l))
    .join('\n');
}

export function globalUsage(): string {
  const cmds = formatTable(registry.commands.map((c) => [c.name, c.summary]));
  const flags = formatTable(GLOBAL_FLAGS.map((f) => [flagUsage(f), f.help]));
  return `NAME:
\tflotilla - command-line interface to Flotilla, a cluster scheduler for systemd units

USAGE:
\tflotilla [global options] <command> [command options] [arguments...]

VERSION:
\t${cliVersion()}

COMMANDS:
${indent(cmds.trimEnd())}

GLOBAL OPTIONS:
${indent(flags.trimEnd())}

Every global option can also be set with FLOTILLA_<OPTION> (for example ${envName('endpoint')},
${envName('block-attempts')}); options given on the command line win.
Run "flotilla help <command>" for more information on a command.
`;
}

export function commandUsage(c: Command): string {
  let text = `NAME:\n\tflotilla ${c.name} - ${c.summary}\n\nUSAGE:\n\tflotilla ${c.name} ${c.usage}\n`;
  if (c.description) text += `\nDESCRIPTION:\n${indent(c.description)}\n`;
  if (c.flags && c.flags.length > 0) {
    text += `\nOPTIONS:\n${indent(formatTable(c.flags.map((f) => [flagUsage(f), f.help])).trimEnd())}\n`;
  }
  return text;
}

export const help: Command = {
  name: 'help',
  summary: 'Show a list of commands or help for one command',
  usage: '[COMMAND]',
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length === 0) {
      ctx.io.stdout(globalUsage());
      return 0;
    }
    const c = registry.commands.find((x) => x.name === ctx.args[0]);
    if (!c) throw new CliError(`Unknown command "${ctx.args[0]}". Run 'flotilla help' for usage.`);
    ctx.io.stdout(commandUsage(c));
    return 0;
  },
};

export const version: Command = {
  name: 'version',
  summary: 'Print the version and exit',
  usage: '',
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    out(ctx, `flotilla version ${cliVersion()}`);
    return 0;
  },
};
