import { ClusterStatus } from '../../gen/flotilla/v1/flotilla';
import type { Command, Context } from '../command';
import { err, isFull, isJson } from '../command';
import { errorMessage } from '../errors';
import { machineIdLegend } from '../format';
import { formatTable } from '../tabwriter';

export const cluster: Command = {
  name: 'cluster',
  summary: 'Show the leader, its epoch and the log index',
  usage: '[-l|--full] [--json]',
  description: `Prints the elected leader (machine and address), the epoch (the leadership term),
the index of the newest event in the log and of the newest snapshot, and how many units and
machines the cluster has.`,
  async run(ctx: Context): Promise<number> {
    let s: ClusterStatus;
    try {
      s = await ctx.api().getClusterStatus({});
    } catch (e) {
      err(ctx, `Error retrieving cluster status: ${errorMessage(e)}`);
      return 1;
    }
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
    ctx.io.stdout(formatTable(rows));
    return 0;
  },
};
