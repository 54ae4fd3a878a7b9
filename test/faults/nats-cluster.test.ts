/**
 * Fault: in a 3-node NATS cluster (routes), the node most agents are connected to is killed
 * with SIGKILL, under 20 writes/s. Every daemon is given all three URLs.
 * Checked: its clients move to the other nodes; every machine stays or comes back alive; no unit
 * restarts or moves; every acknowledged write is in the cluster afterwards.
 */
import { faultCase } from './lib/case';
import { outcome, report } from './lib/result';
import { sleep, waitFor } from './lib/wait';

const start = faultCase();

it('3-node NATS losing the node the agents use: they move, nothing restarts, no acknowledged write is lost', async () => {
  const cluster = await start({ natsNodes: 3 });
  const { units, placed, before } = await cluster.baseline();
  const agentNames = cluster.agents.map((a) => `flotillad agent ${a.machineId}`);
  const onNode = async (): Promise<string[][]> =>
    Promise.all(
      cluster.nats.nodes.map(async (n) =>
        n.server.running ? (await n.clientNames()).filter((x) => agentNames.includes(x)) : [],
      ),
    );
  const counts = (await onNode()).map((l) => l.length);
  const victim = cluster.nats.nodes[counts.indexOf(Math.max(...counts))];
  const moving = Math.max(...counts);
  const writer = cluster.writer();
  await sleep(2000);
  const tKill = performance.now();
  await victim.stop(true);
  await waitFor(
    'every agent connected to a surviving node',
    async () => (await onNode()).flat().length === agentNames.length,
    20_000,
  );
  await waitFor(
    'every machine alive',
    async () => (await cluster.aliveMachines()).size === cluster.agents.length,
    20_000,
  );
  const recoverMs = performance.now() - tKill;
  await sleep(2000);
  await writer.stop();
  await sleep(4000);
  const o = await outcome(cluster, units, before, writer.acked());
  report({
    fault: 'NATS cluster: node in use lost',
    done: `SIGKILL the one of 3 routed nats-servers that ${moving} of 3 agents used, under 20 writes/s`,
    checked:
      'its agents reconnect to the other nodes; no unit restarted or moved; every acknowledged write present',
    unitsRestarted: o.restarted.length,
    unitsExpectedToStart: 0,
    writesAcked: o.acked,
    writesLost: o.lost.length,
    recoverMs: Math.round(recoverMs),
    recovery: 'kill → every agent connected to another node and alive',
  });
  expect(moving).toBeGreaterThan(0);
  expect(o.restarted).toEqual([]);
  expect(await cluster.placements()).toEqual(placed);
  expect(o.lost).toEqual([]);
});
