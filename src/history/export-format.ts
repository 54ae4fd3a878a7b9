/**
 * Retained history as one versioned file: what `flotilla backup` writes and `flotilla restore`
 * reads (and the format `flotilla events export` is meant to share). Newline-delimited JSON,
 * self-describing, so a file can be checked, read by other tools, and refused clearly:
 *
 *   line 1      {"format":"flotilla-history","version":1,"cluster":…,"created":…,
 *                "flotilla":"0.1.0","schema":1,"first":F,"last":L,"events":N,
 *                "snapshot":{"index":S,"epoch":E,"bytes":B,"sha256":…}|null}
 *   line 2      {"snapshot":"<base64 of the snapshot bytes>"}        (when the header has one)
 *   next N      {"event":{…one FlotillaEvent…}}                      (index increasing, F..L)
 *   last line   {"end":{"events":N}}                                 (a truncated file has none)
 *
 * The events are the store's durable log as retained (log_retention behind the snapshot); the
 * snapshot is the leader's own encoding (src/engine/snapshot.ts) of the state at its index.
 * Together they are the cluster's durable state at index `last` (or the snapshot's, if later).
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FlotillaError } from '../errors';
import { readEventTail, TAIL_INDEX, TAIL_TIME, TAIL_V } from '../events/bytes';
import { EVENT_TYPES, SCHEMA_VERSION, type FlotillaEvent } from '../events/types';
import type { RawEvent, RawRestored, Restored, Snapshot } from '../store/types';

export const HISTORY_FORMAT = 'flotilla-history';
/** Bump when the layout changes; readers refuse versions above theirs. */
export const HISTORY_VERSION = 1;

export interface HistoryHeader {
  format: typeof HISTORY_FORMAT;
  version: number;
  cluster: string;
  /** ISO time the file was written. */
  created: string;
  /** The flotilla version that wrote it. */
  flotilla: string;
  /** Event schema version (SCHEMA_VERSION) of the writer. */
  schema: number;
  /** Index of the first and last event in the file (0 when none). */
  first: number;
  last: number;
  events: number;
  snapshot: { index: number; epoch: number; bytes: number; sha256: string } | null;
}

export interface HistoryFile {
  header: HistoryHeader;
  restored: Restored;
}

/**
 * The durable state at one moment as the parts of a history file, in order: whole lines, and
 * for each event `{"event":`, the event's JSON and `}\n`. Events read from the store unparsed
 * (`RawRestored`) are copied byte for byte; parsed ones are written with `JSON.stringify`.
 */
export function* historyParts(
  restored: Restored | RawRestored,
  meta: { cluster: string; flotilla: string; created?: Date },
): Generator<string | Uint8Array> {
  const events: readonly (FlotillaEvent | RawEvent)[] = restored.tail;
  const snap = restored.snapshot;
  const header: HistoryHeader = {
    format: HISTORY_FORMAT,
    version: HISTORY_VERSION,
    cluster: meta.cluster,
    created: (meta.created ?? new Date()).toISOString(),
    flotilla: meta.flotilla,
    schema: SCHEMA_VERSION,
    first: events[0]?.index ?? 0,
    last: events.at(-1)?.index ?? 0,
    events: events.length,
    snapshot: snap
      ? { index: snap.index, epoch: snap.epoch, bytes: snap.data.length, sha256: sha256(snap.data) }
      : null,
  };
  yield JSON.stringify(header) + '\n';
  if (snap) yield JSON.stringify({ snapshot: Buffer.from(snap.data).toString('base64') }) + '\n';
  for (const e of events) {
    yield EVENT_OPEN;
    yield isRaw(e) ? e.json : JSON.stringify(e);
    yield EVENT_CLOSE;
  }
  yield JSON.stringify({ end: { events: events.length } }) + '\n';
}

/**
 * A history file's bytes in chunks of about `chunkBytes` (a part larger than that is a chunk of
 * its own): parts copied into one buffer per chunk. One write per part was 100,000 system calls
 * for a large history, and Buffer.concat of 300,000 small parts cost more than the copying.
 * Each chunk is a new buffer, the caller's to keep.
 */
export function* historyChunks(
  restored: Restored | RawRestored,
  meta: { cluster: string; flotilla: string; created?: Date },
  chunkBytes = 1 << 20,
): Generator<Buffer> {
  let out = Buffer.allocUnsafe(chunkBytes);
  let size = 0;
  for (const part of historyParts(restored, meta)) {
    const b = typeof part === 'string' ? Buffer.from(part, 'utf8') : part;
    if (size + b.length > chunkBytes && size > 0) {
      yield out.subarray(0, size);
      out = Buffer.allocUnsafe(chunkBytes);
      size = 0;
    }
    if (b.length > chunkBytes) yield Buffer.from(b);
    else {
      out.set(b, size);
      size += b.length;
    }
  }
  if (size > 0) yield out.subarray(0, size);
}

/** A whole history file's text (for tests and small histories). */
export function historyText(
  restored: Restored | RawRestored,
  meta: { cluster: string; flotilla: string; created?: Date },
): string {
  const parts = [...historyParts(restored, meta)];
  return parts.map((p) => (typeof p === 'string' ? p : Buffer.from(p).toString('utf8'))).join('');
}

const EVENT_OPEN = Buffer.from('{"event":');
const EVENT_CLOSE = Buffer.from('}\n');

function isRaw(e: FlotillaEvent | RawEvent): e is RawEvent {
  return 'json' in e && e.json instanceof Uint8Array;
}

/** The index a history file's state stands at: its last event, or its snapshot if later. */
export function historyIndex(h: HistoryHeader): number {
  return Math.max(h.last, h.snapshot?.index ?? 0);
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function bad(file: string, line: number, what: string): FlotillaError {
  return new FlotillaError(ErrorCode.InvalidArgument, `${file}:${line}: ${what}`, {
    details: { file, line },
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Where a reader puts what it reads of a history file, line by line: the snapshot (checked),
 * then each event in index order — whole (`event`), or, for a line the caller said it needs
 * only the metadata of, as a stub (`stub`; see HistoryParser.stubLine).
 */
export interface HistorySink {
  snapshot(s: Snapshot): void;
  event(e: FlotillaEvent): void;
  stub(type: string, index: number, time: number, v: number): void;
}

/** A sink that keeps everything: the history as `Restored` (a stub is kept as a partial event). */
export class CollectingSink implements HistorySink {
  private snap: Snapshot | undefined;
  readonly tail: FlotillaEvent[] = [];

  snapshot(s: Snapshot): void {
    this.snap = s;
  }

  event(e: FlotillaEvent): void {
    this.tail.push(e);
  }

  stub(type: string, index: number, time: number, v: number): void {
    this.tail.push({ type, index, epoch: 0, time, v } as unknown as FlotillaEvent);
  }

  restored(): Restored {
    return { snapshot: this.snap, tail: this.tail };
  }
}

/**
 * Parses and checks a history file: format and version, the snapshot's size and digest, every
 * event line (increasing indexes within the header's range, a type and the metadata fields),
 * and the end line with the count. Errors name the file and line.
 */
export function parseHistory(text: string, file: string): HistoryFile {
  const sink = new CollectingSink();
  const p = new HistoryParser(file, sink);
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    p.line(text.slice(at, nl));
    at = nl + 1;
  }
  return { header: p.end(), restored: sink.restored() };
}

/**
 * The checks of `parseHistory`, one line at a time, so that a file can be read in chunks (see
 * readHistoryFile) without holding its whole text or an array of its lines; what it reads goes
 * to a sink, as it is read.
 */
export class HistoryParser {
  private n = 0;
  private header?: HistoryHeader;
  private wantSnapshot = false;
  private count = 0;
  private first = 0;
  private prev = 0;
  private done = false;
  private endLine = 0;
  /** A stub's v, time, epoch and index (in the order stubLine reads them). */
  private readonly stubValues = new Float64Array(4);

  constructor(
    private readonly file: string,
    private readonly sink: HistorySink,
  ) {}

  /**
   * The next line, `buf[at, nl)`, given to the sink as a stub (the event's `type`, `index`,
   * `time` and `v`), without a `JSON.parse` — when it is an event line in historyParts' layout
   * (`{"event":{"type":"T",…,"index":I,"epoch":E,"time":T,"v":V}}`, T plain ASCII); false
   * (nothing consumed) otherwise. For reading one unit's timeline: the lines not about it need
   * no more. Only the line's framing and these fields are checked, not the JSON between them.
   */
  stubLine(buf: Uint8Array, at: number, nl: number): boolean {
    if (!this.header || this.wantSnapshot || this.done) return false;
    const h = at + STUB_HEAD.length;
    if (nl <= h) return false;
    for (let i = 0; i < STUB_HEAD.length; i++) if (buf[at + i] !== STUB_HEAD[i]) return false;
    let q = h;
    while (q < nl && buf[q] !== 34) {
      if (buf[q] === 92 || buf[q] > 126 || buf[q] < 32) return false;
      q++;
    }
    if (q === h || q >= nl) return false;
    // The metadata fields, read backwards from the event's closing brace (src/events/bytes.ts).
    const p = nl - 2;
    if (p <= q || buf[p + 1] !== 125) return false;
    const vals = this.stubValues;
    if (readEventTail(buf, p, q, vals) === 0) return false;
    this.n++;
    this.accept(vals[TAIL_INDEX]);
    this.sink.stub(typeName(buf, h, q), vals[TAIL_INDEX], vals[TAIL_TIME], vals[TAIL_V]);
    return true;
  }

  private accept(index: number): void {
    if (index <= this.prev)
      throw bad(this.file, this.n, `event index ${index} does not follow ${this.prev}`);
    if (this.count++ === 0) this.first = index;
    this.prev = index;
  }

  private parse(text: string): Record<string, unknown> {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw bad(this.file, this.n, `not JSON (${(err as Error).message})`);
    }
    if (!isObject(v)) throw bad(this.file, this.n, 'expected a JSON object');
    return v;
  }

  /** The next line, without its newline. */
  line(text: string): void {
    this.n++;
    const file = this.file;
    if (this.done) throw bad(file, this.endLine + 1, 'data after the end line');
    if (!this.header) {
      this.header = checkHeader(this.parse(text), file);
      this.wantSnapshot = this.header.snapshot !== null;
      return;
    }
    const header = this.header;
    if (this.wantSnapshot) {
      this.wantSnapshot = false;
      const s = header.snapshot!;
      const line = this.parse(text);
      if (typeof line.snapshot !== 'string')
        throw bad(file, this.n, 'expected {"snapshot": BASE64}');
      const data = new Uint8Array(Buffer.from(line.snapshot, 'base64'));
      if (data.length !== s.bytes || sha256(data) !== s.sha256)
        throw bad(file, this.n, 'the snapshot does not match its size and sha256 in the header');
      this.sink.snapshot({ index: s.index, epoch: s.epoch, data });
      return;
    }
    const rec = this.parse(text);
    if ('end' in rec) {
      const n = isObject(rec.end) ? rec.end.events : undefined;
      if (n !== this.count || n !== header.events)
        throw bad(file, this.n, `end line counts ${String(n)} events; the file has ${this.count}`);
      if (this.count > 0 && (this.first !== header.first || this.prev !== header.last))
        throw bad(
          file,
          this.n,
          `events ${this.first}..${this.prev} do not match the header's ${header.first}..${header.last}`,
        );
      this.endLine = this.n;
      this.done = true;
      return;
    }
    const e = rec.event;
    if (!isObject(e)) throw bad(file, this.n, 'expected {"event": {...}} or {"end": {...}}');
    for (const k of ['index', 'epoch', 'time', 'v'] as const) {
      if (typeof e[k] !== 'number' || !Number.isFinite(e[k]))
        throw bad(file, this.n, `event field ${k}: expected a number`);
    }
    if (typeof e.type !== 'string' || e.type === '')
      throw bad(file, this.n, 'event field type: expected a string');
    this.accept(e.index as number);
    this.sink.event(e as unknown as FlotillaEvent);
  }

  /** After the last line: the file's header, or why it is incomplete. */
  end(): HistoryHeader {
    if (this.done) return this.header!;
    if (this.n === 0) throw bad(this.file, 1, 'empty file: not a flotilla history file');
    if (this.wantSnapshot)
      throw bad(this.file, this.n + 1, 'the snapshot line is missing (truncated file?)');
    throw bad(this.file, this.n, 'no end line: the file is truncated');
  }
}

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));
const STUB_HEAD = bytes('{"event":{"type":"');
/** The known event types as bytes, to name a stub's type without making a string per line. */
const TYPE_BYTES = EVENT_TYPES.map((t) => [t, bytes(t)] as const);

function typeName(buf: Uint8Array, from: number, to: number): string {
  const len = to - from;
  for (const [name, b] of TYPE_BYTES) {
    if (b.length !== len) continue;
    let i = 0;
    while (i < len && buf[from + i] === b[i]) i++;
    if (i === len) return name;
  }
  return Buffer.from(buf.buffer, buf.byteOffset + from, len).toString('latin1');
}

function checkHeader(h: Record<string, unknown>, file: string): HistoryHeader {
  if (h.format !== HISTORY_FORMAT)
    throw bad(file, 1, `not a flotilla history file (format ${JSON.stringify(h.format)})`);
  if (typeof h.version !== 'number' || !Number.isInteger(h.version) || h.version < 1)
    throw bad(file, 1, `invalid version ${JSON.stringify(h.version)}`);
  if (h.version > HISTORY_VERSION)
    throw bad(
      file,
      1,
      `written by a newer flotilla (format version ${h.version}; this one reads up to ${HISTORY_VERSION})`,
    );
  for (const k of ['first', 'last', 'events', 'schema'] as const) {
    if (typeof h[k] !== 'number' || !Number.isInteger(h[k]) || (h[k] as number) < 0)
      throw bad(file, 1, `header field ${k}: expected a whole number`);
  }
  if (typeof h.cluster !== 'string') throw bad(file, 1, 'header field cluster: expected a string');
  const s = h.snapshot as unknown;
  if (
    s !== null &&
    (!isObject(s) ||
      typeof s.index !== 'number' ||
      typeof s.epoch !== 'number' ||
      typeof s.sha256 !== 'string')
  )
    throw bad(file, 1, 'header field snapshot: expected {index, epoch, bytes, sha256} or null');
  return h as unknown as HistoryHeader;
}
