import { LocalHub } from '../../../src/bus/local';
import type { Logger } from '../../../src/log';
import { Engine } from '../../../src/engine/engine';
import { MemoryBackend, MemoryLogStore } from '../../../src/store/memory';
import {
  checkReplySubject,
  checkSender,
  decodeResyncRequest,
  decodeScheduleFull,
  encode,
  PROTOCOL_VERSION,
  senderOfSubject,
  subjects,
} from '../../../src/protocol';

/** The leader takes a message only for the machine its subject names (docs/security.md). */
const CLUSTER = 't';
const S = subjects(CLUSTER);

describe('senderOfSubject / checkSender', () => {
  it('reads the machine from per-machine subjects, none from protocol v1 shared ones', () => {
    expect(senderOfSubject(S.heartbeat('m1'))).toBe('m1');
    expect(senderOfSubject(S.report('m2'))).toBe('m2');
    expect(senderOfSubject(S.scheduleGet('m3'))).toBe('m3');
    expect(senderOfSubject(S.scheduleGetOf('leader1', 'm4'))).toBe('m4');
    expect(senderOfSubject(S.legacy.heartbeat)).toBeNull();
    expect(senderOfSubject(S.legacy.scheduleGet)).toBeNull();
    expect(senderOfSubject('other.subject')).toBeNull();
  });

  it('refuses a message naming another machine than its subject', () => {
    expect(checkSender(S.heartbeat('m1'), { machine: 'm1' })).toEqual({ machine: 'm1' });
    expect(() => checkSender(S.heartbeat('m1'), { machine: 'm2' })).toThrow(
      `message on ${S.heartbeat('m1')} speaks for machine "m2", not for m1`,
    );
  });

  it("takes a request's reply subject only in the requester's own inbox", () => {
    const ok = (reply: string | undefined) => () => checkReplySubject(reply, S.inbox, 'm1');
    expect(ok(undefined)).not.toThrow();
    expect(ok(`${S.inbox('m1')}.abc.1`)).not.toThrow();
    expect(ok('_INBOX.abc.1')).not.toThrow(); // a client with NATS's default inbox prefix
    for (const reflected of [
      S.resyncFrom('l'),
      S.scheduleFrom('m2', 'l'),
      S.agentRpcFrom('m2', 'l'),
      `${S.inbox('m2')}.abc.1`,
      `${S.inbox('m1')}x.abc`,
    ])
      expect(ok(reflected)).toThrow('not on an inbox of its own');
  });

  it('a full schedule is not a resync request', () => {
    const full = { v: PROTOCOL_VERSION, kind: 'full', epoch: 3, seq: 1, units: [] };
    expect(() => decodeResyncRequest(encode(full))).toThrow('malformed');
    expect(decodeResyncRequest(encode({ v: PROTOCOL_VERSION, epoch: 3 })).epoch).toBe(3);
  });
});

it('the engine drops a heartbeat speaking for another machine, and takes its own', async () => {
  const hub = new LocalHub();
  const store = new MemoryLogStore(new MemoryBackend());
  const term = await store.campaign({ machine: 'l', address: 'l:1' }, new AbortController().signal);
  const engine = await Engine.start({
    term,
    bus: hub.connect(),
    cluster: CLUSTER,
    machineId: 'l',
    address: 'l:1',
    agentTtlMs: 60_000,
  });
  try {
    const bus = hub.connect();
    const hb = (machine: string) =>
      encode({ v: PROTOCOL_VERSION, machine, ip: '10.0.0.9', metadata: {}, epoch: 0 });
    bus.publish(S.heartbeat('m1'), hb('ghost'));
    bus.publish(S.heartbeat('m1'), hb('m1'));
    const end = Date.now() + 5000;
    while (!engine.state.machines.has('m1') && Date.now() < end)
      await new Promise((r) => setTimeout(r, 5));
    expect(engine.state.machines.has('m1')).toBe(true);
    expect(engine.state.machines.has('ghost')).toBe(false);
    expect(engine.stats.malformed).toBe(1);
  } finally {
    await engine.stop('test over');
  }
});

it('a bug in a handler is not a malformed message: logged at error and counted apart', async () => {
  const hub = new LocalHub();
  const store = new MemoryLogStore(new MemoryBackend());
  const term = await store.campaign({ machine: 'l', address: 'l:1' }, new AbortController().signal);
  const logged: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (msg, fields) => logged.push({ level: 'warn', msg, fields }),
    error: (msg, fields) => logged.push({ level: 'error', msg, fields }),
    child: () => log,
  };
  const engine = await Engine.start({
    term,
    bus: hub.connect(),
    cluster: CLUSTER,
    machineId: 'l',
    address: 'l:1',
    agentTtlMs: 60_000,
    log,
  });
  try {
    // Stand in for an engine bug: the report handler throws something that is no protocol fault.
    const membership = (engine as unknown as { membership: { onReport: () => void } }).membership;
    membership.onReport = () => {
      throw new TypeError('cannot read properties of undefined');
    };
    const bus = hub.connect();
    bus.publish(
      S.report('m1'),
      encode({ v: PROTOCOL_VERSION, machine: 'm1', units: [], gone: [], full: true }),
    );
    bus.publish(S.report('m1'), new TextEncoder().encode('not json'));
    const end = Date.now() + 5000;
    while (engine.stats.handlerErrors + engine.stats.malformed < 2 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 5));
    expect(engine.stats.handlerErrors).toBe(1);
    expect(engine.stats.malformed).toBe(1);
    const bug = logged.find((e) => e.level === 'error');
    expect(bug?.msg).toContain('report handler failed');
    expect(String(bug?.fields?.stack)).toContain('TypeError');
  } finally {
    await engine.stop('test over');
  }
});

it('a protocol fault has its own code', () => {
  expect(() => checkSender(S.heartbeat('m1'), { machine: 'm2' })).toThrow(
    expect.objectContaining({ code: 'PROTOCOL_VIOLATION' }),
  );
});

it('with named subjects the engine resyncs under its own name and answers requests addressed to it', async () => {
  const hub = new LocalHub();
  const store = new MemoryLogStore(new MemoryBackend());
  const watcher = hub.connect();
  const resyncs: string[] = [];
  watcher.subscribe(S.resyncFromAny, (m) => resyncs.push(m.subject));
  watcher.subscribe(S.resync, (m) => resyncs.push(m.subject));
  const term = await store.campaign({ machine: 'l', address: 'l:1' }, new AbortController().signal);
  const engine = await Engine.start({
    term,
    bus: hub.connect(),
    cluster: CLUSTER,
    machineId: 'l',
    address: 'l:1',
    agentTtlMs: 60_000,
    subjectNames: 'named',
  });
  try {
    const bus = hub.connect();
    bus.publish(
      S.heartbeat('m1'),
      encode({ v: PROTOCOL_VERSION, machine: 'm1', ip: '10.0.0.9', metadata: {}, epoch: 0 }),
    );
    const req = (machine: string) => encode({ v: PROTOCOL_VERSION, machine });
    const full = decodeScheduleFull(await bus.request(S.scheduleGetOf('l', 'm1'), req('m1'), 5000));
    expect(full).toMatchObject({ kind: 'full', epoch: term.epoch, units: [] });
    expect(resyncs).toEqual([S.resyncFrom('l')]);
    // A request on m1's subject speaking for another machine is dropped.
    await expect(bus.request(S.scheduleGetOf('l', 'm1'), req('m2'), 300)).rejects.toThrow();
    expect(engine.stats.malformed).toBe(1);
  } finally {
    await engine.stop('test over');
  }
});
