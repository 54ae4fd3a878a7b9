import { agentBenchmark } from './agent';
import { driverBenchmark } from './driver';
import { schedulerBenchmark } from './scheduler';
import { fleetProfileBenchmark } from './fleet-profile';
import { startAtOnceBenchmark } from './start-at-once';
import { burst100kBenchmark, burstBenchmark } from './burst';
import { herdBenchmark } from './herd';
import { failoverBenchmark } from './failover';
import { storeBenchmark } from './store';
import { engineBenchmark } from './engine';
import { soakBenchmark } from './soak';
import { vizBenchmark } from './viz';
import { historyBenchmark } from './history';
import type { Benchmark } from './benchmark';

export type { Benchmark, BenchOptions } from './benchmark';

/** Every benchmark, in the order `npm run bench` runs them. Add new ones at the end. */
export const benchmarks: Benchmark[] = [driverBenchmark];
benchmarks.push(schedulerBenchmark);
benchmarks.push(agentBenchmark);
benchmarks.push(fleetProfileBenchmark);
benchmarks.push(startAtOnceBenchmark);
benchmarks.push(storeBenchmark);
benchmarks.push(engineBenchmark);
benchmarks.push(burstBenchmark);
benchmarks.push(burst100kBenchmark);
benchmarks.push(herdBenchmark);
benchmarks.push(failoverBenchmark);
benchmarks.push(soakBenchmark);
benchmarks.push(vizBenchmark);
benchmarks.push(historyBenchmark);
