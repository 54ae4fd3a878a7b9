/**
 * NATS subjects (docs/protocol.md). Only the leader subscribes to `engine.*`; an agent subscribes
 * to its own `agent.<machineId>.*` subjects and to the one cluster-wide `agents.resync`, which a
 * new leader publishes once per term.
 */
export const subjects = (cluster: string) => ({
  schedule: (machine: string) => `flotilla.${cluster}.agent.${machine}.schedule`,
  agentRpc: (machine: string) => `flotilla.${cluster}.agent.${machine}.rpc`,
  report: `flotilla.${cluster}.engine.report`,
  heartbeat: `flotilla.${cluster}.engine.heartbeat`,
  scheduleGet: `flotilla.${cluster}.engine.schedule.get`,
  resync: `flotilla.${cluster}.agents.resync`,
  events: `flotilla.${cluster}.events`,
  /** Prefix of the private inboxes `journal --follow` streams to (one per request). */
  journalInbox: `flotilla.${cluster}.journal`,
});
export type Subjects = ReturnType<typeof subjects>;
