/**
 * Faults on one agent's daemon, under 20 writes/s:
 * - kill -9 and restart at once (a crash and systemd's Restart=): its units, still running,
 *   are adopted — same processes, nothing restarted, nothing moved;
 * - a "reboot": the daemon and all its units killed and its units directory emptied (by default
 *   /run/flotilla/units, a tmpfs), the daemon started again with the same machine ID: its units
 *   start again where they were, as desired, and nothing else restarts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { faultCase } from './lib/case';
import { killUnitProcesses } from '../helpers/unit-processes';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';
import { killGroup } from '../harness/registry';

const start = faultCase();

// Longer than a daemon takes to start on a busy 2-core CI machine (up to ~3 s seen): a crash
// and restart must not look like a lost machine.
const TTL_MS = 10_000;

async function crashAndRestart(reboot: boolean): Promise<void> {
  const cluster = await start({ agentTtl: `${TTL_MS / 1000}s` });
  const { units, placed, before } = await cluster.baseline();
  const agent = cluster.agents[0];
  const mine = units.filter((u) => before.get(u)![0].agent === 0);
  const writer = cluster.writer();
  await sleep(2000);
  await agent.kill();
  if (reboot) {
    // Everything of the machine dies: each unit's keeper (first: it would write the unit's exit
    // file) and the unit.
    killUnitProcesses(path.join(agent.dir, 'units'));
    for (const u of mine) killGroup(before.get(u)![0].pid, 'SIGKILL');
    // The units directory defaults to /run/flotilla/units, a tmpfs a reboot empties.
    fs.rmSync(path.join(agent.dir, 'units'), { recursive: true, force: true });
  }
  await agent.start();
  const tUp = performance.now();
  await waitFor(
    'its units running again where they were',
    async () => {
      const p = await cluster.placements();
      const starts = cluster.starts();
      return (
        (await cluster.aliveMachines()).has(agent.machineId) &&
        mine.every(
          (u) =>
            JSON.stringify(p.get(u)) === JSON.stringify(placed.get(u)) &&
            (!reboot || starts.get(u)!.length === 2),
        )
      );
    },
    30_000,
  );
  const recoverMs = performance.now() - tUp;
  await sleep(2000);
  await writer.stop();
  await sleep(4000);
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: reboot ? 'machine reboot (agent and units killed)' : 'agent kill -9, restart',
    done: reboot
      ? 'SIGKILL one agent and all its units, empty its units dir (/run), start it again (same machine ID), under 20 writes/s'
      : 'SIGKILL one agent, start it again at once (agent TTL 10 s), under 20 writes/s',
    checked: reboot
      ? 'its units start again on it, once each; nothing else restarted or moved; every acknowledged write present'
      : 'its running units adopted (same PIDs); no unit restarted or moved; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: reboot ? mine.length : 0,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(recoverMs),
    recovery: 'agent restarted → alive, its units reported running in place',
  });
  expect(mine.length).toBeGreaterThan(0);
  expect(o.restarted.sort()).toEqual(reboot ? [...mine].sort() : []);
  const after = cluster.starts();
  if (reboot) for (const u of mine) expect(after.get(u)!.length).toBe(2);
  expect(await cluster.placements()).toEqual(placed);
  expect(o.lost).toEqual([]);
}

it('agent kill -9 and restart: its units are adopted, nothing restarts', () =>
  crashAndRestart(false));

it('machine reboot (agent restarted with its units gone): they start again as desired, nothing else restarts', () =>
  crashAndRestart(true));
