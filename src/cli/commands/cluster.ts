import { ClusterStatus } from '../../gen/flotilla/v1/flotilla';
import type { FlagSpec } from '../args';
import { flagBool } from '../args';
import type { Command, Context } from '../command';
import { err, isFull, isJson } from '../command';
import { errorMessage } from '../errors';
import { machineIdLegend } from '../format';
import { formatTable } from '../tabwriter';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'resume',
    type: 'bool',
    default: false,
    help: 'Resume rescheduling held by the mass-loss guard: the machines held are declared lost',
  },
];

export const cluster: Command = {
  name: 'cluster',
  summary: 'Show the leader, its epoch and the log index',
  usage: '[-l|--full] [--json] [--resume]',
  description: `Prints the elected leader (machine and address), the epoch (the leadership term),
the index of the newest event in the log and of the newest snapshot, and how many units and
machines the cluster has. When the leader holds rescheduling because too many machines went
silent at once (the mass-loss guard, docs/reliability.md), it says so and names them; --resume
tells the leader to declare them lost and reschedule their units.`,
  flags: FLAGS,
  async run(ctx: Context): Promise<number> {
    let s: ClusterStatus;
    const resume = flagBool(ctx.parsed, 'resume');
    try {
      s = await ctx.api().getClusterStatus(resume ? { resumeRescheduling: true } : {});
    } catch (e) {
      err(ctx, `Error retrieving cluster status: ${errorMessage(e)}`);
      return 1;
    }
    if (resume && !isJson(ctx))
      ctx.io.stdout(
        s.resumed ? 'Rescheduling resumed\n' : 'Rescheduling was not held; nothing to resume\n',
      );
    if (isJson(ctx)) {
      ctx.io.stdout(`${JSON.stringify(ClusterStatus.toJSON(s), null, 2)}\n`);
      return 0;
    }
    const rows = [
      ['Leader:', s.leaderMachineId ? machineIdLegend(s.leaderMachineId, isFull(ctx)) : '-'],
      ['Address:', s.leaderAddress || '-'],
      ['Epoch:', String(s.epoch)],
      ['Log index:', String(s.logIndex)],
      ['Snapshot index:', String(s.snapshotIndex)],
      ['Units:', String(s.units)],
      ['Machines:', String(s.machines)],
    ];
    if (s.reschedulingHeld !== undefined)
      rows.push([
        'Rescheduling:',
        `HELD (mass-loss guard; silent: ${s.reschedulingHeld || '-'}; resume with --resume)`,
      ]);
    ctx.io.stdout(formatTable(rows));
    return 0;
  },
};
