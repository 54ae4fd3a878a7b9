import type { Unit } from '../../gen/flotilla/v1/flotilla';
import { getUnitOrUndefined, listAllUnitStates, MachineCache } from '../cluster-data';
import type { Command, Context } from '../command';
import { err, isFull, isJson } from '../command';
import { CliError, errorMessage } from '../errors';
import { uniqueNames } from '../units';

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
        err(ctx, `Unit ${name} does not appear to be loaded.`);
        return 1;
      }
      units.push(u);
    }

    const results: StatusText[] = [];
    const machines = new MachineCache(api);
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
      const global = units.find((u) => u.name === r.unit)?.global;
      blocks.push(global ? `Machine ${await machines.legend(r.machine, full)}:\n${text}` : text);
    }
    // An empty line between units, as fleetctl printed to match systemctl status.
    ctx.io.stdout(blocks.join('\n'));
    return 0;
  },
};
