/**
 * Fault: etcd (one member) killed with SIGKILL, down 5 s, restarted on the same port and data
 * directory, under 20 writes/s.
 * Checked: no unit restarts or moves; writes resume by themselves; every acknowledged write is
 * in the cluster afterwards (etcd's own durability plus Flotilla acknowledging only what etcd
 * committed).
 */
import { faultCase } from './lib/case';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';

const start = faultCase();

it('etcd kill -9 and restart: no unit restarts, writes resume by themselves, no acknowledged write is lost', async () => {
  const cluster = await start();
  const { units, placed, before } = await cluster.baseline();
  const writer = cluster.writer();
  await sleep(2000);
  const etcd = cluster.etcd.members[0];
  await etcd.stop(true);
  await sleep(5000);
  await etcd.start();
  const tUp = performance.now();
  const first = await waitFor(
    'a write acknowledged after the restart',
    async () => writer.firstAckAfter(tUp),
    30_000,
  );
  await sleep(3000);
  await writer.stop();
  await sleep(4000);
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: 'etcd kill -9, restart',
    done: 'SIGKILL the only etcd member, 5 s down, restart on the same port and data dir, under 20 writes/s',
    checked: 'no unit restarted or moved; writes resume unaided; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: 0,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(first.acked! - tUp),
    recovery: 'etcd ready again → first write acknowledged',
  });
  expect(o.restarted).toEqual([]);
  expect(o.lost).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
});
