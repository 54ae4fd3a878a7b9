import type { UnitState } from '../../gen/flotilla/v1/flotilla';
import { listAllUnitStates } from '../cluster-data';
import type { Command, Context } from '../command';
import { err, fieldsFlag, isFull, printList } from '../command';
import { errorMessage } from '../errors';
import { LIST_UNITS_FIELDS, selectFields } from '../fields';
import { dash, formatHash, machineFullLegend } from '../format';

type Field = (s: UnitState, full: boolean) => string;

const FIELDS: Record<string, Field> = {
  unit: (s) => dash(s.name),
  machine: (s, full) =>
    s.machineId ? machineFullLegend({ id: s.machineId, ip: s.machineIp }, full) : '-',
  active: (s) => dash(s.activeState),
  sub: (s) => dash(s.subState),
  load: (s) => dash(s.loadState),
  hash: (s, full) => formatHash(s.hash, full),
};

function byUnitThenMachine(a: UnitState, b: UnitState): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0;
}

export const listUnits: Command = {
  name: 'list-units',
  summary: 'List the current state of units in the cluster',
  usage: '[--no-legend] [-l|--full] [--fields=LIST] [--json]',
  description: `Lists the state of every unit loaded onto a machine: one row per unit and machine
(a global unit appears once per machine), sorted by unit then machine.

Valid fields: ${LIST_UNITS_FIELDS.valid.join(',')} (default ${LIST_UNITS_FIELDS.defaults}).`,
  async run(ctx: Context): Promise<number> {
    const cols = selectFields(fieldsFlag(ctx), LIST_UNITS_FIELDS);
    let states: UnitState[];
    try {
      states = await listAllUnitStates(ctx.api());
    } catch (e) {
      err(ctx, `Error retrieving list of units from repository: ${errorMessage(e)}`);
      return 1;
    }
    states.sort(byUnitThenMachine);
    const full = isFull(ctx);
    printList(
      ctx,
      cols,
      states.map((s) => cols.map((c) => FIELDS[c](s, full))),
      states.map((s) => jsonRow(cols, s)),
    );
    return 0;
  },
};

function jsonRow(cols: readonly string[], s: UnitState): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const c of cols) {
    const v = FIELDS[c](s, true);
    row[c] = v === '-' ? null : v;
  }
  return row;
}
