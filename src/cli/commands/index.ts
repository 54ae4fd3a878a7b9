import type { Command } from '../command';
import { backup, restore } from './backup';
import { busAuth } from './bus-auth';
import { cat } from './cat';
import { cluster } from './cluster';
import { destroy } from './destroy';
import { events } from './events';
import { help, registry, version } from './help';
import { journal } from './journal';
import { listMachines } from './list-machines';
import { listUnitFiles } from './list-unit-files';
import { listUnits } from './list-units';
import { load } from './load';
import { replay } from './replay';
import { restart } from './restart';
import { start } from './start';
import { status } from './status';
import { stop } from './stop';
import { submit } from './submit';
import { unload } from './unload';
import { viz } from './viz';

/** Every command, in the order help lists them (alphabetical, as fleetctl). */
export const COMMANDS: readonly Command[] = [
  backup,
  busAuth,
  cat,
  cluster,
  destroy,
  events,
  help,
  journal,
  listMachines,
  listUnitFiles,
  listUnits,
  load,
  replay,
  restart,
  restore,
  start,
  status,
  stop,
  submit,
  unload,
  version,
  viz,
];
registry.commands = COMMANDS;

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}
