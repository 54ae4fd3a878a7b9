import { connectApi } from '../../src/api/client';
import { describeClusterApiContract } from '../cluster-api-contract';
import { startEngineCluster } from '../helpers/engine-cluster';

/**
 * The cluster API's contract through the gRPC server and client, as the CLI and a forwarding
 * follower reach the leader: every answer and every error code must survive the wire.
 */
describeClusterApiContract('EngineApi over gRPC', async () => {
  const c = await startEngineCluster();
  const server = await c.serve({ api: c.engineApi });
  const client = connectApi(server.addresses[0]);
  return {
    api: client,
    machines: c.machines,
    leader: { machineId: c.machines[0].id, address: c.leaderAddress },
    appendJournal: (unit, line) => c.appendJournal(unit, line),
    close: async () => {
      client.close();
      await c.close();
    },
  };
});
