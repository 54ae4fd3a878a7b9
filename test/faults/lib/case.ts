/**
 * One fault case's cluster: `faultCase()` at the top of a test file gives the case its time
 * budget and a `start` that boots a FaultCluster, disposed after the test whatever happened.
 */
import { FaultCluster, type FaultClusterOptions } from './fault-cluster';

export function faultCase(
  timeoutMs = 110_000,
): (opts?: FaultClusterOptions) => Promise<FaultCluster> {
  jest.setTimeout(timeoutMs);
  let current: FaultCluster | undefined;
  afterEach(async () => {
    await current?.dispose();
    current = undefined;
  });
  return async (opts) => {
    current = await FaultCluster.start(opts);
    return current;
  };
}
