/**
 * Fault: the leader is frozen with SIGSTOP past its lease (a stuck VM, a long GC pause), then
 * thawed with SIGCONT, while a client writes 20 times a second and other writes wait in the
 * frozen leader's sockets.
 * Checked: a follower takes over; never two leaders (no daemon calls itself leader once a newer
 * term has begun); no write of the deposed leader lands in the log after the new term's first
 * (epochs never go back along the log); no unit restarts or moves; every acknowledged write —
 * including any the thawed daemon acknowledged — is in the cluster afterwards.
 */
import { faultCase } from './lib/case';
import { probeLeaders } from './lib/leaders';
import { lost, report, restarted } from './lib/result';
import { sleep, waitFor } from './lib/wait';
import { startWriter } from './lib/writer';

const start = faultCase();

it('leader SIGSTOP past its lease, then SIGCONT: one leader at a time, the deposed one writes nothing, no unit restarts', async () => {
  const cluster = await start();
  const { units, placed, before } = await cluster.baseline();
  const old = await cluster.waitLeader();
  const probe = probeLeaders(
    () => [...cluster.leaders, ...cluster.agents].filter((n) => n.running),
    (n) => cluster.api(n, 1000),
  );
  const writer = cluster.writer();
  await sleep(2000);
  const tStop = performance.now();
  cluster.pause(old);
  // Writes sent straight to the frozen leader: they wait in its socket until SIGCONT.
  const deposed = startWriter(
    () => [old],
    (n) => cluster.api(n, 10_000),
    200,
    'd',
  );
  const first = await waitFor(
    'a write acknowledged by a new leader',
    async () => writer.firstAckAfter(tStop),
    30_000,
  );
  const next = await cluster.waitLeader();
  await sleep(3000);
  cluster.resume(old);
  await sleep(500);
  await deposed.stop();
  await sleep(3000);
  await writer.stop();
  await sleep(3000);
  await probe.stop();
  const present = await cluster.unitNames();
  const acked = [...writer.acked(), ...deposed.acked()];
  const gone = lost(acked, present);
  const again = restarted(units, before, cluster.starts());
  const log = await cluster.readLog();
  const backwards = log.filter((e, i) => i > 0 && e.epoch < log[i - 1].epoch);
  const twoLeaders = probe.violations();
  report({
    fault: 'leader SIGSTOP past its lease, SIGCONT',
    done: 'SIGSTOP the leader for its lease TTL (2 s) + election + 3 s, then SIGCONT, under 20 writes/s',
    checked:
      'never two leaders; no write of the deposed leader after the new term; no unit restarted or moved; every acknowledged write present',
    unitsRestarted: again.length,
    unitsExpectedToStart: 0,
    writesAcked: acked.length,
    writesLost: gone.length,
    recoverMs: Math.round(first.acked! - tStop),
    recovery: 'SIGSTOP → first write acknowledged by the new leader',
  });
  expect(next).not.toBe(old);
  expect(twoLeaders).toEqual([]);
  expect(backwards.map((e) => `${e.index}@${e.epoch}`)).toEqual([]);
  expect(again).toEqual([]);
  expect(gone).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
  expect(probe.samples.length).toBeGreaterThan(20);
});
