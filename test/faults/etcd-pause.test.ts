/**
 * Fault: etcd (one member) frozen with SIGSTOP for 20 s, then SIGCONT, under 20 writes/s.
 * Checked: no unit restarts or moves while the store is gone and after it returns; writes
 * resume by themselves; every acknowledged write is in the cluster afterwards.
 */
import { faultCase } from './lib/case';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';

const start = faultCase();

it('etcd SIGSTOP for 20 s: no unit restarts, writes resume by themselves, no acknowledged write is lost', async () => {
  const cluster = await start();
  const { units, placed, before } = await cluster.baseline();
  const writer = cluster.writer();
  await sleep(2000);
  const etcd = cluster.etcd.members[0].server;
  etcd.signal('SIGSTOP');
  await sleep(20_000);
  etcd.signal('SIGCONT');
  const tCont = performance.now();
  const first = await waitFor(
    'a write acknowledged after SIGCONT',
    async () => writer.firstAckAfter(tCont),
    30_000,
  );
  await sleep(3000);
  await writer.stop();
  await sleep(4000);
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: 'etcd SIGSTOP 20 s',
    done: 'SIGSTOP the only etcd member for 20 s, then SIGCONT, under 20 writes/s',
    checked: 'no unit restarted or moved; writes resume unaided; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: 0,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(first.acked! - tCont),
    recovery: 'SIGCONT → first write acknowledged',
  });
  expect(o.restarted).toEqual([]);
  expect(o.lost).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
});
