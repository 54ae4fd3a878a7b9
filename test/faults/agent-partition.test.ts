/**
 * Fault: one agent cut off from NATS and etcd — its daemon runs in a network namespace of its
 * own whose veth link goes down (test/harness/netns.ts) — for 3× the agent TTL, then back up.
 * Its units keep running throughout (an agent never stops units because it lost the control
 * plane), so for a while both copies run: availability over duplicates (docs/reliability.md).
 * Checked: the cut-off machine's units start elsewhere after the leader declares it lost; no
 * other unit restarts; when the link returns the stale copies stop and nothing else restarts
 * (each moved unit started exactly once more); every acknowledged write is in the cluster.
 */
import { faultCase } from './lib/case';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';
import { pidAlive } from '../../src/drivers/process';

const start = faultCase();

const TTL_MS = 2000;
const ISOLATED = 2;

it('one agent cut off for 3× the TTL: its units move after the TTL, the stale copies stop when the link returns', async () => {
  const cluster = await start({ isolate: ISOLATED, agentTtl: `${TTL_MS / 1000}s` });
  const units = await cluster.launch(30);
  const before = cluster.starts();
  const cut = units.filter((u) => before.get(u)![0].agent === ISOLATED);
  const stalePids = cut.map((u) => before.get(u)![0].pid);
  const isolatedId = cluster.agents[ISOLATED].machineId;
  const writer = cluster.writer();
  await sleep(2000);
  const downAt = Date.now();
  const tDown = performance.now();
  await cluster.partition!.down();
  const elsewhere = async (): Promise<boolean> => {
    const p = await cluster.placements();
    const starts = cluster.starts();
    return cut.every(
      (u) =>
        p.get(u)?.some((m) => m !== isolatedId) && starts.get(u)!.some((s) => s.agent !== ISOLATED),
    );
  };
  await waitFor('the cut-off units running elsewhere', elsewhere, 30_000);
  const movedMs = performance.now() - tDown;
  await sleep(Math.max(0, 3 * TTL_MS - movedMs));
  // Availability over duplicates: the stale copies ran all through the partition.
  const staleAliveAtUp = stalePids.filter(pidAlive).length;
  await cluster.partition!.up();
  const tUp = performance.now();
  await waitFor(
    'the stale copies stopped',
    async () => stalePids.every((p) => !pidAlive(p)),
    30_000,
    20,
  );
  const staleStopMs = performance.now() - tUp;
  await waitFor(
    'the cut-off machine alive again',
    async () => (await cluster.aliveMachines()).has(isolatedId),
    30_000,
  );
  await sleep(2000);
  await writer.stop();
  await sleep(2 * TTL_MS);
  const after = cluster.starts();
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: 'agent cut off (netns, veth down 3× TTL)',
    done: 'veth link of one agent’s namespace down for 6 s (agent TTL 2 s), then up, under 20 writes/s',
    checked:
      'its units start elsewhere after the TTL, nothing else restarts; stale copies run through the partition and stop when the link returns; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: cut.length,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(staleStopMs),
    recovery: `link up → stale copies stopped (units moved ${Math.round(movedMs)} ms after link down)`,
  });
  expect(cut.length).toBeGreaterThan(0);
  // Moved after the link went down, by a start on another machine, exactly once.
  for (const u of cut) {
    const s = after.get(u)!;
    expect(s.length).toBe(2);
    expect(s[1].agent).not.toBe(ISOLATED);
    expect(s[1].ms).toBeGreaterThanOrEqual(downAt);
  }
  expect(o.restarted.sort()).toEqual([...cut].sort());
  expect(staleAliveAtUp).toBe(stalePids.length);
  expect(stalePids.filter(pidAlive)).toEqual([]);
  const p = await cluster.placements();
  for (const u of units) expect(p.get(u)?.length).toBe(1);
  expect(o.lost).toEqual([]);
});
