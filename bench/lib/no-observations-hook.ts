/**
 * Preloaded into a benchmark leader with `NODE_OPTIONS=--require …/no-observations-hook.js`:
 * the leader commits agents' reports without their durable `UnitObserved` milestones
 * (src/history/observations.ts), as before the durable history existed. The history benchmark
 * runs the burst with and without it to measure what the durable observations cost the leader.
 */
import * as observations from '../../src/history/observations';

const mod = observations as unknown as { withObservations: (bodies: unknown[]) => unknown[] };
mod.withObservations = (bodies) => bodies;
