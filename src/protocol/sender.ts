import { ProtocolError } from './codec';

/**
 * The machine an agent → leader subject names: `flotilla.<cluster>.engine.report.<machine>`,
 * `….engine.heartbeat.<machine>`, `….engine.schedule.get.<machine>` or
 * `….leader.<leader>.schedule.get.<machine>`; null for protocol v1's
 * shared subjects (`….engine.report`, …), which name none.
 */
export function senderOfSubject(subject: string): string | null {
  const t = subject.split('.');
  // `flotilla.<cluster>.leader.<leader>.schedule.get.<machine>`
  if (t.length === 7 && t[0] === 'flotilla' && t[2] === 'leader')
    return t[4] === 'schedule' && t[5] === 'get' ? t[6] : null;
  if (t.length < 4 || t[0] !== 'flotilla' || t[2] !== 'engine') return null;
  const kind = t.slice(3);
  if (kind[0] === 'schedule' && kind[1] === 'get') return kind.length === 3 ? kind[2] : null;
  return kind.length === 2 ? kind[1] : null;
}

/**
 * Returns `msg` when the machine it speaks for is the one its subject names. The NATS server's
 * permissions let each machine publish only on its own subjects (`flotilla bus-auth`), so a
 * message naming another machine is forged: ProtocolError, and the receiver drops it.
 */
export function checkSender<T extends { machine: string }>(subject: string, msg: T): T {
  const sender = senderOfSubject(subject);
  if (sender !== null && sender !== msg.machine)
    throw new ProtocolError(
      `message on ${subject} speaks for machine ${JSON.stringify(msg.machine.slice(0, 64))}, not for ${sender}`,
    );
  return msg;
}

/**
 * Returns when `reply`, the reply subject a request to the leader carries, is an inbox the
 * requesting machine may read: under `_INBOX.`, and when under this cluster's per-machine
 * inboxes (`_INBOX.<cluster>.<machine>.`, what flotillad uses), under `machine`'s own. The
 * leader answers with its own rights, which include publishing schedules and resyncs: without
 * this check an agent could name `agents.resync.<leader>` or another agent's schedule subject as
 * its reply subject and have the leader publish there for it (every agent resynced on one
 * agent's request). Absent (no NATS, or a plain publish): nothing to check.
 */
export function checkReplySubject(
  reply: string | undefined,
  inboxOf: (machine: string) => string,
  machine: string,
): void {
  if (reply === undefined) return;
  const ok = reply.startsWith(inboxOf(''))
    ? reply.startsWith(`${inboxOf(machine)}.`)
    : reply.startsWith('_INBOX.');
  if (!ok)
    throw new ProtocolError(
      `request of machine ${machine.slice(0, 64)} asks for its reply on ${JSON.stringify(reply.slice(0, 120))}, not on an inbox of its own`,
    );
}
