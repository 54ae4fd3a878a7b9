/**
 * PATCH /fleet/v1/machines on a real cluster (etcd, NATS, two flotillad, each serving fleet's
 * API on its own unix socket), sent with curl and read back with the original fleetctl v1.0:
 * removing a key the machine's agent reports hides it (fleet v1.0 recorded the removal the same
 * way), durably — a new leader, restored from etcd, still hides it — until it is added again.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectApi } from '../../src/api/client';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { fleetctl, fleetctlPath, rows } from '../helpers/fleetctl';

jest.setTimeout(120_000);

let dir: string;
let cluster: TestCluster;
const socks: string[] = [];

/** curl -X PATCH of a JSON Patch body on node `i`'s fleet API socket: the HTTP status. */
function curlPatch(i: number, ops: object[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      [
        '-sS',
        '--unix-socket',
        socks[i],
        '-X',
        'PATCH',
        '-H',
        'Content-Type: application/json',
        '-d',
        JSON.stringify(ops),
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'http://localhost/fleet/v1/machines',
      ],
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** `fleetctl list-machines --full` through node `i`'s fleet API: machine ID → METADATA column. */
async function listed(i: number): Promise<Record<string, string>> {
  const r = await fleetctl(`unix://${socks[i]}`, [
    'list-machines',
    '--full',
    '--no-legend',
    '--fields',
    'machine,metadata',
  ]);
  if (r.code !== 0) throw new Error(`fleetctl exited ${r.code}\n${r.stdout}${r.stderr}`);
  return Object.fromEntries(rows(r.stdout).map(([m, md]) => [m, md ?? '']));
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never: ${what} (last error: ${String(last)})`);
}

beforeAll(async () => {
  expect(fs.existsSync(fleetctlPath())).toBe(true);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleet-md-'));
  socks.push(path.join(dir, 'fleet0.sock'), path.join(dir, 'fleet1.sock'));
  cluster = await startCluster({
    agentTtl: '4s',
    nodes: socks.map((s, i) => ({
      metadata: { role: i === 0 ? 'web' : 'db', region: 'east' },
      flags: ['--fleet-api-listen', `unix://${s}`],
    })),
  });
  await eventually('both machines listed', async () =>
    Object.keys(await listed(0)).length === 2 ? true : undefined,
  );
});

afterAll(async () => {
  await cluster?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('removing a key the agent reports hides it, through a failover, until it is added again', async () => {
  const [a, b] = cluster.nodes.map((n) => n.machineId);
  expect(await listed(0)).toEqual({ [a]: 'region=east,role=web', [b]: 'region=east,role=db' });

  // One request, both machines: the agents' `role` removed.
  expect(
    await curlPatch(0, [
      { op: 'remove', path: `/${a}/metadata/role` },
      { op: 'remove', path: `/${b}/metadata/role` },
    ]),
  ).toBe('204');
  const hidden = { [a]: 'region=east', [b]: 'region=east' };
  expect(await listed(0)).toEqual(hidden);
  expect(await listed(1)).toEqual(hidden);

  // The leader stops; the other daemon leads from what etcd holds: the removal is replayed.
  const first = connectApi(cluster.nodes[0].endpoint);
  const status = await first.getClusterStatus({}).finally(() => first.close());
  const leader = cluster.nodes.findIndex((n) => n.machineId === status.leaderMachineId);
  expect(leader).toBeGreaterThanOrEqual(0);
  const survivor = 1 - leader;
  const epoch = status.epoch;
  expect(await cluster.nodes[leader].stop()).toBe(0);
  const api = connectApi(cluster.nodes[survivor].endpoint);
  await eventually('a new leader', async () => {
    const s = await api.getClusterStatus({});
    return s.epoch > epoch && s.leaderMachineId === cluster.nodes[survivor].machineId
      ? true
      : undefined;
  });
  api.close();
  const me = cluster.nodes[survivor].machineId;
  const after = await eventually('the survivor listed', async () => (await listed(survivor))[me]);
  expect(after).toBe('region=east');

  // Added again: the API's value; removed again: hidden again.
  expect(
    await curlPatch(survivor, [{ op: 'add', path: `/${me}/metadata/role`, value: 'cache' }]),
  ).toBe('204');
  expect((await listed(survivor))[me]).toBe('region=east,role=cache');
  expect(await curlPatch(survivor, [{ op: 'remove', path: `/${me}/metadata/role` }])).toBe('204');
  expect((await listed(survivor))[me]).toBe('region=east');
});
