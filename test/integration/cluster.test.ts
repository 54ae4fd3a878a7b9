import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, tableObjects, type CliResult } from '../helpers/cli';
import { mainPid, startCluster, type DaemonNode, type TestCluster } from '../helpers/cluster';

/**
 * Three flotillad processes on one host, each with its own machine ID and its own systemd user
 * manager, on real etcd and NATS — driven only through the `flotilla` CLI.
 */
jest.setTimeout(120_000);

let cluster: TestCluster;
let dir: string;

const unitFile = (name: string, body: string): string => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body);
  return file;
};
const SLEEP = '[Service]\nExecStart=/bin/sleep 1000\n';

async function cli(args: string[], expectCode = 0): Promise<CliResult> {
  const endpoint = cluster.endpoints()[0];
  const r = await runCli(args, { endpoint, cwd: dir, timeoutMs: 60_000 });
  if (r.code !== expectCode) {
    throw new Error(
      `flotilla ${args.join(' ')} exited ${r.code} (want ${expectCode})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
  return r;
}

/** unit -> machine ID prefix (8 chars) from `list-units`. */
async function placements(): Promise<Map<string, string[]>> {
  const r = await cli(['list-units', '--full', '--no-legend', '--fields', 'unit,machine,active']);
  const out = new Map<string, string[]>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [unit, machine, active] = line.split(/\t+/);
    if (active !== 'active') continue;
    const id = machine.split('/')[0];
    out.set(unit, [...(out.get(unit) ?? []), id]);
  }
  return out;
}

function nodeOf(machineId: string): DaemonNode {
  const n = cluster.nodes.find((x) => x.machineId === machineId);
  if (!n) throw new Error(`no node with machine ID ${machineId}`);
  return n;
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-units-'));
  cluster = await startCluster({
    systemd: true,
    nodes: [
      { metadata: { region: 'east', disk: 'ssd' } },
      { metadata: { region: 'west' } },
      { metadata: { region: 'west', disk: 'ssd' } },
    ],
  });
  await waitFor('three machines', async () => {
    const r = await cli(['list-machines', '--no-legend']);
    return r.stdout.trim().split('\n').filter(Boolean).length === 3;
  });
});

afterAll(async () => {
  await cluster?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a three-machine cluster through the CLI', () => {
  it('lists the three machines with their metadata', async () => {
    const r = await cli(['list-machines', '--full']);
    const rows = tableObjects(r.stdout);
    expect(rows.map((x) => x.machine).sort()).toEqual(cluster.nodes.map((n) => n.machineId).sort());
    const east = rows.find((x) => x.machine === cluster.nodes[0].machineId)!;
    expect(east.metadata).toBe('disk=ssd,region=east');
  });

  it('submits, loads, starts, stops, unloads and destroys a unit, observed through systemd', async () => {
    const file = unitFile('life.service', SLEEP);
    expect((await cli(['submit', file])).stdout).toBe('Unit life.service inactive\n');
    let files = tableObjects((await cli(['list-unit-files'])).stdout);
    expect(files.find((f) => f.unit === 'life.service')).toMatchObject({
      dstate: 'inactive',
      target: '-',
    });

    const loaded = await cli(['load', 'life.service']);
    expect(loaded.stdout).toMatch(
      /^Unit life\.service loaded on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/,
    );

    const started = await cli(['start', 'life']);
    expect(started.stdout).toMatch(
      /^Unit life\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/,
    );
    const on = (await placements()).get('life.service')!;
    expect(on).toHaveLength(1);
    const node = nodeOf(on[0]);
    const pid = await mainPid(node, 'life.service');
    expect(pid).toBeGreaterThan(0);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('/bin/sleep');

    expect((await cli(['cat', 'life.service'])).stdout).toBe(SLEEP);

    const stopped = await cli(['stop', 'life.service']);
    expect(stopped.stderr).toContain('Successfully stopped units [life.service].');
    expect(await mainPid(node, 'life.service')).toBe(0);

    const unloaded = await cli(['unload', 'life.service']);
    expect(unloaded.stderr).toContain('Successfully unloaded units [life.service].');
    files = tableObjects((await cli(['list-unit-files'])).stdout);
    expect(files.find((f) => f.unit === 'life.service')).toMatchObject({ dstate: 'inactive' });

    expect((await cli(['destroy', 'life.service'])).stdout).toBe('Destroyed life.service\n');
    files = tableObjects((await cli(['list-unit-files'])).stdout);
    expect(files.find((f) => f.unit === 'life.service')).toBeUndefined();
  });

  it('keeps the cluster copy unless --replace, and replaces with it', async () => {
    const file = unitFile('rep.service', SLEEP);
    await cli(['start', 'rep.service']);
    fs.writeFileSync(file, '[Service]\nExecStart=/bin/sleep 2000\n');
    const warn = await cli(['start', 'rep.service']);
    expect(warn.stderr).toContain(
      'WARNING: Unit rep.service in registry differs from local unit file rep.service. Add --replace to override.',
    );
    expect((await cli(['cat', 'rep.service'])).stdout).toBe(SLEEP);
    await cli(['start', '--replace', 'rep.service']);
    expect((await cli(['cat', 'rep.service'])).stdout).toBe(
      '[Service]\nExecStart=/bin/sleep 2000\n',
    );
    const node = nodeOf((await placements()).get('rep.service')![0]);
    const pid = await waitFor('the replaced unit to run the new command', async () => {
      const p = await mainPid(node, 'rep.service');
      return p > 0 && fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('2000')
        ? p
        : undefined;
    });
    expect(pid).toBeGreaterThan(0);
    await cli(['destroy', 'rep.service']);
  });

  it('instantiates a template from a local file', async () => {
    unitFile(
      'tpl@.service',
      '[Unit]\nDescription=instance %i\n\n[Service]\nExecStart=/bin/sleep 1000\n',
    );
    const r = await cli(['start', 'tpl@1.service', 'tpl@2.service']);
    expect(r.stdout).toMatch(/Unit tpl@1\.service launched on/);
    expect(r.stdout).toMatch(/Unit tpl@2\.service launched on/);
    const refused = await cli(['start', 'tpl@.service'], 1);
    expect(refused.stderr).toContain('cannot activate template "tpl@.service"');
    await cli(['destroy', 'tpl@1.service', 'tpl@2.service']);
  });

  it('spreads Conflicts units, co-locates MachineOf, honours MachineMetadata, MachineID and Global', async () => {
    for (const i of [1, 2, 3])
      unitFile(`spread${i}.service`, `${SLEEP}\n[X-Fleet]\nConflicts=spread*.service\n`);
    unitFile('follower.service', `${SLEEP}\n[X-Fleet]\nMachineOf=spread1.service\n`);
    unitFile('eastonly.service', `${SLEEP}\n[X-Fleet]\nMachineMetadata=region=east\n`);
    unitFile(
      'westssd.service',
      `${SLEEP}\n[X-Fleet]\nMachineMetadata=region=west\nMachineMetadata=disk=ssd\n`,
    );
    const pinned = cluster.nodes[1].machineId;
    unitFile('pinned.service', `${SLEEP}\n[X-Fleet]\nMachineID=${pinned.slice(0, 8)}\n`);
    unitFile('everywhere.service', `${SLEEP}\n[X-Fleet]\nGlobal=true\n`);
    await cli([
      'start',
      'spread1.service',
      'spread2.service',
      'spread3.service',
      'follower.service',
      'eastonly.service',
      'westssd.service',
      'pinned.service',
    ]);
    const g = await cli(['start', 'everywhere.service']);
    expect(g.stdout).toContain('Triggered global unit everywhere.service start');

    const p = await waitFor('the global unit on every machine', async () => {
      const m = await placements();
      return (m.get('everywhere.service') ?? []).length === 3 ? m : undefined;
    });
    const spread = ['spread1.service', 'spread2.service', 'spread3.service'].map(
      (u) => p.get(u)![0],
    );
    expect(new Set(spread).size).toBe(3);
    expect(p.get('follower.service')).toEqual(p.get('spread1.service'));
    expect(p.get('eastonly.service')).toEqual([cluster.nodes[0].machineId]);
    expect(p.get('westssd.service')).toEqual([cluster.nodes[2].machineId]);
    expect(p.get('pinned.service')).toEqual([pinned]);
    expect([...p.get('everywhere.service')!].sort()).toEqual(
      cluster.nodes.map((n) => n.machineId).sort(),
    );
    for (const n of cluster.nodes)
      expect(await mainPid(n, 'everywhere.service')).toBeGreaterThan(0);
  });

  it('adopts running units when a flotillad restarts (same main PIDs)', async () => {
    const node = cluster.nodes[2];
    const units = [...(await placements()).entries()]
      .filter(([, ms]) => ms.includes(node.machineId))
      .map(([u]) => u);
    expect(units.length).toBeGreaterThan(0);
    const before = await Promise.all(units.map((u) => mainPid(node, u)));
    expect(await node.stop()).toBe(0);
    // Units keep running while their daemon is down.
    expect(await Promise.all(units.map((u) => mainPid(node, u)))).toEqual(before);
    await node.start();
    await waitFor(
      'the agent to resync',
      async () =>
        (await placements()).size > 0 &&
        (await cli(['list-machines', '--no-legend'])).stdout.split('\n').filter(Boolean).length ===
          3,
    );
    expect(await Promise.all(units.map((u) => mainPid(node, u)))).toEqual(before);
  });

  it('while etcd is down: writes are refused, reads are served, units keep running; then writes resume', async () => {
    const before = new Map<string, number>();
    for (const [unit, ms] of await placements()) {
      for (const m of ms) before.set(`${unit}@${m}`, await mainPid(nodeOf(m), unit));
    }
    expect(before.size).toBeGreaterThan(0);
    const listing = (await cli(['list-unit-files', '--no-legend'])).stdout;
    await cluster.etcd.members[0].stop(true);
    try {
      unitFile('during.service', SLEEP);
      const refused = await cli(['submit', 'during.service'], 1);
      expect(refused.stderr).toMatch(/unavailable|unreachable|refused/i);
      // Past the election lease: the leader has lost its term, and still answers reads.
      await new Promise((r) => setTimeout(r, 3500));
      expect((await cli(['list-unit-files', '--no-legend'])).stdout).toBe(listing);
      expect((await cli(['submit', 'during.service'], 1)).code).toBe(1);
      for (const [key, pid] of before) {
        const [unit, m] = key.split('@');
        expect([key, await mainPid(nodeOf(m), unit)]).toEqual([key, pid]);
      }
    } finally {
      await cluster.etcd.members[0].start();
    }
    await waitFor('writes to be accepted again', async () => {
      const r = await runCli(['start', 'during.service'], {
        endpoint: cluster.endpoints()[0],
        cwd: dir,
        timeoutMs: 30_000,
      });
      return r.code === 0 && r.stdout.includes('launched on');
    });
    // Nothing was stopped or restarted by the outage or the new term.
    for (const [key, pid] of before) {
      const [unit, m] = key.split('@');
      expect([key, await mainPid(nodeOf(m), unit)]).toEqual([key, pid]);
    }
    expect((await cli(['list-unit-files', '--no-legend'])).stdout).toContain('during.service');
  });

  it('survives kill -9 of the leader: units keep running, a new leader takes writes', async () => {
    const leaderLine = (await cli(['cluster', '--full'])).stdout
      .split('\n')
      .find((l) => l.startsWith('Leader:'))!;
    const leader = cluster.nodes.find((n) => leaderLine.includes(n.machineId))!;
    expect(leader).toBeDefined();
    const byNode = new Map<DaemonNode, [string, number][]>();
    for (const [unit, ms] of await placements()) {
      for (const m of ms) {
        const n = nodeOf(m);
        byNode.set(n, [...(byNode.get(n) ?? []), [unit, await mainPid(n, unit)]]);
      }
    }
    await leader.kill();
    const others = cluster.nodes.filter((n) => n !== leader);
    const newLeader = await waitFor('a new leader', async () => {
      const r = await runCli(['cluster', '--full'], { endpoint: others[0].endpoint });
      const l = r.stdout.split('\n').find((x) => x.startsWith('Leader:'));
      return l && !l.includes(leader.machineId) ? l : undefined;
    });
    expect(newLeader).toBeDefined();
    // Every unit still runs with the same main PID, on every machine (the dead leader's too:
    // only its daemon died, not its systemd manager).
    for (const [n, list] of byNode) {
      for (const [unit, pid] of list) expect([unit, await mainPid(n, unit)]).toEqual([unit, pid]);
    }
    unitFile('after.service', SLEEP);
    const r = await runCli(['start', 'after.service'], {
      endpoint: others[0].endpoint,
      cwd: dir,
      timeoutMs: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^Unit after\.service inactive\nUnit after\.service launched on [0-9a-f]{8}\.\.\.\/127\.0\.0\.1\n$/,
    );
    await leader.start();
  });
});
