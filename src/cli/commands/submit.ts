import type { Command, Context } from '../command';
import { CliError } from '../errors';
import { createOrReport } from '../lifecycle';

export const submit: Command = {
  name: 'submit',
  summary: 'Upload one or more units to the cluster without starting them',
  usage: '[--replace] UNIT...',
  description: `Uploads unit files to the cluster (target state "inactive"). A unit already in the
cluster is left alone; if the local file differs, a warning says so, and --replace replaces
a unit whose target state is inactive. An instance (web@1.service) without a file of its own
uses its template, from the cluster or from web@.service next to the argument.`,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length === 0) throw new CliError('No units given');
    return (await createOrReport(ctx, 'submit')) ? 0 : 1;
  },
};
