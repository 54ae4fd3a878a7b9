import type { Unit } from '../../gen/flotilla/v1/flotilla';
import { Unit as UnitMessage } from '../../gen/flotilla/v1/flotilla';
import { serializeUnitFile } from '../../unit';
import { getUnitOrUndefined } from '../cluster-data';
import type { Command, Context } from '../command';
import { err, isJson } from '../command';
import { CliError, errorMessage } from '../errors';
import { unitNameOf } from '../units';

export const cat: Command = {
  name: 'cat',
  summary: 'Output the contents of a submitted unit',
  usage: 'UNIT',
  description: `Prints the unit file as the cluster holds it (its canonical form: comments and blank
lines are not kept). With --json, the unit as the API returns it.`,
  async run(ctx: Context): Promise<number> {
    if (ctx.args.length !== 1) throw new CliError('One unit file must be provided');
    const name = unitNameOf(ctx.args[0]);
    let u: Unit | undefined;
    try {
      u = await getUnitOrUndefined(ctx.api(), name);
    } catch (e) {
      err(ctx, `Error retrieving Unit ${name}: ${errorMessage(e)}`);
      return 1;
    }
    if (!u) {
      err(ctx, `Unit ${name} not found`);
      return 1;
    }
    if (isJson(ctx)) {
      ctx.io.stdout(`${JSON.stringify(UnitMessage.toJSON(u), null, 2)}\n`);
      return 0;
    }
    // No newline added: the output is the unit file, byte for byte (as fleetctl).
    ctx.io.stdout(serializeUnitFile(u.options));
    return 0;
  },
};
