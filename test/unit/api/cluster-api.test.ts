import { describeClusterApiContract } from '../../cluster-api-contract';
import { startEngineCluster } from '../../helpers/engine-cluster';

/** The cluster API's contract against the leader's EngineApi itself, in-process. */
describeClusterApiContract('EngineApi in-process', async () => {
  const c = await startEngineCluster();
  return {
    api: c.engineApi,
    machines: c.machines,
    leader: { machineId: c.machines[0].id, address: c.leaderAddress },
    appendJournal: (unit, line) => c.appendJournal(unit, line),
    close: () => c.close(),
  };
});
