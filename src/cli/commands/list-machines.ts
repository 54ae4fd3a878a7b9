import type { Machine } from '../../gen/flotilla/v1/flotilla';
import type { Command, Context } from '../command';
import { err, fieldsFlag, isFull, printList } from '../command';
import { errorMessage } from '../errors';
import { LIST_MACHINES_FIELDS, selectFields } from '../fields';
import { dash, formatMetadata, machineIdLegend } from '../format';

type Field = (m: Machine, full: boolean) => string;

const FIELDS: Record<string, Field> = {
  machine: (m, full) => machineIdLegend(m.id, full),
  ip: (m) => dash(m.ip),
  metadata: (m) => formatMetadata(m.metadata),
};

export const listMachines: Command = {
  name: 'list-machines',
  summary: 'Enumerate the current hosts in the cluster',
  usage: '[--no-legend] [-l|--full] [--fields=LIST] [--json]',
  description: `Lists the machines currently in the cluster. Machines that left are not shown.

Valid fields: ${LIST_MACHINES_FIELDS.valid.join(',')} (default ${LIST_MACHINES_FIELDS.defaults}).`,
  async run(ctx: Context): Promise<number> {
    const cols = selectFields(fieldsFlag(ctx), LIST_MACHINES_FIELDS);
    let machines: Machine[];
    try {
      machines = (await ctx.api().listMachines({})).machines;
    } catch (e) {
      err(ctx, `Error retrieving list of active machines: ${errorMessage(e)}`);
      return 1;
    }
    machines.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const full = isFull(ctx);
    printList(
      ctx,
      cols,
      machines.map((m) => cols.map((c) => FIELDS[c](m, full))),
      machines.map((m) => {
        const row: Record<string, unknown> = {};
        for (const c of cols) {
          if (c === 'metadata') row[c] = { ...m.metadata };
          else {
            const v = FIELDS[c](m, true);
            row[c] = v === '-' ? null : v;
          }
        }
        return row;
      }),
    );
    return 0;
  },
};
