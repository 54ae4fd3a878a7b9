import type { Command, Context } from '../command';
import { blockAttempts, err, out, waitIO } from '../command';
import { errorMessage } from '../errors';
import { findNamedUnits } from '../transition';
import { waitForUnitsGone } from '../wait';

export const destroy: Command = {
  name: 'destroy',
  summary: 'Destroy one or more units in the cluster',
  usage: '[--no-block|--block-attempts=N] UNIT...',
  description: `Removes units from the cluster completely; their machines stop them first.
Destroyed units cannot be started again unless submitted again. Names not in the cluster
are skipped.`,
  async run(ctx: Context): Promise<number> {
    const units = await findNamedUnits(ctx);
    if (!units) return 0;
    const api = ctx.api();
    let destroyed: string[];
    try {
      destroyed = (await api.destroyUnits({ names: units.map((u) => u.name) })).destroyed;
    } catch (e) {
      err(ctx, `Error destroying units: ${errorMessage(e)}`);
      return 1;
    }
    // fleetctl waited only with --no-block (an inverted test); Flotilla waits unless it is given.
    const attempts = blockAttempts(ctx);
    if (attempts >= 0) {
      const errors = await waitForUnitsGone({ api, names: destroyed, attempts, io: waitIO(ctx) });
      for (const e of errors) err(ctx, `Error destroying units: ${e}`);
      if (errors.length > 0) return 1;
    }
    for (const name of destroyed) out(ctx, `Destroyed ${name}`);
    return 0;
  },
};
