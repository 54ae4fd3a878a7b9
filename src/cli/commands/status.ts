import type { Unit, UnitFailure } from '../../gen/flotilla/v1/flotilla';
import { getUnitOrUndefined, listAllUnitStates, MachineCache } from '../cluster-data';
import type { Command, Context } from '../command';
import { err, isFull, isJson } from '../command';
import { CliError, errorMessage } from '../errors';
import { uniqueNames } from '../units';
import { failureText } from '../wait';

/** `exit-code, exit status 3 on 5c58e13d.../10.0.0.1 at 2026-12-06T19:09:02.307Z` */
async function failureLine(f: UnitFailure, machines: MachineCache): Promise<string> {
  const at = f.timeMs ? ` at ${new Date(Number(f.timeMs)).toISOString()}` : '';
  return `${failureText(f)} on ${await machines.legend(f.machineId, false)}${at}`;
}

interface StatusText {
  unit: string;
  machine: string;
  text: string;
}

export const status: Command = {
  name: 'status',
  summary: 'Output the status of one or more units in the cluster',
  usage: 'UNIT...',
  description: `Prints what systemctl status says about each unit on its machine. The agent on that
machine answers (no SSH). A global unit is shown for every machine it runs on.`,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length === 0) throw new CliError('No units given');
    const api = ctx.api();
    const names = uniqueNames(ctx.args);
    const units: Unit[] = [];
    const machines = new MachineCache(api);
    for (const name of names) {
      let u: Unit | undefined;
      try {
        u = await getUnitOrUndefined(api, name);
      } catch (e) {
        err(ctx, `Error retrieving Unit(${name}) from Registry: ${errorMessage(e)}`);
        return 1;
      }
      if (!u) {
        err(ctx, `Unit ${name} does not exist.`);
        return 1;
      }
      if (!u.global && (u.currentState || 'inactive') === 'inactive') {
        // Why not running: the scheduler's reason, and the last failure (issue 17, point 3).
        err(ctx, `Unit ${name} does not appear to be loaded.`);
        if (u.reason) err(ctx, `Not placed: ${u.reason}`);
        if (u.lastFailure) err(ctx, `Last failure: ${await failureLine(u.lastFailure, machines)}`);
        return 1;
      }
      units.push(u);
    }

    const results: StatusText[] = [];
    try {
      const globalRows = units.some((u) => u.global) ? await listAllUnitStates(api) : [];
      for (const u of units) {
        const on = u.global
          ? globalRows.filter((r) => r.name === u.name).map((r) => r.machineId)
          : [''];
        if (on.length === 0) {
          err(ctx, `Unit ${u.name} does not appear to be loaded.`);
          return 1;
        }
        for (const machineId of on) {
          const res = await api.unitStatus({ name: u.name, machineId });
          results.push({ unit: u.name, machine: res.machineId || machineId, text: res.text });
        }
      }
    } catch (e) {
      err(ctx, `Error retrieving status of units: ${errorMessage(e)}`);
      return 1;
    }

    if (isJson(ctx)) {
      ctx.io.stdout(`${JSON.stringify(results, null, 2)}\n`);
      return 0;
    }
    const full = isFull(ctx);
    const blocks: string[] = [];
    for (const r of results) {
      const text = r.text.endsWith('\n') ? r.text : `${r.text}\n`;
      const u = units.find((x) => x.name === r.unit);
      // A unit that failed and is running again (or failed again) says when it last failed.
      const last =
        u?.lastFailure && !u.global
          ? `Last failure: ${await failureLine(u.lastFailure, machines)}\n`
          : '';
      blocks.push(
        u?.global ? `Machine ${await machines.legend(r.machine, full)}:\n${text}` : text + last,
      );
    }
    // An empty line between units, as fleetctl printed to match systemctl status.
    ctx.io.stdout(blocks.join('\n'));
    return 0;
  },
};
