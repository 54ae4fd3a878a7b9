/**
 * The `--watch-all` baseline (fleet's delivery design), as bench-only Bus wrappers; src/ is
 * untouched. The leader side writes every schedule delta into etcd under one shared prefix;
 * every agent watches that whole prefix, decodes every change (the thundering herd fleet had)
 * and hands only its own machine's deltas to the agent. Everything else (reports, heartbeats,
 * full-schedule requests) still travels on NATS, so the two designs differ only in delivery.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Bus, BusMessage, Subscription } from '../../src/bus/types';
import { decodeScheduleDelta } from '../../src/protocol';

const SCHEDULE = /^flotilla\.[^.]+\.agent\.([^.]+)\.schedule$/;
/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128;

/** Leader side: schedule publishes become etcd puts under `prefix` (in order, batched). */
export class HerdLeaderBus implements Bus {
  private seq = 0;
  private pending: { key: string; value: Buffer }[] = [];
  private writing: Promise<void> | undefined;
  puts = 0;
  writeErrors = 0;

  constructor(
    private readonly inner: Bus,
    private readonly etcd: Etcd3,
    private readonly prefix: string,
  ) {}

  get maxPayload(): number {
    return this.inner.maxPayload;
  }

  publish(subject: string, data: Uint8Array): void {
    const m = SCHEDULE.exec(subject);
    if (!m) return this.inner.publish(subject, data);
    const key = `${this.prefix}/${String(++this.seq).padStart(12, '0')}`;
    this.pending.push({ key, value: Buffer.concat([Buffer.from(m[1] + '\n'), data]) });
    this.writing ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_TXN_OPS);
      try {
        await this.etcd.kv.txn({
          success: batch.map((p) => ({ request_put: { key: Buffer.from(p.key), value: p.value } })),
        });
        this.puts += batch.length;
      } catch {
        this.writeErrors += batch.length;
      }
    }
    this.writing = undefined;
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription {
    return this.inner.subscribe(subject, handler);
  }
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.inner.request(subject, data, timeoutMs);
  }
  async flush(): Promise<void> {
    await this.writing;
    await this.inner.flush();
  }
  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void {
    return this.inner.onStatus(listener);
  }
  async close(): Promise<void> {
    await this.writing;
    await this.inner.close();
  }
}

/** Agent side: one etcd watch on the whole prefix per agent; its own deltas go to the agent. */
export class HerdAgentBus implements Bus {
  /** Every change seen on the shared prefix (its own and every other machine's). */
  herdMessages = 0;
  herdBytes = 0;
  ownMessages = 0;
  private handler: ((msg: BusMessage) => void) | undefined;
  private ownSubject = '';
  private watcher: Watcher | undefined;

  private constructor(
    private readonly inner: Bus,
    private readonly etcd: Etcd3,
    private readonly machine: string,
  ) {}

  get maxPayload(): number {
    return this.inner.maxPayload;
  }

  static async open(
    inner: Bus,
    etcd: Etcd3,
    prefix: string,
    machine: string,
  ): Promise<HerdAgentBus> {
    const b = new HerdAgentBus(inner, etcd, machine);
    b.watcher = await etcd.watch().prefix(`${prefix}/`).create();
    b.watcher.on('put', (kv: IKeyValue) => b.onPut(kv));
    return b;
  }

  private onPut(kv: IKeyValue): void {
    this.herdMessages++;
    this.herdBytes += kv.value.length;
    const nl = kv.value.indexOf(10);
    const machine = kv.value.subarray(0, nl).toString();
    const data = kv.value.subarray(nl + 1);
    // Like fleet's agents, each one reads every change to find out whether it is concerned.
    decodeScheduleDelta(data);
    if (machine !== this.machine || !this.handler) return;
    this.ownMessages++;
    this.handler({ subject: this.ownSubject, data });
  }

  publish(subject: string, data: Uint8Array): void {
    this.inner.publish(subject, data);
  }
  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription {
    const m = SCHEDULE.exec(subject);
    if (!m) return this.inner.subscribe(subject, handler);
    this.ownSubject = subject;
    this.handler = handler;
    return { unsubscribe: () => (this.handler = undefined) };
  }
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.inner.request(subject, data, timeoutMs);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void {
    return this.inner.onStatus(listener);
  }
  async close(): Promise<void> {
    await this.watcher?.cancel();
    await this.inner.close();
  }
}
