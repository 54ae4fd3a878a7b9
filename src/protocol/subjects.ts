/**
 * NATS subjects (docs/protocol.md). Every subject an agent publishes on carries its machine ID,
 * so the NATS server's per-user permissions (`flotilla bus-auth`, docs/security.md) decide who
 * may speak for which machine. Only the leader subscribes to `engine.*`; an agent subscribes to
 * its own `agent.<machineId>.*` subjects and to the one cluster-wide `agents.resync`, which a
 * new leader publishes once per term.
 */
export const subjects = (cluster: string) => ({
  schedule: (machine: string) => `flotilla.${cluster}.agent.${machine}.schedule`,
  agentRpc: (machine: string) => `flotilla.${cluster}.agent.${machine}.rpc`,
  report: (machine: string) => `flotilla.${cluster}.engine.report.${machine}`,
  heartbeat: (machine: string) => `flotilla.${cluster}.engine.heartbeat.${machine}`,
  scheduleGet: (machine: string) => `flotilla.${cluster}.engine.schedule.get.${machine}`,
  /** What the leader subscribes to: the per-machine subjects above, every machine. */
  reportAll: `flotilla.${cluster}.engine.report.*`,
  heartbeatAll: `flotilla.${cluster}.engine.heartbeat.*`,
  scheduleGetAll: `flotilla.${cluster}.engine.schedule.get.*`,
  /**
   * The shared subjects of protocol v1 (no machine in the subject). A leader still listens on
   * them for one release, so agents not yet upgraded (or set to `nats_legacy_subjects`) are
   * heard; a secured bus grants them to no one.
   */
  legacy: {
    report: `flotilla.${cluster}.engine.report`,
    heartbeat: `flotilla.${cluster}.engine.heartbeat`,
    scheduleGet: `flotilla.${cluster}.engine.schedule.get`,
  },
  resync: `flotilla.${cluster}.agents.resync`,
  /**
   * Leader-named subjects (docs/protocol.md, "Only the leader commands"): a schedule or a resync
   * travels on a subject that ends with its sender's machine ID, and a schedule request goes to
   * one leader's own subject. `flotilla bus-auth` lets an engine publish only under its own name
   * and subscribe only to its own requests, so the subject proves the sender and the agent acts
   * only on the leader of the current epoch.
   */
  scheduleFrom: (machine: string, leader: string) =>
    `flotilla.${cluster}.agent.${machine}.schedule.${leader}`,
  /** What an agent subscribes to: its schedule from any sender (it checks the sender). */
  scheduleFromAny: (machine: string) => `flotilla.${cluster}.agent.${machine}.schedule.*`,
  resyncFrom: (leader: string) => `flotilla.${cluster}.agents.resync.${leader}`,
  /** A status or journal request to `machine`'s agent from the engine `leader`. */
  agentRpcFrom: (machine: string, leader: string) =>
    `flotilla.${cluster}.agent.${machine}.rpc.${leader}`,
  /** What an agent answers requests on: from any sender (it checks the sender). */
  agentRpcFromAny: (machine: string) => `flotilla.${cluster}.agent.${machine}.rpc.*`,
  resyncFromAny: `flotilla.${cluster}.agents.resync.*`,
  /** An agent's schedule request addressed to one leader (only that engine may read it). */
  scheduleGetOf: (leader: string, machine: string) =>
    `flotilla.${cluster}.leader.${leader}.schedule.get.${machine}`,
  scheduleGetOfAll: (leader: string) => `flotilla.${cluster}.leader.${leader}.schedule.get.*`,
  events: `flotilla.${cluster}.events`,
  /** Prefix of the private inboxes `journal --follow` streams a machine's lines to (one per request). */
  journalInbox: (machine: string) => `flotilla.${cluster}.journal.${machine}`,
  /** Prefix of a daemon's request/reply inboxes (the NATS client's `inboxPrefix`). */
  inbox: (machine: string) => `_INBOX.${cluster}.${machine}`,
});
export type Subjects = ReturnType<typeof subjects>;

/**
 * The machine a per-machine subject names (its last token), or undefined when `subject` is not
 * `<prefix>.<machine>` (a legacy shared subject).
 */
export function machineOfSubject(prefix: string, subject: string): string | undefined {
  if (!subject.startsWith(prefix + '.')) return undefined;
  const rest = subject.slice(prefix.length + 1);
  return rest !== '' && !rest.includes('.') ? rest : undefined;
}

/** A token NATS subjects can carry: no dot, wildcard or whitespace, not empty. */
export function isSubjectToken(s: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(s);
}
