/**
 * Fault: the leader is killed with SIGKILL while a client writes 20 times a second.
 * Checked: a follower takes over; no unit restarts or moves; every acknowledged write is in the
 * cluster afterwards.
 */
import { faultCase } from './lib/case';
import { lost, report, restarted } from './lib/result';
import { sleep, waitFor } from './lib/wait';

const start = faultCase();

it('leader kill -9 under 20 writes/s: a follower takes over, no unit restarts, no acknowledged write is lost', async () => {
  const cluster = await start();
  const { units, placed, before } = await cluster.baseline();
  const old = await cluster.waitLeader();
  const writer = cluster.writer();
  await sleep(2000);
  const tKill = performance.now();
  await old.kill();
  const first = await waitFor(
    'a write acknowledged after the kill',
    async () => writer.firstAckAfter(tKill),
    30_000,
  );
  const next = await cluster.waitLeader();
  await sleep(3000);
  await writer.stop();
  // Long enough for anything the failover would restart or move to show (2 agent TTLs).
  await sleep(4000);
  const present = await cluster.unitNames();
  const gone = lost(writer.acked(), present);
  const again = restarted(units, before, cluster.starts());
  report({
    fault: 'leader kill -9',
    done: 'SIGKILL to the leader (engine-only daemon, lease TTL 2 s) under 20 writes/s',
    checked: 'a follower leads; no unit restarted or moved; every acknowledged write present',
    unitsRestarted: again.length,
    unitsExpectedToStart: 0,
    writesAcked: writer.acked().length,
    writesLost: gone.length,
    recoverMs: Math.round(first.acked! - tKill),
    recovery: 'kill → first write acknowledged by the new leader',
  });
  expect(next).not.toBe(old);
  expect(again).toEqual([]);
  expect(gone).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
  expect(writer.acked().length).toBeGreaterThan(50);
});
