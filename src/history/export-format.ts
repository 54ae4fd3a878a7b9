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
import { SCHEMA_VERSION, type FlotillaEvent } from '../events/types';
import type { Restored } from '../store/types';

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

/** The durable state at one moment (`restored`) as the lines of a history file. */
export function* historyLines(
  restored: Restored,
  meta: { cluster: string; flotilla: string; created?: Date },
): Generator<string> {
  const events = restored.tail;
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
  for (const e of events) yield JSON.stringify({ event: e }) + '\n';
  yield JSON.stringify({ end: { events: events.length } }) + '\n';
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
 * Parses and checks a history file: format and version, the snapshot's size and digest, every
 * event line (increasing indexes within the header's range, a type and the metadata fields),
 * and the end line with the count. Errors name the file and line.
 */
export function parseHistory(text: string, file: string): HistoryFile {
  const p = new HistoryParser(file);
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    p.line(text.slice(at, nl));
    at = nl + 1;
  }
  return p.end();
}

/**
 * The checks of `parseHistory`, one line at a time, so that a file can be read in chunks (see
 * readHistoryFile) without holding its whole text or an array of its lines.
 */
export class HistoryParser {
  private n = 0;
  private header?: HistoryHeader;
  private snapshot: Restored['snapshot'];
  private wantSnapshot = false;
  private readonly tail: FlotillaEvent[] = [];
  private prev = 0;
  private done?: HistoryFile;
  private endLine = 0;

  constructor(private readonly file: string) {}

  /**
   * The next line, `buf[at, nl)`, as a stub holding only the event's `type`, `index`, `epoch`,
   * `time` and `v`, without a `JSON.parse` — when it is an event line in historyLines' layout
   * (`{"event":{"type":"T",…,"index":I,"epoch":E,"time":T,"v":V}}`); false (nothing consumed)
   * otherwise. For reading one unit's timeline: the lines not about it need no more.
   */
  stubLine(buf: Buffer, at: number, nl: number): boolean {
    if (!this.header || this.wantSnapshot || this.done) return false;
    const h = at + STUB_HEAD.length;
    if (nl <= h || buf.compare(STUB_HEAD, 0, STUB_HEAD.length, at, h) !== 0) return false;
    const q = buf.indexOf(34, h);
    if (q <= h || q >= nl) return false;
    for (let i = h; i < q; i++) if (buf[i] === 92 || buf[i] > 126 || buf[i] < 32) return false;
    let p = buf.lastIndexOf(STUB_FIELDS[0], nl - 1);
    if (p < q) return false;
    const v: number[] = [];
    for (let f = 0; f < STUB_FIELDS.length; f++) {
      const lit = STUB_FIELDS[f];
      if (p + lit.length > nl || buf.compare(lit, 0, lit.length, p, p + lit.length) !== 0)
        return false;
      p += lit.length;
      let n = 0;
      const start = p;
      while (p < nl && buf[p] >= 48 && buf[p] <= 57) n = n * 10 + (buf[p++] - 48);
      if (p === start || p - start > 15) return false;
      v.push(n);
    }
    if (p + 2 !== nl || buf[p] !== 125 || buf[p + 1] !== 125) return false;
    this.n++;
    if (v[0] <= this.prev)
      throw bad(this.file, this.n, `event index ${v[0]} does not follow ${this.prev}`);
    this.prev = v[0];
    this.tail.push({
      type: buf.toString('latin1', h, q),
      index: v[0],
      epoch: v[1],
      time: v[2],
      v: v[3],
    } as unknown as FlotillaEvent);
    return true;
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
      this.snapshot = { index: s.index, epoch: s.epoch, data };
      return;
    }
    const tail = this.tail;
    const rec = this.parse(text);
    if ('end' in rec) {
      const n = isObject(rec.end) ? rec.end.events : undefined;
      if (n !== tail.length || n !== header.events)
        throw bad(file, this.n, `end line counts ${String(n)} events; the file has ${tail.length}`);
      if (tail.length > 0 && (tail[0].index !== header.first || this.prev !== header.last))
        throw bad(
          file,
          this.n,
          `events ${tail[0].index}..${this.prev} do not match the header's ${header.first}..${header.last}`,
        );
      this.endLine = this.n;
      this.done = { header, restored: { snapshot: this.snapshot, tail } };
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
    if ((e.index as number) <= this.prev)
      throw bad(file, this.n, `event index ${String(e.index)} does not follow ${this.prev}`);
    this.prev = e.index as number;
    tail.push(e as unknown as FlotillaEvent);
  }

  /** After the last line: the file, or why it is incomplete. */
  end(): HistoryFile {
    if (this.done) return this.done;
    if (this.n === 0) throw bad(this.file, 1, 'empty file: not a flotilla history file');
    if (this.wantSnapshot)
      throw bad(this.file, this.n + 1, 'the snapshot line is missing (truncated file?)');
    throw bad(this.file, this.n, 'no end line: the file is truncated');
  }
}

const STUB_HEAD = Buffer.from('{"event":{"type":"');
const STUB_FIELDS = ['"index":', ',"epoch":', ',"time":', ',"v":'].map((f) => Buffer.from(f));

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
