/**
 * Follows the leader key: an etcd watch for promptness, plus a poll while the watch is down
 * (after an outage etcd3 may take a while to re-establish it) and a slow poll while it is up (a
 * member cut off from its quorum keeps a watch open but silent).
 *
 * Every observation carries the etcd revision it was made at; an observation older than the
 * current one is ignored, so a slow poll can never roll the state back.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { parseLeaderInfo } from '../common';
import type { LeaderInfo } from '../types';
import type { EtcdKeys } from './keys';

export interface LeaderState {
  /** The revision this state was observed at. */
  revision: number;
  info?: LeaderInfo;
  /** Create revision of the leader key (identifies one term), when present. */
  createRevision?: number;
}

export function leaderStateOf(kv: IKeyValue | undefined, revision: number): LeaderState {
  if (!kv) return { revision };
  return {
    revision,
    info: parseLeaderInfo(kv.value.toString()),
    createRevision: Number(kv.create_revision),
  };
}

/** Slow poll while the watch is connected, as a multiple of pollMs. */
const CONNECTED_POLL_FACTOR = 10;

export class LeaderWatch {
  private state: LeaderState = { revision: 0 };
  private listeners = new Set<(s: LeaderState) => void>();
  private watcher: Watcher | undefined;
  private connected = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private running = false;
  private lingerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly pollMs: number,
    private readonly callTimeoutMs: number,
  ) {}

  get current(): LeaderState {
    return this.state;
  }

  /** Subscribes; the watch runs while anyone listens. */
  subscribe(listener: (s: LeaderState) => void): () => void {
    this.listeners.add(listener);
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (!this.running) this.start();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      // A waiting candidate unsubscribes and subscribes again every pollMs: keep the watch
      // open a little rather than re-creating it each time.
      if (this.lingerTimer) clearTimeout(this.lingerTimer);
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = undefined;
        if (this.listeners.size === 0) this.stop();
      }, this.pollMs * 2);
    };
  }

  /** Records an observation made elsewhere (a get, a txn's failure branch). */
  observe(s: LeaderState): void {
    if (s.revision < this.state.revision) return;
    const changed =
      s.createRevision !== this.state.createRevision ||
      JSON.stringify(s.info) !== JSON.stringify(this.state.info) ||
      s.revision > this.state.revision;
    this.state = s;
    if (changed) for (const l of [...this.listeners]) l(s);
  }

  /** Reads the leader key now (linearizable) and records it. */
  async poll(): Promise<LeaderState> {
    const res = await this.client.kv.range(
      { key: this.keys.leader },
      { deadline: Date.now() + this.callTimeoutMs },
    );
    const s = leaderStateOf(res.kvs[0], Number(res.header.revision));
    this.observe(s);
    return this.state;
  }

  stop(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.running = false;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    const w = this.watcher;
    this.watcher = undefined;
    this.connected = false;
    // A watch being dropped: if cancelling it fails, the server drops it with the connection.
    if (w) void w.cancel().catch(() => undefined);
  }

  private start(): void {
    this.running = true;
    this.openWatch();
    this.schedulePoll(0);
  }

  private openWatch(): void {
    const w = this.client.watch().key(this.keys.leader).watcher();
    this.watcher = w;
    w.on('connected', () => {
      if (this.watcher !== w) return;
      this.connected = true;
      // Whatever happened while disconnected: read it now rather than trust the replay.
      this.schedulePoll(0);
    });
    w.on('disconnected', () => {
      if (this.watcher !== w) return;
      this.connected = false;
      this.schedulePoll(this.pollMs);
    });
    w.on('data', (res) => {
      if (this.watcher !== w) return;
      const last = res.events[res.events.length - 1];
      if (!last) return;
      const revision = Number(res.header.revision);
      this.observe(
        last.type === 'Delete'
          ? { revision }
          : leaderStateOf(last.kv, Number(last.kv.mod_revision)),
      );
    });
    w.on('error', () => {
      // The server cancelled the watch (e.g. its start revision was compacted): start over.
      if (this.watcher !== w || !this.running) return;
      // Already cancelled by the server: cancelling again may fail, harmlessly.
      void w.cancel().catch(() => undefined);
      this.connected = false;
      this.openWatch();
      this.schedulePoll(0);
    });
  }

  private schedulePoll(ms: number): void {
    if (!this.running) return;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      if (!this.running) return;
      this.poll().then(
        () => this.schedulePoll(this.connected ? this.pollMs * CONNECTED_POLL_FACTOR : this.pollMs),
        () => this.schedulePoll(this.pollMs / 2),
      );
    }, ms);
  }
}
