import type { Command, Context } from '../command';
import { createAndSetTarget } from '../lifecycle';

export const start: Command = {
  name: 'start',
  summary:
    'Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary',
  usage: '[--no-block|--block-attempts=N] [--replace] UNIT...',
  description: `Submits units that are not in the cluster yet, sets their target state to "launched"
and waits until each runs on its machine, printing "Unit x launched on <machine>".
--no-block prints "Triggered unit x start" and returns; --block-attempts=N gives up after N
attempts of ~2 s. Global units are never waited on. Templates (web@.service) cannot be
started: start an instance (web@1.service).`,
  run: (ctx: Context) => createAndSetTarget(ctx, 'start', 'launched'),
};
