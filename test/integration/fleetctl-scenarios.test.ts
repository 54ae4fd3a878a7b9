import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, spawnCli } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import {
  eventually,
  expectOk,
  fleetctl as run,
  fleetctlPath,
  machinesListed,
  rows,
} from '../helpers/fleetctl';

/**
 * Scenarios of the independent check of the original fleetctl against Flotilla (issue 13), on
 * a real cluster (etcd, NATS, three flotillad running units as processes, fleet's API on the
 * first): templates with Conflicts globs, MachineMetadata with several values, MachineOf chains,
 * the legacy X-ConditionMachineID, specifiers, fleet's unit hash; and what that check found
 * hanging or silent: `stop`/`load` of a unit no machine takes, a displaced pinned unit without
 * a reason, unit types the process driver cannot run, `journal -f` of a unit whose machine is
 * killed. Every wait is bounded by `--block-attempts` and by the runners' timeouts.
 */
jest.setTimeout(120_000);

let cluster: TestCluster;
let dir: string;
let endpoint: string;
const ids: string[] = [];

const fleetctl = (...args: string[]) => run(endpoint, args, { cwd: dir });
const flotilla = (args: string[], at = cluster.nodes[0].endpoint) =>
  runCli(args, { endpoint: at, cwd: dir, mode: 'dist', timeoutMs: 40_000 });

function unitFile(name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, body);
  return p;
}

/** The machine (full ID) `list-units` shows a unit active on, once it is. */
function activeOn(name: string): Promise<string> {
  return eventually(async () => {
    const r = await fleetctl('list-units', '--no-legend', '--full');
    const mine = rows(r.stdout).filter((x) => x[0] === name);
    return mine.length === 1 && mine[0][2] === 'active' ? mine[0][1].split('/')[0] : undefined;
  });
}

beforeAll(async () => {
  expect(fs.existsSync(fleetctlPath())).toBe(true);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetctl-scen-'));
  endpoint = `unix://${path.join(dir, 'fleet.sock')}`;
  cluster = await startCluster({
    driver: 'process',
    agentTtl: '4s',
    nodes: [
      {
        metadata: { role: 'web', region: 'east', disk: 'ssd' },
        flags: ['--fleet-api-listen', endpoint, '--token-limit', '3'],
      },
      { metadata: { role: 'web', region: 'west', disk: 'hdd' } },
      { metadata: { role: 'db', region: 'west', disk: 'ssd' } },
    ],
  });
  for (const n of cluster.nodes) ids.push(n.machineId);
  await machinesListed(endpoint, 3);
});

afterAll(async () => {
  await cluster?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a template with a Conflicts glob: one instance per eligible machine, specifiers expanded, the third waits', async () => {
  unitFile(
    'api@.service',
    "[Unit]\nDescription=API %i\n\n[Service]\nExecStart=/bin/sh -c 'echo api %i unit=%n prefix=%p pct=%%; exec sleep 600'\n\n[X-Fleet]\nConflicts=api@*.service\nMachineMetadata=role=web\n",
  );
  expectOk(await fleetctl('submit', 'api@.service'));
  const r = await fleetctl(
    'start',
    '--block-attempts=5',
    'api@1.service',
    'api@2.service',
    'api@3.service',
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('timed out waiting for unit api@3.service to report state launched');
  const on = [await activeOn('api@1.service'), await activeOn('api@2.service')];
  expect(on.sort()).toEqual([ids[0], ids[1]].sort());
  const files = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,desc,target');
  // fleet printed Description= as written, without expanding it.
  expect(rows(files.stdout)).toContainEqual(['api@3.service', 'API %i', '-']);
  const node = cluster.nodes[ids.indexOf(on[0] === ids[0] ? ids[0] : ids[1])];
  const which = on[0] === node.machineId ? 1 : 2;
  const log = path.join(node.dir, 'units', `api@${which}.service.log`);
  await eventually(async () => (fs.existsSync(log) ? true : undefined));
  expect(fs.readFileSync(log, 'utf8')).toContain(
    `api ${which} unit=api@${which}.service prefix=api pct=%`,
  );
  await fleetctl('destroy', 'api@1.service', 'api@2.service', 'api@3.service', 'api@.service');
});

test('MachineMetadata with several values, a MachineOf chain, X-ConditionMachineID; fleet hashes', async () => {
  const sleep = (n: number) => `[Service]\nExecStart=/bin/sleep ${n}\n`;
  unitFile(
    'any.service',
    `${sleep(601)}\n[X-Fleet]\nMachineMetadata="region=east" "region=mars"\n`,
  );
  const chainA = `${sleep(602)}\n[X-Fleet]\nMachineMetadata=role=db\n`;
  unitFile('chain-a.service', chainA);
  unitFile('chain-b.service', `${sleep(603)}\n[X-Fleet]\nMachineOf=chain-a.service\n`);
  unitFile('chain-c.service', `${sleep(604)}\n[X-Fleet]\nMachineOf=chain-b.service\n`);
  unitFile('legacy.service', `${sleep(605)}\n[X-Fleet]\nX-ConditionMachineID=${ids[1]}\n`);
  const names = ['chain-c', 'chain-b', 'chain-a', 'any', 'legacy'].map((n) => `${n}.service`);
  expectOk(await fleetctl('start', '--block-attempts=15', ...names));
  expect(await activeOn('any.service')).toBe(ids[0]);
  for (const n of ['chain-a', 'chain-b', 'chain-c'])
    expect(await activeOn(`${n}.service`)).toBe(ids[2]);
  expect(await activeOn('legacy.service')).toBe(ids[1]);
  // fleet's hash: SHA-1 of the unit file as fleet serialises it.
  const serialized = '[Service]\nExecStart=/bin/sleep 602\n\n[X-Fleet]\nMachineMetadata=role=db\n';
  const r = await fleetctl('list-units', '--no-legend', '--full', '--fields', 'unit,load,hash');
  expect(rows(r.stdout)).toContainEqual([
    'chain-a.service',
    'loaded',
    createHash('sha1').update(serialized).digest('hex'),
  ]);
  await fleetctl('destroy', ...names);
});

test('flotilla stop and load of a unit no machine takes end non-zero, saying why, not for ever', async () => {
  unitFile(
    'mars.service',
    '[Service]\nExecStart=/bin/sleep 606\n\n[X-Fleet]\nMachineMetadata=region=mars\n',
  );
  let r = await flotilla(['start', '--no-block', 'mars.service']);
  expect(r.code).toBe(0);
  const why =
    'unit mars.service cannot be placed: no machine satisfies MachineMetadata region=mars';
  r = await flotilla(['stop', 'mars.service']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(why);
  r = await flotilla(['unload', 'mars.service']);
  expect(r.code).toBe(0);
  r = await flotilla(['load', 'mars.service']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(why);
  await fleetctl('destroy', 'mars.service');
});

test('Replaces= displacing a pinned unit: the displaced unit waits and says why', async () => {
  unitFile(
    'pinned.service',
    `[Service]\nExecStart=/bin/sleep 607\n\n[X-Fleet]\nMachineID=${ids[2]}\n`,
  );
  expectOk(await fleetctl('start', '--block-attempts=15', 'pinned.service'));
  unitFile(
    'taker.service',
    '[Service]\nExecStart=/bin/sleep 608\n\n[X-Fleet]\nReplaces=pinned.service\nMachineMetadata=role=db\n',
  );
  expectOk(await fleetctl('start', '--block-attempts=15', 'taker.service'));
  expect(await activeOn('taker.service')).toBe(ids[2]);
  const reason = await eventually(async () => {
    const l = await flotilla(['list-unit-files', '--no-legend', '--fields', 'unit,state,reason']);
    const row = l.stdout.split('\n').find((x) => x.startsWith('pinned.service'));
    return row && !/\t-$/.test(row) ? row : undefined;
  });
  expect(reason).toMatch(/inactive\t+MachineID=\S+ machine \S+: replaced by taker\.service$/);
  await fleetctl('destroy', 'pinned.service', 'taker.service');
});

// Targets and slices, which the process driver starts without a process, are in its unit test:
// neither fleetctl nor flotilla reads a .target file (fleet's list of types).
test('dev mode: a .device unit fails once, saying why, instead of being retried for ever', async () => {
  unitFile('disk.device', '[Unit]\nDescription=a disk\n');
  const r = await fleetctl('start', '--block-attempts=15', 'disk.device');
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('Failed to find an active unit disk.device');
  const l = await fleetctl('list-units', '--no-legend', '--fields', 'unit,active,sub');
  expect(rows(l.stdout)).toContainEqual(['disk.device', 'failed', 'failed']);
  const j = await flotilla(['journal', 'disk.device']);
  expectOk(j);
  expect(j.stdout).toContain(
    'the process driver runs services, targets and slices, not device units',
  );
  await fleetctl('destroy', 'disk.device');
});

// Last: it kills a machine.
test('journal -f through the leader ends non-zero once the unit machine is killed', async () => {
  const info = await flotilla(['cluster', '--json']);
  const leader = (JSON.parse(info.stdout) as { leaderMachineId: string }).leaderMachineId;
  const victim = ids.find((id) => id !== leader)!;
  unitFile(
    'talk.service',
    `[Service]\nExecStart=/bin/sh -c 'echo hello-follow; exec sleep 609'\n\n[X-Fleet]\nMachineID=${victim}\n`,
  );
  expectOk(await fleetctl('start', '--block-attempts=15', 'talk.service'));
  const at = cluster.nodes[ids.indexOf(leader)].endpoint;
  const follow = spawnCli(['journal', '-f', 'talk.service'], {
    endpoint: at,
    mode: 'dist',
    timeoutMs: 60_000,
  });
  await follow.waitForStdout(/hello-follow/);
  await cluster.nodes[ids.indexOf(victim)].kill();
  // Bounded by the agent TTL (4 s), the follow's 1 s check and the runner's timeout.
  const r = await follow.result;
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('Error following journal of unit talk.service');
  expect(r.stderr).toContain(`machine ${victim} was lost`);
});
