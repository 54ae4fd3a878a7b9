// The scheduler: fleet's placement rules, deterministic and incremental. Pure code.
export { Scheduler, machineIdMatches, formatMetadata } from './scheduler';
export { schedule, formatDecision } from './schedule';
export { LoadIndex } from './load-index';
export type { Decision, SchedMachine, SchedUnit } from './types';
