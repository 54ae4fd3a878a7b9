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
