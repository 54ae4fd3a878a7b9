/**
 * Fault: a 3-member etcd loses one member (SIGKILL), then a second (quorum gone) for 10 s; both
 * are restarted on their ports and data directories. Under 20 writes/s throughout.
 * Checked: with one member down writes go on; without quorum writes are refused with an error
 * that says why, reads are still served, no unit restarts or moves; once quorum is back writes
 * resume by themselves; every acknowledged write is in the cluster afterwards.
 */
import { faultCase } from './lib/case';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';

const start = faultCase();

it('3-member etcd losing one member, then quorum: writes refused clearly, reads served, units untouched, recovery by itself', async () => {
  const cluster = await start({ etcdMembers: 3 });
  const { units, placed, before } = await cluster.baseline();
  const writer = cluster.writer();
  await sleep(2000);
  const [, m1, m2] = cluster.etcd.members;
  await m1.stop(true);
  const tOne = performance.now();
  await sleep(5000);
  const ackedWithOneDown = writer.sends.filter((s) => s.sent >= tOne && s.acked).length;

  await m2.stop(true);
  const tNoQuorum = performance.now();
  // Reads during the outage: the leader keeps serving its state.
  await sleep(4000);
  const readDuring = await cluster.unitNames();
  await sleep(6000);
  const tBack = performance.now();
  await Promise.all([m1.start(), m2.start()]);
  const tUp = performance.now();
  const first = await waitFor(
    'a write acknowledged after quorum returned',
    async () => writer.firstAckAfter(tUp),
    30_000,
  );
  await sleep(3000);
  await writer.stop();
  await sleep(4000);
  // Writes sent well inside the outage (2 s after quorum went, until members were restarting).
  const refused = writer.sends.filter(
    (s) => s.sent >= tNoQuorum + 2000 && s.sent < tBack - 3000 && s.error !== undefined,
  );
  const ackedDuring = writer.sends.filter(
    (s) => s.sent >= tNoQuorum + 2000 && s.sent < tBack - 3000 && s.acked !== undefined,
  );
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: 'etcd 3 members: one lost, then quorum',
    done: 'SIGKILL one of 3 etcd members (5 s), then a second (10 s without quorum), restart both, under 20 writes/s',
    checked:
      'writes go on with 2 of 3; without quorum writes refused with a clear error, reads served; no unit restarted or moved; writes resume unaided; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: 0,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(first.acked! - tUp),
    recovery: 'members restarted → first write acknowledged',
  });
  expect(ackedWithOneDown).toBeGreaterThan(40);
  expect(readDuring.length).toBeGreaterThanOrEqual(units.length);
  expect(ackedDuring.map((s) => s.name)).toEqual([]);
  expect(refused.length).toBeGreaterThan(50);
  for (const s of refused) expect(s.error).toMatch(/etcd|store|quorum|leader/i);
  expect(o.restarted).toEqual([]);
  expect(o.lost).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
});
