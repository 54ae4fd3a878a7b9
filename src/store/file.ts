/**
 * FileLogStore: the durable store of dev mode (`flotillad --dev`), one process, one directory.
 *
 * Files in `dir`:
 *   election.json  {"epoch":N,"leader":{machine,address,epoch,token}|null}, replaced via temp+rename
 *   log.jsonl      one line per append: {"epoch":E,"events":[...]}\n, fsync'd before append()
 *                  resolves. A batch is one line, so a crash can only tear the last line, which
 *                  restore ignores with a warning and the next campaign truncates away.
 *   snapshot.bin   a JSON header line {index,epoch,bytes,sha256}\n followed by the raw bytes,
 *                  written to snapshot.bin.tmp, fsync'd, then renamed over (manifest-last: the
 *                  rename is the commit, a crash before it leaves the previous snapshot current).
 *
 * Election: campaign() always wins at once (there is no other process to wait for) and bumps the
 * epoch. Fencing still holds if two stores share a directory by mistake: every write first
 * re-reads election.json and fails FENCED when another term's token is there.
 * watchLeader() sees changes made through this process only.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {
  abortReason,
  assertAppendable,
  corruptError,
  fencedError,
  LostSignal,
  parseLeaderInfo,
  sha256Hex,
  stderrLogger,
  unavailableError,
  type StoreLogger,
} from './common';
import { FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import type {
  Candidate,
  LeaderInfo,
  LogStore,
  Restored,
  Snapshot,
  SnapshotStats,
  Term,
} from './types';

export interface FileLogStoreOptions {
  /** Directory holding the store's files; created if missing. */
  dir: string;
  /** fsync after every write (default true). Only benchmarks of the engine may turn it off. */
  fsync?: boolean;
  logger?: StoreLogger;
}

interface ElectionFile {
  epoch: number;
  leader: (LeaderInfo & { token: string }) | null;
}

interface SnapshotHeader {
  index: number;
  epoch: number;
  bytes: number;
  sha256: string;
}

interface LogLine {
  epoch: number;
  events: FlotillaEvent[];
}

interface ParsedLog {
  batches: FlotillaEvent[][];
  /** Byte length of the complete, valid lines: where the next append goes. */
  goodBytes: number;
  torn: boolean;
}

const LOG = 'log.jsonl';
const SNAPSHOT = 'snapshot.bin';
const ELECTION = 'election.json';

/** In-process leader change notifications, per directory. */
const changes = new EventEmitter();
changes.setMaxListeners(0);

export class FileLogStore implements LogStore {
  readonly dir: string;
  private readonly fsyncOn: boolean;
  private readonly logger: StoreLogger;
  private terms = new Set<FileTerm>();
  private stops = new Set<() => void>();

  constructor(options: FileLogStoreOptions) {
    this.dir = path.resolve(options.dir);
    this.fsyncOn = options.fsync ?? true;
    this.logger = options.logger ?? stderrLogger;
    fs.mkdirSync(this.dir, { recursive: true });
  }

  /** Wins at once: bumps the epoch, takes the election file, trims a torn log tail. */
  async campaign(candidate: Candidate, signal: AbortSignal): Promise<Term> {
    if (signal.aborted) throw abortReason(signal);
    return this.io('campaign', async () => {
      const parsed = this.parseLog();
      const election = this.readElection();
      let epoch = election?.epoch ?? 0;
      if (!election)
        for (const b of parsed.batches) for (const e of b) epoch = Math.max(epoch, e.epoch);
      epoch = Math.max(epoch, this.readSnapshotHeader()?.epoch ?? 0) + 1;
      if (parsed.torn) {
        // The writer owns the tail now: cut the torn bytes so the next line starts clean.
        fs.truncateSync(this.file(LOG), parsed.goodBytes);
      }
      const token = randomUUID();
      const info: LeaderInfo = { machine: candidate.machine, address: candidate.address, epoch };
      this.writeElection({ epoch, leader: { ...info, token } });
      const term = new FileTerm(this, epoch, token, lastIndexOf(parsed));
      this.terms.add(term);
      changes.emit(this.dir, info);
      return term;
    });
  }

  async leader(): Promise<LeaderInfo | undefined> {
    const l = this.readElection()?.leader;
    return l ? { machine: l.machine, address: l.address, epoch: l.epoch } : undefined;
  }

  watchLeader(listener: (leader: LeaderInfo | undefined) => void): () => void {
    let last: string | undefined;
    const deliver = (l: LeaderInfo | undefined): void => {
      const key = JSON.stringify(l ?? null);
      if (key !== last) {
        last = key;
        listener(l);
      }
    };
    const onChange = (l: LeaderInfo | undefined): void => deliver(l);
    changes.on(this.dir, onChange);
    void this.leader().then(deliver, () => undefined);
    const stop = (): void => {
      changes.off(this.dir, onChange);
      this.stops.delete(stop);
    };
    this.stops.add(stop);
    return stop;
  }

  async readAll(): Promise<Restored> {
    return this.io('readAll', async () => {
      const snapshot = this.readSnapshot();
      const tail = this.parseLog().batches.flat();
      return snapshot ? { snapshot, tail } : { tail };
    });
  }

  /** Resigns the terms this store holds and stops its watchers. */
  async close(): Promise<void> {
    for (const t of [...this.terms])
      await t
        .resign()
        .catch((err: unknown) =>
          this.logger.warn('resigning a term at close failed', { error: String(err) }),
        );
    for (const s of [...this.stops]) s();
  }

  // ----- file primitives (used by FileTerm) -------------------------------------------------

  /** @internal */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** @internal */
  get fsyncEnabled(): boolean {
    return this.fsyncOn;
  }

  /** @internal Runs `fn`, mapping I/O errors (disk full, permissions…) to STORE_UNAVAILABLE. */
  async io<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof FlotillaError) && err instanceof Error && 'code' in err) {
        throw unavailableError(what, err);
      }
      throw err;
    }
  }

  /** @internal */
  readElection(): ElectionFile | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file(ELECTION), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const v = JSON.parse(text) as ElectionFile;
      const leader = v.leader && parseLeaderInfo(JSON.stringify(v.leader));
      return { epoch: v.epoch, leader: leader ? { ...leader, token: v.leader!.token } : null };
    } catch (err) {
      throw corruptError(this.file(ELECTION), 'not valid JSON', err);
    }
  }

  /** @internal */
  writeElection(e: ElectionFile): void {
    this.replaceFile(ELECTION, Buffer.from(JSON.stringify(e) + '\n'));
  }

  /** @internal Writes `name` atomically: temp file, fsync, rename, fsync of the directory. */
  replaceFile(name: string, data: Buffer | Buffer[], commit = true): void {
    const tmp = this.file(`${name}.tmp`);
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const d of Array.isArray(data) ? data : [data]) fs.writeSync(fd, d);
      if (this.fsyncOn) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (!commit) return;
    fs.renameSync(tmp, this.file(name));
    this.syncDir();
  }

  /** @internal */
  syncDir(): void {
    if (!this.fsyncOn) return;
    const fd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * @internal Reads log.jsonl. Only the last line may be torn (a crash mid-append): it is
   * ignored with a warning. A bad line anywhere else is STORE_CORRUPT naming file and line.
   */
  parseLog(): ParsedLog {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file(LOG));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return { batches: [], goodBytes: 0, torn: false };
      }
      throw err;
    }
    const batches: FlotillaEvent[][] = [];
    let at = 0;
    let line = 0;
    let prev = 0;
    while (at < buf.length) {
      line++;
      const nl = buf.indexOf(0x0a, at);
      const end = nl < 0 ? buf.length : nl;
      const isLast = nl < 0 || nl === buf.length - 1;
      let parsed: LogLine | undefined;
      try {
        parsed = nl < 0 ? undefined : (JSON.parse(buf.toString('utf8', at, end)) as LogLine);
        if (parsed && !Array.isArray(parsed.events)) parsed = undefined;
      } catch {
        parsed = undefined;
      }
      if (!parsed) {
        if (isLast) {
          this.logger.warn('ignoring a torn last line of the log (a crash during an append)', {
            file: this.file(LOG),
            line,
            bytes: buf.length - at,
          });
          return { batches, goodBytes: at, torn: true };
        }
        throw corruptError(`${this.file(LOG)}:${line}`, 'unreadable log line');
      }
      for (const e of parsed.events) {
        if (!(e.index > prev)) {
          throw corruptError(`${this.file(LOG)}:${line}`, `index ${e.index} after ${prev}`);
        }
        prev = e.index;
      }
      if (parsed.events.length > 0) batches.push(parsed.events);
      at = end + 1;
    }
    return { batches, goodBytes: buf.length, torn: false };
  }

  /** @internal */
  readSnapshotHeader(): SnapshotHeader | undefined {
    return this.readSnapshotFile()?.header;
  }

  /** @internal Reads snapshot.bin and checks its sha256 (mismatch: STORE_CORRUPT). */
  readSnapshot(): Snapshot | undefined {
    const f = this.readSnapshotFile();
    if (!f) return undefined;
    const data = new Uint8Array(f.buf.buffer, f.buf.byteOffset + f.dataAt, f.header.bytes);
    if (f.buf.length - f.dataAt !== f.header.bytes || sha256Hex(data) !== f.header.sha256) {
      throw corruptError(this.file(SNAPSHOT), 'size or sha256 does not match its header');
    }
    return { index: f.header.index, epoch: f.header.epoch, data: Uint8Array.from(data) };
  }

  private readSnapshotFile(): { header: SnapshotHeader; buf: Buffer; dataAt: number } | undefined {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(this.file(SNAPSHOT));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const nl = buf.indexOf(0x0a);
    try {
      const header = JSON.parse(buf.toString('utf8', 0, nl < 0 ? 0 : nl)) as SnapshotHeader;
      return { header, buf, dataAt: nl + 1 };
    } catch (err) {
      throw corruptError(this.file(SNAPSHOT), 'unreadable header', err);
    }
  }

  /** @internal */
  forget(term: FileTerm): void {
    this.terms.delete(term);
  }

  /** @internal */
  announce(info: LeaderInfo | undefined): void {
    changes.emit(this.dir, info);
  }
}

function lastIndexOf(p: ParsedLog): number {
  const b = p.batches[p.batches.length - 1];
  return b ? b[b.length - 1].index : 0;
}

/** A term of a FileLogStore. Operations run one at a time, in call order. */
export class FileTerm implements Term {
  private readonly signal = new LostSignal();
  private chain: Promise<unknown> = Promise.resolve();
  private lastIndex: number;

  constructor(
    private readonly store: FileLogStore,
    readonly epoch: number,
    private readonly token: string,
    lastIndex: number,
  ) {
    this.lastIndex = lastIndex;
  }

  get lost(): boolean {
    return this.signal.lost;
  }

  onLost(listener: (reason: string) => void): () => void {
    return this.signal.on(listener);
  }

  restore(): Promise<Restored> {
    return this.serial('restore', async () => {
      this.fence();
      const snapshot = this.store.readSnapshot();
      const after = snapshot?.index ?? 0;
      const tail = this.store
        .parseLog()
        .batches.flat()
        .filter((e) => e.index > after);
      this.lastIndex = Math.max(this.lastIndex, tail[tail.length - 1]?.index ?? after);
      return snapshot ? { snapshot, tail } : { tail };
    });
  }

  append(events: FlotillaEvent[]): Promise<void> {
    return this.serial('append', async () => {
      assertAppendable(events, this.lastIndex);
      this.fence();
      if (events.length === 0) return;
      const line: LogLine = { epoch: this.epoch, events };
      const fd = fs.openSync(this.store.file(LOG), 'a');
      try {
        fs.writeSync(fd, JSON.stringify(line) + '\n');
        if (this.store.fsyncEnabled) fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      this.lastIndex = events[events.length - 1].index;
    });
  }

  writeSnapshot(snapshot: Snapshot): Promise<SnapshotStats> {
    return this.serial('writeSnapshot', async () => {
      this.writeSnapshotFile(snapshot, true);
      return { bytes: snapshot.data.length, chunks: 1 };
    });
  }

  /**
   * Writes snapshot.bin.tmp without renaming it: what a crash between writing the data and
   * committing it leaves behind. For tests of manifest-last.
   */
  writeSnapshotChunks(snapshot: Snapshot): Promise<void> {
    return this.serial('writeSnapshot', async () => this.writeSnapshotFile(snapshot, false));
  }

  compact(throughIndex: number): Promise<void> {
    return this.serial('compact', async () => {
      this.fence();
      const limit = Math.min(throughIndex, this.store.readSnapshotHeader()?.index ?? 0);
      if (limit <= 0) return;
      const { batches } = this.store.parseLog();
      const keep = batches.filter((b) => b[b.length - 1].index > limit);
      if (keep.length === batches.length) return;
      // Temp + rename: a crash mid-compaction leaves the old, complete log in place.
      const lines = keep.map((events) =>
        Buffer.from(JSON.stringify({ epoch: events[0].epoch, events } satisfies LogLine) + '\n'),
      );
      this.store.replaceFile(LOG, lines);
    });
  }

  resign(): Promise<void> {
    return this.serial('resign', async () => {
      if (this.signal.ended) return;
      this.signal.end();
      this.store.forget(this);
      const e = this.store.readElection();
      if (e?.leader?.token === this.token) {
        this.store.writeElection({ epoch: e.epoch, leader: null });
        this.store.announce(undefined);
      }
    });
  }

  private writeSnapshotFile(snapshot: Snapshot, commit: boolean): void {
    this.fence();
    const header: SnapshotHeader = {
      index: snapshot.index,
      epoch: snapshot.epoch,
      bytes: snapshot.data.length,
      sha256: sha256Hex(snapshot.data),
    };
    const data = Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.length);
    this.store.replaceFile(SNAPSHOT, [Buffer.from(JSON.stringify(header) + '\n'), data], commit);
  }

  /** The fence: the election file must still carry this term's token. */
  private fence(): void {
    if (this.signal.ended) {
      throw fencedError(this.epoch, this.signal.reason ?? 'the term was resigned');
    }
    const e = this.store.readElection();
    if (e?.leader?.token !== this.token) {
      const reason = e?.leader
        ? `${e.leader.machine} took over with epoch ${e.leader.epoch}`
        : 'the election file no longer names this term';
      this.signal.fire(reason);
      throw fencedError(this.epoch, reason);
    }
  }

  private serial<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => this.store.io(what, fn));
    // Only the order is chained: the caller gets `run`'s error itself.
    this.chain = run.catch(() => undefined);
    return run;
  }
}
