import type { Command, Context } from '../command';
import { changeTargetState } from '../transition';

export const unload: Command = {
  name: 'unload',
  summary: 'Unschedule one or more units in the cluster',
  usage: '[--no-block|--block-attempts=N] UNIT...',
  description: `Stops units and removes them from their machines (target state "inactive"); they
stay in the cluster and can be loaded or started again. Waits until each is inactive.`,
  run: (ctx: Context) =>
    changeTargetState(ctx, {
      verb: 'unload',
      target: 'inactive',
      summary: 'Successfully unloaded units',
    }),
};
