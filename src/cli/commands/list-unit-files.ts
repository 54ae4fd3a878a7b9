import type { Machine, Unit } from '../../gen/flotilla/v1/flotilla';
import { listAllUnits } from '../cluster-data';
import type { Command, Context } from '../command';
import { err, fieldsFlag, isFull, printList } from '../command';
import { errorMessage } from '../errors';
import { LIST_UNIT_FILES_FIELDS, selectFields } from '../fields';
import { dash, formatHash, machineFullLegend } from '../format';
import { failureText } from '../wait';

type Field = (u: Unit, full: boolean, machines: ReadonlyMap<string, Machine>) => string;

const target: Field = (u, full, machines) => {
  if (u.global) return 'global';
  if (!u.targetMachine) return '-';
  return machineFullLegend({ id: u.targetMachine, ip: machines.get(u.targetMachine)?.ip }, full);
};

const FIELDS: Record<string, Field> = {
  unit: (u) => u.name,
  hash: (u, full) => formatHash(u.hash, full),
  dstate: (u) => dash(u.targetState),
  // fleet showed no aggregate state for a global unit: it has one per machine (list-units).
  state: (u) => (u.global ? '-' : dash(u.currentState)),
  target,
  tmachine: target,
  desc: (u) => dash(u.description),
  global: (u) => String(u.global),
  // Why not running: the scheduler's reason for not placing it, and its last failure.
  reason: (u) => dash(u.reason),
  failure: (u) => (u.lastFailure ? failureText(u.lastFailure) : '-'),
};

export const listUnitFiles: Command = {
  name: 'list-unit-files',
  summary: 'List the units that exist in the cluster',
  usage: '[--no-legend] [-l|--full] [--fields=LIST] [--json]',
  description: `Lists every unit in the cluster, loaded onto a machine or not, sorted by name.
DSTATE is the target state, STATE the current state, TARGET the machine the unit is
scheduled to ("global" for global units, "-" when unscheduled). REASON is why the scheduler
cannot place it, FAILURE its last failure (systemd's result and exit status).

Valid fields: ${LIST_UNIT_FILES_FIELDS.valid.join(',')} (default ${LIST_UNIT_FILES_FIELDS.defaults}).`,
  async run(ctx: Context): Promise<number> {
    const cols = selectFields(fieldsFlag(ctx), LIST_UNIT_FILES_FIELDS);
    if (cols.includes('tmachine')) {
      err(ctx, 'WARNING: The "tmachine" field is deprecated. Use "target" instead');
    }
    let units: Unit[];
    let machines = new Map<string, Machine>();
    try {
      const api = ctx.api();
      const needMachines = cols.includes('target') || cols.includes('tmachine');
      const [us, ms] = await Promise.all([
        listAllUnits(api, true),
        needMachines ? api.listMachines({}) : Promise.resolve({ machines: [] }),
      ]);
      units = us;
      machines = new Map(ms.machines.map((m) => [m.id, m]));
    } catch (e) {
      err(ctx, `Error retrieving list of units from repository: ${errorMessage(e)}`);
      return 1;
    }
    units.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const full = isFull(ctx);
    printList(
      ctx,
      cols,
      units.map((u) => cols.map((c) => FIELDS[c](u, full, machines))),
      units.map((u) => {
        const row: Record<string, unknown> = {};
        for (const c of cols) {
          const v = FIELDS[c](u, true, machines);
          row[c] = c === 'global' ? u.global : v === '-' ? null : v;
        }
        return row;
      }),
    );
    return 0;
  },
};
