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
