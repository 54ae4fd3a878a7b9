import { MachineCache } from '../cluster-data';
import type { Command, Context } from '../command';
import { blockAttempts, err, out, waitIO } from '../command';
import { errorMessage } from '../errors';
import { waitOrTrigger } from '../lifecycle';
import { findNamedUnits } from '../transition';
import { globalStartCounts, startCounts, waitForGlobalUnits, waitForUnitStates } from '../wait';

export const restart: Command = {
  name: 'restart',
  summary: 'Instruct systemd to restart one or more units in the cluster',
  usage: '[--no-block|--block-attempts=N] UNIT...',
  description: `Stops running units, waits until they are stopped (loaded), then starts them and waits
until they run again. Loaded units are just started. Global units are restarted on every
machine they run on. --no-block only skips waiting for the start.`,
  async run(ctx: Context): Promise<number> {
    const units = await findNamedUnits(ctx);
    if (!units) return 1;
    for (const u of units) {
      if (!u.global && (u.targetState || 'inactive') === 'inactive') {
        err(ctx, `Unable to restart unit ${u.name} in state inactive`);
        return 1;
      }
    }
    const api = ctx.api();
    // A stop must be seen to complete before the start, or the agent never sees it: the
    // wait for "loaded" happens even with --no-block.
    const attempts = Math.max(0, blockAttempts(ctx));
    const running = units.filter((u) => u.targetState === 'launched');
    try {
      if (running.length > 0) {
        await api.setTargetStates({ names: running.map((u) => u.name), targetState: 'loaded' });
      }
    } catch (e) {
      err(ctx, `Error stopping units: ${errorMessage(e)}`);
      return 1;
    }
    const io = waitIO(ctx);
    const stopErrors = [
      ...(await waitForUnitStates({
        api,
        names: running.filter((u) => !u.global).map((u) => u.name),
        target: 'loaded',
        attempts,
        machines: new MachineCache(api),
        io,
        signal: ctx.signal,
      })),
      ...(await waitForGlobalUnits({
        api,
        names: running.filter((u) => u.global).map((u) => u.name),
        target: 'loaded',
        attempts,
        io,
      })),
    ];
    for (const e of stopErrors) err(ctx, `Error waiting for units: ${e}`);
    if (stopErrors.length > 0) return 1;

    const local = units.filter((u) => !u.global).map((u) => u.name);
    const global = units.filter((u) => u.global).map((u) => u.name);
    let startsBefore: Map<string, number> | undefined;
    let globalBefore: Map<string, number> | undefined;
    try {
      // A unit that runs and exits (a oneshot) is back at loaded once it ran again: the wait
      // knows it by its start count going up (as `start` does).
      if (local.length > 0 && blockAttempts(ctx) >= 0) startsBefore = await startCounts(api, local);
      if (global.length > 0 && blockAttempts(ctx) >= 0)
        globalBefore = await globalStartCounts(api, global);
      await api.setTargetStates({ names: units.map((u) => u.name), targetState: 'launched' });
    } catch (e) {
      err(ctx, `Error starting units: ${errorMessage(e)}`);
      return 1;
    }
    let code = await waitOrTrigger(ctx, local, 'start', 'launched', undefined, startsBefore);
    if (blockAttempts(ctx) < 0) {
      for (const n of global) out(ctx, `Triggered global unit ${n} start`);
      return code;
    }
    const startErrors = await waitForGlobalUnits({
      api,
      names: global,
      target: 'launched',
      attempts,
      io,
      startsBefore: globalBefore,
    });
    for (const e of startErrors) err(ctx, `Error waiting for units: ${e}`);
    if (startErrors.length > 0) code = 1;
    if (code === 0) for (const u of units) out(ctx, `Unit(${u.name}) was restarted.`);
    return code;
  },
};
