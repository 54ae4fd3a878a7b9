import {
  createActor,
  type ActorScope,
  type AnyStateMachine,
  type EventFrom,
  type InputFrom,
  type SnapshotFrom,
} from 'xstate';

/** Steps snapshots of one machine without running an actor (a "virtual actor"). */
export interface PureStepper<M extends AnyStateMachine> {
  /** The snapshot a new actor with `input` starts in (its eventless transitions taken). */
  initial(input: InputFrom<M>): SnapshotFrom<M>;
  /** The snapshot after `event`; actions other than `assign` are not executed. */
  step(snapshot: SnapshotFrom<M>, event: EventFrom<M>): SnapshotFrom<M>;
}

/**
 * Pure stepping of a machine's snapshots, as XState's `initialTransition()`/`transition()` do,
 * with one actor scope made once instead of per call. Those functions build a throwaway actor
 * (and compute its initial snapshot) on every call: measured, that was 23 % of the leader's CPU
 * during a burst, as much as the transitions themselves. The scope is inert: machines stepped
 * this way may only use `assign` (no spawned children, no side-effecting actions), which is
 * what makes replaying the log replay their state exactly.
 *
 * `sampleInput` builds the scope's owner actor once; it is never started.
 */
export function pureStepper<M extends AnyStateMachine>(
  machine: M,
  sampleInput: InputFrom<M>,
): PureStepper<M> {
  const self = createActor(machine, { input: sampleInput });
  const noop = (): void => undefined;
  const scope = {
    self,
    id: '',
    sessionId: '',
    logger: noop,
    defer: noop,
    emit: noop,
    system: self.system,
    stopChild: noop,
    actionExecutor: noop,
  } as unknown as ActorScope<SnapshotFrom<M>, EventFrom<M>>;
  return {
    initial: (input) => machine.getInitialSnapshot(scope, input) as SnapshotFrom<M>,
    step: (snapshot, event) => machine.transition(snapshot, event, scope) as SnapshotFrom<M>,
  };
}
