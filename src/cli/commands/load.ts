import type { Command, Context } from '../command';
import { createAndSetTarget } from '../lifecycle';

export const load: Command = {
  name: 'load',
  summary: 'Schedule one or more units in the cluster, first submitting them if necessary',
  usage: '[--no-block|--block-attempts=N] [--replace] UNIT...',
  description: `Submits units that are not in the cluster yet, sets their target state to "loaded"
and waits until each is loaded on its machine (--no-block: do not wait; --block-attempts=N:
give up after N attempts of ~2 s). Global units are never waited on.`,
  run: (ctx: Context) => createAndSetTarget(ctx, 'load', 'loaded'),
};
