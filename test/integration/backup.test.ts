import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, tableObjects, type CliResult } from '../helpers/cli';
import { startCluster, type TestCluster } from '../helpers/cluster';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * `flotilla backup` (online, from a running cluster) and `flotilla restore` (offline, into an
 * empty store) against real etcd and the file store: the restored cluster starts with the same
 * units, hashes and target states as at the backup, even after changes made since.
 */
jest.setTimeout(120_000);

let dir: string;
let cluster: TestCluster | undefined;
let dev: DevDaemon | undefined;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-backup-'));
  // Three units, three target states.
  fs.writeFileSync(path.join(dir, 'a.service'), '[Service]\nExecStart=/bin/sleep 1000\n');
  fs.writeFileSync(path.join(dir, 'b.service'), '[Service]\nExecStart=/bin/sleep 2000\n');
  fs.writeFileSync(path.join(dir, 'c.service'), '[Service]\nExecStart=/bin/sleep 3000\n');
});

afterAll(async () => {
  await dev?.stop();
  await cluster?.dispose();
  for (const d of ['dev1', 'dev2']) killDevUnits(path.join(dir, d));
  fs.rmSync(dir, { recursive: true, force: true });
});

const at = (endpoint: string) => (args: string[]) => runCli(args, { endpoint, cwd: dir });

function ok(r: CliResult): CliResult {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  return r;
}

/** unit → "hash dstate" as `list-unit-files --full` shows them. */
async function unitFiles(
  cli: (a: string[]) => Promise<CliResult>,
): Promise<Record<string, string>> {
  const rows = tableObjects(ok(await cli(['list-unit-files', '--full'])).stdout);
  return Object.fromEntries(rows.map((r) => [r.unit, `${r.hash} ${r.dstate}`]));
}

async function populate(cli: (a: string[]) => Promise<CliResult>): Promise<Record<string, string>> {
  ok(await cli(['start', '--no-block', 'a.service']));
  ok(await cli(['load', '--no-block', 'b.service']));
  ok(await cli(['submit', 'c.service']));
  const files = await unitFiles(cli);
  expect(Object.keys(files).sort()).toEqual(['a.service', 'b.service', 'c.service']);
  expect(files['a.service']).toMatch(/ launched$/);
  expect(files['b.service']).toMatch(/ loaded$/);
  expect(files['c.service']).toMatch(/ inactive$/);
  return files;
}

async function until<T>(f: () => Promise<T>, good: (v: T) => boolean, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let v = await f();
  while (!good(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    v = await f();
  }
  return v;
}

describe('flotilla backup and restore', () => {
  it('etcd: backs up a running cluster and restores it after the daemons stop', async () => {
    cluster = await startCluster({ nodes: [{}] });
    const node = cluster.nodes[0];
    const cli = at(node.endpoint);
    const before = await populate(cli);
    const etcd = [
      '--etcd-servers',
      cluster.etcd.endpoints.join(','),
      '--cluster',
      cluster.clusterName,
    ];
    const file = path.join(dir, 'etcd.backup');
    const b = ok(await cli(['backup', file, ...etcd]));
    expect(b.stdout).toMatch(/^Backup of cluster \S+ at index \d+ written to /);
    const header = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]);
    expect(header).toMatchObject({
      format: 'flotilla-history',
      version: 1,
      cluster: cluster.clusterName,
    });

    // events export copies the log as etcd holds it (unparsed): the same events, and a file
    // that replay reads and verifies.
    const exported = path.join(dir, 'etcd.history');
    ok(await cli(['events', 'export', exported, ...etcd]));
    ok(await cli(['replay', exported, '--verify']));
    const fromFile = ok(await cli(['replay', exported, '--events', '--json'])).stdout;
    const fromEtcd = ok(await cli(['replay', ...etcd, '--events', '--json'])).stdout;
    expect(fromFile.trim().split('\n').length).toBeGreaterThan(5);
    expect(fromFile).toBe(fromEtcd);
    // Without a store named, the leader exports it through the API: the same history.
    const viaApi = path.join(dir, 'api.history');
    const e = ok(await cli(['events', 'export', viaApi]));
    expect(e.stderr).toMatch(/^Exported \d+ events( and the snapshot at index \d+)? to /m);
    ok(await cli(['replay', viaApi, '--verify']));
    expect(ok(await cli(['replay', viaApi, '--events', '--json'])).stdout).toBe(fromEtcd);
    expect(JSON.parse(fs.readFileSync(viaApi, 'utf8').split('\n')[0])).toMatchObject({
      format: 'flotilla-history',
      cluster: cluster.clusterName,
    });

    // Changes after the backup are not in it.
    ok(await cli(['destroy', 'a.service']));
    ok(await cli(['stop', '--no-block', 'b.service']));
    await node.stop();

    // Offline restore: refused over the existing state, done with --force.
    const refused = await cli(['restore', file, ...etcd]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not empty .*--force/);
    const r = ok(await cli(['restore', file, ...etcd, '--force']));
    expect(r.stdout).toMatch(/^Restored cluster \S+ at index \d+ into etcd /);

    await node.start();
    const after = await until(
      () => unitFiles(cli).catch(() => ({}) as Record<string, string>),
      (f) => Object.keys(f).length === 3,
    );
    expect(after).toEqual(before);
  });

  it('file store: restores into an empty data directory, refuses a non-empty one', async () => {
    const dev1 = path.join(dir, 'dev1');
    fs.mkdirSync(dev1);
    dev = await startDevDaemon({ dir: dev1 });
    // The restored daemon comes back on the port the first one picked: the same endpoint.
    const port = dev.port;
    const cli = at(`127.0.0.1:${port}`);
    const before = await populate(cli);
    const file = path.join(dir, 'dev.backup');
    ok(await cli(['backup', file, '--data-dir', path.join(dev1, 'state')]));
    await dev.stop();
    dev = undefined;

    const refused = await cli(['restore', file, '--data-dir', path.join(dev1, 'state')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/is not empty/);

    const dev2 = path.join(dir, 'dev2');
    fs.mkdirSync(dev2);
    ok(await cli(['restore', file, '--data-dir', path.join(dev2, 'state')]));
    dev = await startDevDaemon({ dir: dev2, port });
    const after = await until(
      () => unitFiles(cli).catch(() => ({}) as Record<string, string>),
      (f) => Object.keys(f).length === 3,
    );
    expect(after).toEqual(before);
  });

  it('refuses a damaged backup, naming the line', async () => {
    const file = path.join(dir, 'etcd.backup');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const cut = path.join(dir, 'cut.backup');
    fs.writeFileSync(cut, lines.slice(0, -2).join('\n') + '\n');
    const r = await runCli(['restore', cut, '--data-dir', path.join(dir, 'dev3')], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cut\.backup:\d+: no end line: the file is truncated/);
    expect(fs.existsSync(path.join(dir, 'dev3', 'store'))).toBe(false);
  });
});
