import type { Command, Context } from '../command';
import { changeTargetState } from '../transition';

export const stop: Command = {
  name: 'stop',
  summary: 'Instruct systemd to stop one or more units in the cluster',
  usage: '[--no-block|--block-attempts=N] UNIT...',
  description: `Stops units but keeps them loaded on their machines (target state "loaded"), waiting
until each is stopped. Global units are never waited on. A unit that is not loaded cannot be
stopped.`,
  run: (ctx: Context) =>
    changeTargetState(ctx, {
      verb: 'stop',
      target: 'loaded',
      refuseFrom: 'inactive',
      summary: 'Successfully stopped units',
    }),
};
