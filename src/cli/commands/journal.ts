import type { FlagSpec } from '../args';
import { flagBool, flagNumber } from '../args';
import type { Unit } from '../../gen/flotilla/v1/flotilla';
import { getUnitOrUndefined } from '../cluster-data';
import type { Command, Context } from '../command';
import { err } from '../command';
import { CliError, errorMessage } from '../errors';
import { unitNameOf } from '../units';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'lines',
    short: 'n',
    type: 'int',
    default: 10,
    valueName: 'N',
    help: 'Number of recent log lines to print',
    check: (v) => (typeof v === 'number' && v < 0 ? 'must not be negative' : undefined),
  },
  {
    name: 'follow',
    short: 'f',
    type: 'bool',
    default: false,
    help: 'Keep printing new entries as they are appended to the journal',
  },
];

export const journal: Command = {
  name: 'journal',
  summary: 'Print the journal of a unit in the cluster to stdout',
  usage: '[--lines=N|-n N] [-f|--follow] UNIT',
  description: `Prints the last lines of a unit's journal from the machine it runs on (the agent
there answers; no SSH). --follow keeps printing until interrupted.`,
  flags: FLAGS,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length !== 1) throw new CliError('One unit file must be provided.');
    const name = unitNameOf(ctx.args[0]);
    const api = ctx.api();
    let u: Unit | undefined;
    try {
      u = await getUnitOrUndefined(api, name);
    } catch (e) {
      err(ctx, `Error retrieving unit ${name}: ${errorMessage(e)}`);
      return 1;
    }
    if (!u) {
      err(ctx, `Unit ${name} does not exist.`);
      return 1;
    }
    if (u.global) {
      err(ctx, `Unable to retrieve journal of global unit ${name}.`);
      return 1;
    }
    if ((u.currentState || 'inactive') === 'inactive') {
      err(ctx, `Unit ${name} does not appear to be running.`);
      return 1;
    }
    try {
      const req = {
        name,
        machineId: '',
        lines: flagNumber(ctx.parsed, 'lines'),
        follow: flagBool(ctx.parsed, 'follow'),
      };
      let endsWithNewline = true;
      try {
        for await (const chunk of api.unitJournal(req, ctx.signal)) {
          if (chunk.text === '') continue;
          ctx.io.stdout(chunk.text);
          endsWithNewline = chunk.text.endsWith('\n');
        }
      } finally {
        // journalctl ends every line; an agent's last chunk may not.
        if (!endsWithNewline) ctx.io.stdout('\n');
      }
      // Following never ends by itself: an end the user did not ask for (Ctrl-C) means the
      // daemon, or the agent of the unit's machine, went away.
      if (req.follow && !ctx.signal.aborted) {
        err(
          ctx,
          `Error following journal of unit ${name}: the stream ended (the daemon or the unit's agent went away)`,
        );
        return 1;
      }
    } catch (e) {
      // A follow ended by the daemon: the unit's machine was lost, the leader stepped down…
      const what = flagBool(ctx.parsed, 'follow') ? 'following' : 'retrieving';
      err(ctx, `Error ${what} journal of unit ${name}: ${errorMessage(e)}`);
      return 1;
    }
    return 0;
  },
};
