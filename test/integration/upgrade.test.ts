import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, tableObjects, type CliResult } from '../helpers/cli';
import { DaemonNode, startCluster, type TestCluster } from '../helpers/cluster';
import { buildPrevious, PREVIOUS_COMMIT } from '../helpers/previous-build';

/**
 * A rolling upgrade: a flotillad built from the previous commit (PREVIOUS_COMMIT, built into a
 * temp dir and cached there) and one built from this checkout run one cluster on real etcd and
 * NATS. Each version leads in turn (the other one's log and snapshot restored), writes go
 * through either, and the old machine finally comes back as the new version. docs/deployment.md
 * ("Rolling upgrades") says what the protocol and the schema guarantee.
 */
jest.setTimeout(600_000);

let cluster: TestCluster | undefined;
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-upgrade-'));
  for (const n of ['a', 'b', 'c', 'd'])
    fs.writeFileSync(
      path.join(dir, `${n}.service`),
      `[Service]\nExecStart=/bin/sleep ${n.charCodeAt(0)}\n`,
    );
});

afterAll(async () => {
  await cluster?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end)
      throw new Error(
        `timed out: ${what}\n${(cluster?.nodes ?? []).map((n) => `--- node ${n.index}\n${n.output.slice(-3000)}`).join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('rolling upgrade from the previous commit', () => {
  it('runs old and new daemons in one cluster, each leading in turn', async () => {
    const old = buildPrevious();
    // The documented procedure (docs/protocol.md, docs/deployment.md): new daemons speak the
    // shared v1 subjects too while an old leader may exist, then restart without it.
    const LEGACY = '--nats-legacy-subjects';
    cluster = await startCluster({ nodes: [{ script: old }, { flags: [LEGACY] }] });
    const [oldNode, newNode] = cluster.nodes;
    const cli = (n: DaemonNode, args: string[]): Promise<CliResult> =>
      runCli(args, { endpoint: n.endpoint, cwd: dir });
    const leaderOf = async (n: DaemonNode): Promise<string | undefined> => {
      const r = await cli(n, ['cluster', '--json']);
      return r.code === 0
        ? (JSON.parse(r.stdout).leaderMachineId as string) || undefined
        : undefined;
    };
    const files = async (n: DaemonNode): Promise<Record<string, string>> => {
      const r = await cli(n, ['list-unit-files', '--full']);
      if (r.code !== 0) throw new Error(r.stderr);
      return Object.fromEntries(
        tableObjects(r.stdout).map((u) => [u.unit, `${u.hash} ${u.dstate}`]),
      );
    };
    const activeOn = async (n: DaemonNode, count: number): Promise<true | undefined> => {
      const rows = tableObjects((await cli(n, ['list-units'])).stdout);
      return rows.filter((u) => u.active === 'active').length === count ? true : undefined;
    };

    await until('both machines seen', async () => {
      const r = await cli(newNode, ['list-machines']);
      return tableObjects(r.stdout).length === 2 ? true : undefined;
    });
    // Writes through each version, whoever leads.
    expect((await cli(oldNode, ['start', '--no-block', 'a.service', 'b.service'])).code).toBe(0);
    expect((await cli(newNode, ['start', '--no-block', 'c.service'])).code).toBe(0);
    await until('3 units active', () => activeOn(newNode, 3));
    const before = await files(newNode);
    expect(Object.keys(before)).toHaveLength(3);

    // Each version leads once: stop the leader, the other takes over from its log.
    for (let turn = 0; turn < 2; turn++) {
      const leader = await until('a leader', () => leaderOf(newNode.running ? newNode : oldNode));
      const [leading, other] =
        leader === oldNode.machineId ? [oldNode, newNode] : [newNode, oldNode];
      await leading.stop();
      await until('the other version leads', async () =>
        (await leaderOf(other)) === other.machineId ? true : undefined,
      );
      expect(await until('unit files', () => files(other))).toEqual(before);
      await leading.start();
      await until('both machines again', async () => {
        const r = await cli(other, ['list-machines']);
        return tableObjects(r.stdout).length === 2 ? true : undefined;
      });
    }
    expect((await cli(oldNode, ['start', '--no-block', 'd.service'])).code).toBe(0);
    await until('4 units active', () => activeOn(oldNode, 4));

    // The old machine upgraded (same machine ID and flags, this build, still with LEGACY); then
    // every daemon restarted without LEGACY.
    const again = (n: DaemonNode, index: number, args: string[]): DaemonNode =>
      new DaemonNode(index, n.machineId, n.grpcPort, args, n.env, n.dir);
    await oldNode.stop();
    const upgraded = again(oldNode, 2, [...oldNode.args, LEGACY]);
    cluster.nodes.push(upgraded);
    await upgraded.start();
    await until('4 units active after the upgrade', () => activeOn(upgraded, 4));
    for (const [i, n] of [upgraded, newNode].entries()) {
      await n.stop();
      const plain = again(
        n,
        3 + i,
        n.args.filter((a) => a !== LEGACY),
      );
      cluster.nodes.push(plain);
      await plain.start();
      await until('2 machines, 4 units active', async () => {
        const machines = tableObjects((await cli(plain, ['list-machines'])).stdout).length;
        return machines === 2 ? activeOn(plain, 4) : undefined;
      });
    }
    const after = await files(cluster.nodes.at(-1)!);
    expect(Object.keys(after).sort()).toEqual(['a.service', 'b.service', 'c.service', 'd.service']);
    for (const [u, v] of Object.entries(before)) expect(after[u]).toBe(v);
    expect(PREVIOUS_COMMIT).not.toBe('');
  });
});
