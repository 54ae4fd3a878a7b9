import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
 * The original fleetctl v1.0.0, unchanged, against a real cluster: etcd, NATS and three
 * flotillad (each an engine candidate and an agent running units as child processes with the
 * process driver), fleet's API served by the first on a unix socket with `token_limit` 2 so
 * that every listing of more than two items is paged. Every wait is bounded by
 * `--block-attempts` and by the runner's timeout.
 */
jest.setTimeout(120_000);

let cluster: TestCluster;
let dir: string;
let endpoint: string;
const ids: string[] = [];

const fleetctl = (...args: string[]) => run(endpoint, args, { cwd: dir });

/** A unit file in the test's directory. */
function unitFile(name: string, body: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, body);
  return p;
}

const SLEEP = '[Service]\nExecStart=/bin/sleep 1000\n';

/** `list-units` rows of one unit: [unit, machine, active, sub]. */
async function unitRows(name: string): Promise<string[][]> {
  const r = await fleetctl('list-units', '--no-legend', '--full');
  expectOk(r);
  return rows(r.stdout).filter((x) => x[0] === name);
}

/** The machine (full ID) `list-units` shows a unit active on, once it is. */
async function activeOn(name: string): Promise<string> {
  return eventually(async () => {
    const r = await unitRows(name);
    return r.length === 1 && r[0][2] === 'active' ? r[0][1].split('/')[0] : undefined;
  });
}

beforeAll(async () => {
  expect(fs.existsSync(fleetctlPath())).toBe(true);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetctl-'));
  const sock = path.join(dir, 'fleet.sock');
  endpoint = `unix://${sock}`;
  cluster = await startCluster({
    driver: 'process',
    agentTtl: '4s',
    nodes: [
      {
        metadata: { role: 'web', region: 'east' },
        flags: ['--fleet-api-listen', endpoint, '--token-limit', '2'],
      },
      { metadata: { role: 'db', region: 'west' } },
      { metadata: { role: 'web', region: 'west' } },
    ],
  });
  for (const n of cluster.nodes) ids.push(n.machineId);
  // Every agent has joined.
  await machinesListed(endpoint, 3);
});

afterAll(async () => {
  await cluster?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('listing machines', () => {
  test('list-machines: legend, IP and sorted metadata; --full and --fields', async () => {
    const r = await fleetctl('list-machines');
    expectOk(r);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\t+/)).toEqual(['MACHINE', 'IP', 'METADATA']);
    const got = rows(lines.slice(1).join('\n'));
    const want = [
      [`${ids[0].slice(0, 8)}...`, '127.0.0.1', 'region=east,role=web'],
      [`${ids[1].slice(0, 8)}...`, '127.0.0.1', 'region=west,role=db'],
      [`${ids[2].slice(0, 8)}...`, '127.0.0.1', 'region=west,role=web'],
    ].sort((a, b) => a[0].localeCompare(b[0]));
    expect(got.sort((a, b) => a[0].localeCompare(b[0]))).toEqual(want);

    const full = await fleetctl('list-machines', '--full', '--no-legend', '--fields', 'machine');
    expect(full.code).toBe(0);
    expect(rows(full.stdout).flat().sort()).toEqual([...ids].sort());
  });
});

describe('a unit through every verb', () => {
  test('submit, list-unit-files, cat, load, start, list-units, stop, unload, destroy', async () => {
    const file = unitFile(
      'hello.service',
      '[Unit]\nDescription=Hello from fleetctl\n\n[Service]\nExecStart=/bin/sleep 1000\n',
    );

    let r = await fleetctl('submit', file);
    expectOk(r);
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state,desc');
    expectOk(r);
    expect(rows(r.stdout)).toContainEqual([
      'hello.service',
      'inactive',
      'inactive',
      'Hello from fleetctl',
    ]);

    r = await fleetctl('cat', 'hello.service');
    expectOk(r);
    expect(r.stdout).toBe(
      '[Unit]\nDescription=Hello from fleetctl\n\n[Service]\nExecStart=/bin/sleep 1000\n',
    );

    r = await fleetctl('load', '--block-attempts=20', 'hello.service');
    expectOk(r);
    expect(r.stdout).toMatch(/^Unit hello\.service loaded on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/);

    r = await fleetctl('start', '--block-attempts=20', 'hello.service');
    expectOk(r);
    expect(r.stdout).toMatch(/^Unit hello\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/);
    const machine = await activeOn('hello.service');
    expect(ids).toContain(machine);

    r = await fleetctl('list-units', '--no-legend');
    expect(rows(r.stdout)).toContainEqual([
      'hello.service',
      `${machine.slice(0, 8)}.../127.0.0.1`,
      'active',
      'running',
    ]);
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state,tmachine');
    expect(rows(r.stdout)).toContainEqual([
      'hello.service',
      'launched',
      'launched',
      `${machine.slice(0, 8)}.../127.0.0.1`,
    ]);

    r = await fleetctl('stop', '--block-attempts=20', 'hello.service');
    expectOk(r);
    expect(r.stdout).toMatch(/Unit hello\.service loaded on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1/);
    expect(r.stderr).toContain('Successfully stopped units [hello.service].');
    expect((await unitRows('hello.service'))[0].slice(2)).toEqual(['inactive', 'dead']);

    r = await fleetctl('stop', '--block-attempts=5', 'hello.service');
    expectOk(r); // already loaded: nothing to stop

    r = await fleetctl('unload', '--block-attempts=20', 'hello.service');
    expectOk(r);
    expect(r.stdout).toMatch(/Unit hello\.service inactive/);
    expect(r.stderr).toContain('Successfully unloaded units [hello.service].');

    r = await fleetctl('destroy', 'hello.service');
    expectOk(r);
    expect(r.stdout).toContain('Destroyed hello.service');
    await eventually(async () =>
      (await unitRows('hello.service')).length === 0 ? true : undefined,
    );
    r = await fleetctl('list-unit-files', '--no-legend');
    expect(rows(r.stdout).map((x) => x[0])).not.toContain('hello.service');

    r = await fleetctl('destroy', 'hello.service');
    expect(r.stdout + r.stderr).toContain('Units not found in registry');
  });

  test('errors: an unknown --fields key, a template started, a unit not found', async () => {
    let r = await fleetctl('list-units', '--fields', 'unit,nope');
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain('Invalid key in output format: "nope"');

    unitFile('tmpl@.service', SLEEP);
    r = await fleetctl('start', '--block-attempts=2', 'tmpl@.service');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('cannot activate template');
    await fleetctl('destroy', 'tmpl@.service');

    r = await fleetctl('start', '--block-attempts=2', 'no-such-file.service');
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('unable to find Unit(no-such-file.service)');
  });
});

describe('scheduling', () => {
  afterEach(async () => {
    // Each scenario leaves nothing behind for the next.
    const r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit');
    const names = rows(r.stdout).map((x) => x[0]);
    if (names.length > 0) await fleetctl('destroy', ...names);
  });

  test('Conflicts= spreads units over machines', async () => {
    const names = ['conf-a.service', 'conf-b.service', 'conf-c.service'];
    for (const n of names) unitFile(n, `${SLEEP}\n[X-Fleet]\nConflicts=conf-*.service\n`);
    const r = await fleetctl('start', '--block-attempts=20', ...names);
    expectOk(r);
    const machines = await Promise.all(names.map(activeOn));
    expect(new Set(machines).size).toBe(3);
  });

  test('MachineMetadata= with a specifier, MachineOf=, MachineID=', async () => {
    unitFile(
      'meta@.service',
      `${SLEEP}\n[X-Fleet]\nMachineMetadata=role=db\nMachineMetadata=region=%i\n`,
    );
    let r = await fleetctl('start', '--block-attempts=20', 'meta@west.service');
    expectOk(r);
    expect(await activeOn('meta@west.service')).toBe(ids[1]);

    unitFile('follower.service', `${SLEEP}\n[X-Fleet]\nMachineOf=meta@west.service\n`);
    unitFile('pinned.service', `${SLEEP}\n[X-Fleet]\nMachineID=${ids[2]}\n`);
    r = await fleetctl('start', '--block-attempts=20', 'follower.service', 'pinned.service');
    expectOk(r);
    expect(await activeOn('follower.service')).toBe(ids[1]);
    expect(await activeOn('pinned.service')).toBe(ids[2]);

    // No machine has role=db in region east: the unit waits, unscheduled.
    r = await fleetctl('start', '--block-attempts=2', 'meta@east.service');
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain(
      'timed out waiting for unit meta@east.service to report state launched',
    );
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state,tmachine');
    expect(rows(r.stdout)).toContainEqual(['meta@east.service', 'launched', 'inactive', '-']);
  });

  test('Global= runs on every matching machine; fleetctl does not wait for it', async () => {
    unitFile('everywhere.service', `${SLEEP}\n[X-Fleet]\nGlobal=true\n`);
    unitFile('webs.service', `${SLEEP}\n[X-Fleet]\nGlobal=true\nMachineMetadata=role=web\n`);
    const r = await fleetctl('start', '--block-attempts=20', 'everywhere.service', 'webs.service');
    expectOk(r);
    expect(r.stdout).toContain('Triggered global unit everywhere.service start');
    expect(r.stdout).toContain('Triggered global unit webs.service start');
    const on = async (name: string, n: number) =>
      eventually(async () => {
        const rs = await unitRows(name);
        return rs.length === n && rs.every((x) => x[2] === 'active')
          ? rs.map((x) => x[1].split('/')[0]).sort()
          : undefined;
      });
    expect(await on('everywhere.service', 3)).toEqual([...ids].sort());
    expect(await on('webs.service', 2)).toEqual([ids[0], ids[2]].sort());
    const files = await fleetctl(
      'list-unit-files',
      '--no-legend',
      '--fields',
      'unit,global,tmachine',
    );
    expect(rows(files.stdout)).toContainEqual(['webs.service', 'true', 'global']);
  });

  test('Replaces= takes the machine of the unit it replaces, which moves', async () => {
    unitFile('old.service', `${SLEEP}\n[X-Fleet]\nMachineMetadata=region=west\n`);
    let r = await fleetctl('start', '--block-attempts=20', 'old.service');
    expectOk(r);
    const first = await activeOn('old.service');
    const role = first === ids[1] ? 'db' : 'web';
    // Only the machine old.service runs on has this role in region west.
    unitFile(
      'new.service',
      `${SLEEP}\n[X-Fleet]\nReplaces=old.service\nMachineMetadata=region=west\nMachineMetadata=role=${role}\n`,
    );
    r = await fleetctl('start', '--block-attempts=20', 'new.service');
    expectOk(r);
    expect(await activeOn('new.service')).toBe(first);
    // The other machine of region west.
    expect(await activeOn('old.service')).toBe(first === ids[1] ? ids[2] : ids[1]);
  });

  test('pagination: listings of more items than token_limit are complete', async () => {
    const names = Array.from({ length: 7 }, (_, i) => `page-${i}.service`);
    for (const n of names) unitFile(n, SLEEP);
    let r = await fleetctl('submit', ...names);
    expectOk(r);
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit');
    expect(rows(r.stdout).map((x) => x[0])).toEqual(names);
    r = await fleetctl('start', '--block-attempts=20', ...names);
    expectOk(r);
    await eventually(async () => {
      const l = await fleetctl('list-units', '--no-legend', '--fields', 'unit,active');
      const got = rows(l.stdout);
      return got.length === 7 && got.every((x) => x[1] === 'active') ? true : undefined;
    });
    r = await fleetctl('list-machines', '--no-legend');
    expect(rows(r.stdout)).toHaveLength(3);
  });
});

describe('--replace', () => {
  /** The command line of the process the unit's process driver runs on `machine`, once it runs `want`. */
  async function runningCommand(name: string, want: string): Promise<string> {
    return eventually(async () => {
      for (const n of cluster.nodes) {
        const pidFile = path.join(n.dir, 'units', `${name}.pid`);
        if (!fs.existsSync(pidFile)) continue;
        const pid = parseInt(fs.readFileSync(pidFile, 'utf8'), 10);
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        if (cmd === want) return cmd;
      }
      return undefined;
    });
  }

  const version = (n: number) => `[Service]\nExecStart=/bin/sleep ${1000 + n}\n`;

  test('submit, load and start --replace replace the unit in the cluster; without it the cluster copy stays', async () => {
    const file = unitFile('rep.service', version(1));
    let r = await fleetctl('submit', file);
    expectOk(r);

    unitFile('rep.service', version(2));
    r = await fleetctl('submit', file);
    expectOk(r);
    expect(r.stderr).toContain(
      `WARNING: Unit rep.service in registry differs from local unit file ${file}. Add --replace to override.`,
    );
    expect((await fleetctl('cat', 'rep.service')).stdout).toBe(version(1));

    r = await fleetctl('submit', '--replace', file);
    expectOk(r);
    expect((await fleetctl('cat', 'rep.service')).stdout).toBe(version(2));
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate');
    expect(rows(r.stdout)).toContainEqual(['rep.service', 'inactive']);

    unitFile('rep.service', version(3));
    r = await fleetctl('load', '--replace', '--block-attempts=20', file);
    expectOk(r);
    expect((await fleetctl('cat', 'rep.service')).stdout).toBe(version(3));
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state');
    expect(rows(r.stdout)).toContainEqual(['rep.service', 'loaded', 'loaded']);

    unitFile('rep.service', version(4));
    r = await fleetctl('start', '--replace', '--block-attempts=20', file);
    expectOk(r);
    expect((await fleetctl('cat', 'rep.service')).stdout).toBe(version(4));
    expect(await runningCommand('rep.service', '/bin/sleep 1004')).toBe('/bin/sleep 1004');

    // A running unit replaced: its agent restarts it with the new file.
    unitFile('rep.service', version(5));
    r = await fleetctl('start', '--replace', '--block-attempts=20', file);
    expectOk(r);
    expect((await fleetctl('cat', 'rep.service')).stdout).toBe(version(5));
    expect(await runningCommand('rep.service', '/bin/sleep 1005')).toBe('/bin/sleep 1005');
    const hash = await eventually(async () => {
      const l = await fleetctl(
        'list-units',
        '--no-legend',
        '--full',
        '--fields',
        'unit,hash,active',
      );
      const row = rows(l.stdout).find((x) => x[0] === 'rep.service');
      return row && row[2] === 'active' ? row[1] : undefined;
    });
    const files = await fleetctl(
      'list-unit-files',
      '--no-legend',
      '--full',
      '--fields',
      'unit,hash',
    );
    expect(rows(files.stdout)).toContainEqual(['rep.service', hash]);

    await fleetctl('destroy', 'rep.service');
  });
});

describe('templates', () => {
  test("an instance started from a local template runs with systemd's specifiers expanded", async () => {
    unitFile('tick@.service', '[Service]\nExecStart=/bin/sleep 10%i\n');
    const r = await fleetctl('start', '--block-attempts=20', path.join(dir, 'tick@7.service'));
    expectOk(r);
    const machine = await activeOn('tick@7.service');
    const node = cluster.nodes[ids.indexOf(machine)];
    const pid = parseInt(
      fs.readFileSync(path.join(node.dir, 'units', 'tick@7.service.pid'), 'utf8'),
      10,
    );
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()).toBe(
      '/bin/sleep 107',
    );
    await fleetctl('destroy', 'tick@7.service', 'tick@.service');
  });
});

describe('a unit that fails', () => {
  test.each([
    ['fails.service', '[Service]\nExecStart=/bin/false\n'],
    ['oneshot-fails.service', '[Service]\nType=oneshot\nExecStart=/bin/false\n'],
  ])('a blocking start of %s ends non-zero: Failed to find an active unit', async (name, body) => {
    unitFile(name, body);
    const r = await fleetctl('start', '--block-attempts=20', name);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`Unit ${name.replace('.', '\\.')} launched on`));
    expect(r.stdout + r.stderr).toContain(`Failed to find an active unit ${name}`);
    const l = await unitRows(name);
    expect(l.map((x) => x.slice(2))).toEqual([['failed', 'failed']]);
    await fleetctl('destroy', name);
  });

  // fleet's agent reported `launched` once it had started a unit, so fleetctl's blocking start
  // of a unit that exits 0 at once (or fails exactly as it failed before) returned at once
  // too: "launched", then systemd's state, which is not active.
  test.each([
    ['exits0.service', '[Service]\nExecStart=/bin/true\n'],
    ['oneshot-ok.service', '[Service]\nType=oneshot\nExecStart=/bin/true\n'],
  ])(
    'a blocking start of %s (exits 0) returns as fleet did, not after --block-attempts',
    async (name, body) => {
      unitFile(name, body);
      const r = await fleetctl('start', '--block-attempts=20', name);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`Unit ${name.replace('.', '\\.')} launched on`));
      expect(r.stdout + r.stderr).toContain(`Failed to find an active unit ${name}`);
      expect(r.stdout + r.stderr).not.toContain('timed out waiting');
      expect((await unitRows(name)).map((x) => x.slice(2))).toEqual([['inactive', 'dead']]);
      await fleetctl('destroy', name);
    },
  );

  test('a unit failing again exactly as before is reported launched again', async () => {
    unitFile('again-fails.service', '[Service]\nExecStart=/bin/false\n');
    let r = await fleetctl('start', '--block-attempts=20', 'again-fails.service');
    expect(r.code).toBe(1);
    r = await fleetctl('stop', '--block-attempts=20', 'again-fails.service');
    expectOk(r);
    r = await fleetctl('start', '--block-attempts=20', 'again-fails.service');
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('Failed to find an active unit again-fails.service');
    expect(r.stdout + r.stderr).not.toContain('timed out waiting');
    await fleetctl('destroy', 'again-fails.service');
  });

  test('a unit stopped and started again is waited for until it runs', async () => {
    unitFile('again.service', SLEEP);
    let r = await fleetctl('start', '--block-attempts=20', 'again.service');
    expectOk(r);
    r = await fleetctl('stop', '--block-attempts=20', 'again.service');
    expectOk(r);
    r = await fleetctl('start', '--block-attempts=20', 'again.service');
    expectOk(r);
    expect((await unitRows('again.service'))[0][2]).toBe('active');
    await fleetctl('destroy', 'again.service');
  });
});

// Last: it kills a machine.
describe('a dead machine', () => {
  test('its rows expire with its TTL: a moved unit is listed once, a pinned one no longer runs', async () => {
    unitFile('moving.service', `${SLEEP}\n[X-Fleet]\nMachineMetadata=region=west\n`);
    let r = await fleetctl('start', '--block-attempts=20', 'moving.service');
    expectOk(r);
    const dead = await activeOn('moving.service');
    const survivor = dead === ids[1] ? ids[2] : ids[1];
    unitFile('pinned-dead.service', `${SLEEP}\n[X-Fleet]\nMachineID=${dead}\n`);
    r = await fleetctl('start', '--block-attempts=20', 'pinned-dead.service');
    expectOk(r);
    expect(await activeOn('pinned-dead.service')).toBe(dead);

    await cluster.nodes[ids.indexOf(dead)].kill();
    // Bounded by a few agent TTLs (4 s) and a leader election, should the leader have died.
    const listed = await eventually(async () => {
      const l = await fleetctl('list-units', '--no-legend', '--full');
      const got = rows(l.stdout);
      const moved = got.filter((x) => x[0] === 'moving.service');
      return got.every((x) => !x[1].startsWith(dead)) &&
        moved.length === 1 &&
        moved[0][1].startsWith(survivor) &&
        moved[0][2] === 'active'
        ? got
        : undefined;
    }, 30_000);
    expect(listed.filter((x) => x[0] === 'pinned-dead.service')).toEqual([]);
    r = await fleetctl('list-unit-files', '--no-legend', '--fields', 'unit,dstate,state');
    expect(rows(r.stdout)).toContainEqual(['pinned-dead.service', 'launched', 'inactive']);
    r = await fleetctl('list-machines', '--no-legend', '--full', '--fields', 'machine');
    expect(rows(r.stdout).flat().sort()).toEqual(ids.filter((id) => id !== dead).sort());
  });
});
