import { connectApi, type ApiClient } from '../../src/api/client';
import { startCluster, type DaemonNode, type TestCluster } from '../helpers/cluster';

/**
 * Reads through a leader failover, on three real flotillad processes (real etcd and NATS): a
 * follower retries a read for its caller while no leader is known, instead of failing it; and a
 * leader paused past its lease never names itself leader once it runs again.
 */
jest.setTimeout(120_000);

let cluster: TestCluster;
const clients = new Map<DaemonNode, ApiClient>();
const api = (n: DaemonNode): ApiClient => {
  let c = clients.get(n);
  if (!c) clients.set(n, (c = connectApi(n.endpoint, { requestTimeoutMs: 30_000 })));
  return c;
};

beforeAll(async () => {
  cluster = await startCluster({ nodes: [{}, {}, {}], agentTtl: '4s', leaseTtl: '2s' });
});
afterAll(async () => {
  for (const c of clients.values()) c.close();
  await cluster?.dispose();
});

async function leaderNode(): Promise<DaemonNode> {
  const end = Date.now() + 30_000;
  for (;;) {
    for (const n of cluster.nodes.filter((x) => x.running)) {
      const s = await api(n)
        .getClusterStatus({})
        .catch(() => undefined);
      const l = cluster.nodes.find((x) => x.machineId === s?.leaderMachineId && x.running);
      if (l) return l;
    }
    if (Date.now() > end) throw new Error('no leader within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('kill -9 of the leader: every read through a follower is answered, none fails', async () => {
  const old = await leaderNode();
  const follower = cluster.nodes.find((n) => n !== old)!;
  await old.kill();
  const failures: string[] = [];
  let answered = 0;
  let newLeader = '';
  const end = Date.now() + 60_000;
  // Reads one after another until a new leader answers (and a few more).
  while (Date.now() < end && answered < 200) {
    try {
      const s = await api(follower).getClusterStatus({});
      await api(follower).listMachines({});
      answered++;
      if (s.leaderMachineId !== old.machineId) newLeader = s.leaderMachineId;
      if (newLeader && answered > 5) break;
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  expect(failures).toEqual([]);
  expect(newLeader).not.toBe('');
  expect(newLeader).not.toBe(old.machineId);
  await old.start();
});

it('a leader paused past its lease never names itself leader when it runs again', async () => {
  const paused = await leaderNode();
  const others = cluster.nodes.filter((n) => n !== paused);
  process.kill(paused.pid!, 'SIGSTOP');
  try {
    // A new leader among the others.
    const end = Date.now() + 30_000;
    for (;;) {
      const s = await api(others[0])
        .getClusterStatus({})
        .catch(() => undefined);
      if (s && s.leaderMachineId && s.leaderMachineId !== paused.machineId) break;
      if (Date.now() > end) throw new Error('no new leader while the old one was paused');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    process.kill(paused.pid!, 'SIGCONT');
  }
  // At once, and for a while: the resumed daemon names the new leader or refuses, never itself.
  const named: string[] = [];
  for (let i = 0; i < 20; i++) {
    const s = await api(paused)
      .getClusterStatus({})
      .catch(() => undefined);
    if (s) named.push(s.leaderMachineId);
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(named).not.toContain(paused.machineId);
  expect(named.length).toBeGreaterThan(0);
});
