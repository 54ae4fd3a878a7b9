import fs from 'node:fs';
import path from 'node:path';
import type { nkeys as Nkeys } from 'nats';
import type { FlagSpec } from '../args';
import { flagString } from '../args';
import type { Command, Context } from '../command';
import { err, out } from '../command';
import { errorMessage } from '../errors';
import { type BusUser, checkToken, renderAuthorization } from '../../bus/authorization';

const FLAGS: readonly FlagSpec[] = [
  {
    name: 'cluster',
    type: 'string',
    default: 'default',
    valueName: 'NAME',
    help: "Cluster name (flotillad's cluster)",
  },
  {
    name: 'machines',
    type: 'string',
    default: '',
    valueName: 'IDS',
    help: 'Every machine ID of the cluster, comma-separated (/etc/machine-id of each)',
  },
  {
    name: 'agent-only',
    type: 'string',
    default: '',
    valueName: 'IDS',
    help: 'Machines that never campaign (disable_engine=true): agent rights only',
  },
  { name: 'out', type: 'string', default: '', valueName: 'DIR', help: 'Where to write' },
];

export const AUTH_FILE = 'flotilla-auth.conf';

const ids = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/**
 * A machine's seed: the one already in `file` (so adding machines keeps the others' keys), or a
 * new one written with mode 0600.
 */
function seedFor(file: string): { publicKey: string; created: boolean } {
  // Loaded here, not with every command: the nats client takes a fifth of a second to load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { nkeys } = require('nats') as { nkeys: typeof Nkeys };
  if (fs.existsSync(file)) {
    const seed = fs.readFileSync(file, 'utf8').trim();
    let kp;
    try {
      kp = nkeys.fromSeed(new TextEncoder().encode(seed));
    } catch (e) {
      throw new Error(`${file} exists but does not hold an NKey seed (${errorMessage(e)})`);
    }
    fs.chmodSync(file, 0o600);
    return { publicKey: kp.getPublicKey() as string, created: false };
  }
  const kp = nkeys.createUser();
  fs.writeFileSync(file, new TextDecoder().decode(kp.getSeed()) + '\n', { mode: 0o600 });
  return { publicKey: kp.getPublicKey() as string, created: true };
}

export const busAuth: Command = {
  name: 'bus-auth',
  summary: "Generate the NATS server's authorization and each machine's NKey seed",
  usage: '--cluster=NAME --machines=ID,ID,... [--agent-only=ID,...] --out=DIR',
  description: `Writes DIR/${AUTH_FILE}, the nats-server authorization block (one NKey user per
machine, with subject permissions: an agent speaks only for its own machine; only machines
that campaign for leadership may publish schedules and resyncs), and DIR/<machine>.nk, each
machine's NKey seed (mode 0600). Install <machine>.nk on that machine (e.g.
/etc/flotilla/nats.nk, mode 0600, owned by root) and set nats_nkey_seed_file to it; include
${AUTH_FILE} in nats-server.conf and reload the server. Run it again with more machines to
add them: seeds already in DIR are kept. See docs/security.md.`,
  flags: FLAGS,
  needsApi: false,
  async run(ctx: Context): Promise<number> {
    const cluster = flagString(ctx.parsed, 'cluster');
    const machines = ids(flagString(ctx.parsed, 'machines'));
    const agentOnly = ids(flagString(ctx.parsed, 'agent-only'));
    const dir = flagString(ctx.parsed, 'out');
    try {
      if (machines.length === 0) throw new Error('--machines is required (comma-separated IDs)');
      if (dir === '') throw new Error('--out is required (a directory)');
      checkToken(cluster, 'cluster');
      for (const m of machines) checkToken(m, 'machine');
      const unknown = agentOnly.filter((m) => !machines.includes(m));
      if (unknown.length > 0)
        throw new Error(`--agent-only names machines not in --machines: ${unknown.join(', ')}`);
      if (new Set(machines).size !== machines.length)
        throw new Error('--machines names a machine twice');
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const users: BusUser[] = [];
      for (const machine of machines) {
        const file = path.join(dir, `${machine}.nk`);
        const { publicKey, created } = seedFor(file);
        users.push({ machine, publicKey, engine: !agentOnly.includes(machine) });
        out(ctx, `${created ? 'wrote' : 'kept '} ${file}`);
      }
      const auth = path.join(dir, AUTH_FILE);
      fs.writeFileSync(auth, renderAuthorization(cluster, users));
      out(ctx, `wrote ${auth}`);
      out(ctx, '');
      out(ctx, `On the NATS server: include ${AUTH_FILE} in nats-server.conf, then reload it.`);
      out(ctx, 'On each machine: install DIR/<machine>.nk (mode 0600) and set');
      out(ctx, '  nats_nkey_seed_file=/etc/flotilla/nats.nk');
      if (agentOnly.length > 0)
        out(ctx, `and on ${agentOnly.join(', ')}: disable_engine=true (agent-only credentials).`);
      return 0;
    } catch (e) {
      err(ctx, `Error generating the bus authorization: ${errorMessage(e)}`);
      return 1;
    }
  },
};
