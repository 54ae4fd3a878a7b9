import { connectApi } from '../../src/api/client';
import type { FlotillaEvent } from '../../src/events/types';
import { encodeBatch } from '../../src/store/etcd/batch';
import { createEtcdClient } from '../../src/store/etcd/client';
import { EtcdKeys } from '../../src/store/etcd/keys';
import { resolveOptions } from '../../src/store/etcd/options';
import { EtcdLogStore } from '../../src/store/etcd';
import { startCluster, type TestCluster } from '../helpers/cluster';

/**
 * The daemon's schema check at restore, on real etcd and NATS: a cluster log holding an event
 * this version does not know (a type written by a newer Flotilla, or a newer schema version of
 * a type it knows) is refused when a flotillad is elected and restores it — the daemon names the
 * event (UNKNOWN_EVENT_SCHEMA), resigns, and leads nothing — unless allow_unknown_events.
 */
jest.setTimeout(120_000);

let c: TestCluster;

afterEach(async () => {
  await c?.dispose();
});

const silent = { warn: () => undefined };

async function waitFor(what: string, fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function leaderOf(endpoint: string): Promise<string> {
  const api = connectApi(endpoint, { requestTimeoutMs: 3000 });
  try {
    return (await api.getClusterStatus({})).leaderMachineId;
  } catch {
    return '';
  } finally {
    api.close();
  }
}

/** Writes one log batch straight into etcd after the last stored event (as a newer version would). */
async function appendRaw(
  cluster: string,
  endpoints: string[],
  body: (index: number) => Record<string, unknown>,
): Promise<number> {
  const store = new EtcdLogStore({ endpoints, cluster, logger: silent });
  const last = (await store.readAll()).tail.at(-1)!;
  await store.close();
  const o = resolveOptions({ endpoints, cluster, logger: silent });
  const index = last.index + 1;
  const e = { index, epoch: last.epoch, time: Date.now(), v: 2, ...body(index) };
  const client = createEtcdClient(o);
  try {
    for (const p of encodeBatch(
      new EtcdKeys(cluster),
      [e as unknown as FlotillaEvent],
      1 << 20,
      1 << 20,
    ))
      await client.put(p.key).value(p.value);
  } finally {
    client.close();
  }
  return index;
}

describe('schema check at restore', () => {
  it.each([
    [
      'an unknown event type',
      { type: 'UnitTeleported', unit: 'x.service' },
      /event type UnitTeleported/,
    ],
    [
      'a newer schema version of a known type',
      { type: 'UnitTargetSet', unit: 'x.service', target: 'launched', v: 9 },
      /schema version 9 of UnitTargetSet/,
    ],
  ])('refuses %s, names it, leads nothing; allow_unknown_events leads', async (_, body, named) => {
    c = await startCluster({ nodes: [{ disableAgent: true }] });
    const node = c.nodes[0];
    await waitFor('a leader', async () => (await leaderOf(node.endpoint)) === node.machineId);
    expect(await node.stop()).toBe(0);

    const index = await appendRaw(c.clusterName, c.etcd.endpoints, () => body);
    await node.start();
    await waitFor('the refusal in the log', async () =>
      /UNKNOWN_EVENT_SCHEMA|refusing to lead/.test(node.output),
    );
    expect(node.output).toMatch(new RegExp(`event ${index} has`));
    expect(node.output).toMatch(named);
    // It resigned: nobody leads, and the daemon runs on (a newer version may take over).
    await new Promise((r) => setTimeout(r, 1500));
    expect(node.running).toBe(true);
    expect(await leaderOf(node.endpoint)).toBe('');

    expect(await node.stop()).toBe(0);
    node.args.push('--allow-unknown-events', 'true');
    await node.start();
    await waitFor(
      'a leader that skips it',
      async () => (await leaderOf(node.endpoint)) === node.machineId,
    );
    expect(node.output).not.toMatch(/refusing to lead/);
  });
});
