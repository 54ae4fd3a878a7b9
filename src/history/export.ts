import fs from 'node:fs';
import { ErrorCode, FlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import { SCHEMA_VERSION } from '../events/types';
import type { Restored } from '../store/types';

/**
 * The history file: a cluster's retained history (its latest snapshot and the durable log kept
 * behind and after it) as one versioned, self-describing file. Written by `flotilla events
 * export` and `flotilla backup`, read by `flotilla replay FILE` and `flotilla viz FILE`.
 *
 * JSON lines, so a reader can stream a million events:
 *
 *   line 1  the header: {"format":"flotilla-history","version":1,"cluster":…,"exportedAt":…,
 *           "schemaVersion":…,"snapshotIndex":…,"snapshotEpoch":…,"events":N,"description":…}
 *   line 2  the snapshot document (src/engine/snapshot.ts: canonical JSON of the folded state
 *           at snapshotIndex), or null when the log starts at the first event
 *   then    one event per line, in index order, as stored in the log (every event carries its
 *           schema version `v`)
 */
export const HISTORY_FORMAT = 'flotilla-history';
export const HISTORY_VERSION = 1;

export interface HistoryHeader {
  format: typeof HISTORY_FORMAT;
  version: number;
  cluster: string;
  /** ms since the epoch. */
  exportedAt: number;
  /** The newest event schema version the writer knew. */
  schemaVersion: number;
  snapshotIndex: number;
  snapshotEpoch: number;
  events: number;
  description: string;
}

const DESCRIPTION =
  'Flotilla cluster history: line 1 this header; line 2 the snapshot (canonical JSON of the ' +
  'folded state at snapshotIndex) or null; then one durable event per line in index order.';

/** The history file's text, a line at a time (for writing to a file or a stream). */
export function* historyLines(
  restored: Restored,
  cluster: string,
  exportedAt: number,
): Generator<string> {
  const header: HistoryHeader = {
    format: HISTORY_FORMAT,
    version: HISTORY_VERSION,
    cluster,
    exportedAt,
    schemaVersion: SCHEMA_VERSION,
    snapshotIndex: restored.snapshot?.index ?? 0,
    snapshotEpoch: restored.snapshot?.epoch ?? 0,
    events: restored.tail.length,
    description: DESCRIPTION,
  };
  yield JSON.stringify(header) + '\n';
  yield restored.snapshot ? Buffer.from(restored.snapshot.data).toString('utf8') + '\n' : 'null\n';
  const chunk: string[] = [];
  for (const e of restored.tail) {
    chunk.push(JSON.stringify(e));
    if (chunk.length === 1000) yield chunk.splice(0).join('\n') + '\n';
  }
  if (chunk.length > 0) yield chunk.join('\n') + '\n';
}

/** Writes a history file (to a temporary name, then renamed: never a half-written file). */
export function writeHistoryFile(
  file: string,
  restored: Restored,
  cluster: string,
  exportedAt = Date.now(),
): { bytes: number } {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  let bytes = 0;
  try {
    for (const line of historyLines(restored, cluster, exportedAt)) bytes += fs.writeSync(fd, line);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return { bytes };
}

/** Reads a history file; every problem names the file and line. */
export function readHistoryFile(file: string): { header: HistoryHeader; restored: Restored } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.HistoryNotFound,
      `cannot read history file ${file}: ${(err as Error).message}`,
      { cause: err, details: { file } },
    );
  }
  return parseHistory(text, file);
}

export function parseHistory(
  text: string,
  file: string,
): { header: HistoryHeader; restored: Restored } {
  const bad = (line: number, why: string): FlotillaError =>
    new FlotillaError(ErrorCode.StoreCorrupt, `${file}:${line}: ${why}`, {
      details: { file, line },
    });
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const parse = (i: number): unknown => {
    try {
      return JSON.parse(lines[i]);
    } catch (err) {
      throw bad(i + 1, `not JSON: ${(err as Error).message}`);
    }
  };
  if (lines.length < 2) throw bad(lines.length + 1, 'not a Flotilla history file (too short)');
  const header = parse(0) as HistoryHeader;
  if (header?.format !== HISTORY_FORMAT)
    throw bad(1, `not a Flotilla history file (format ${JSON.stringify(header?.format)})`);
  if (header.version !== HISTORY_VERSION)
    throw bad(
      1,
      `history file version ${header.version} is not supported (want ${HISTORY_VERSION})`,
    );
  const snapshotDoc = parse(1);
  const tail: FlotillaEvent[] = [];
  let last = 0;
  for (let i = 2; i < lines.length; i++) {
    const e = parse(i) as FlotillaEvent;
    if (typeof e?.index !== 'number' || typeof e.type !== 'string' || typeof e.time !== 'number')
      throw bad(i + 1, 'an event needs index, time and type');
    if (e.index <= last) throw bad(i + 1, `event index ${e.index} after ${last}: not in order`);
    last = e.index;
    tail.push(e);
  }
  if (tail.length !== header.events)
    throw bad(
      lines.length,
      `the header says ${header.events} events, the file holds ${tail.length}`,
    );
  const restored: Restored = { tail };
  if (snapshotDoc !== null)
    restored.snapshot = {
      index: header.snapshotIndex,
      epoch: header.snapshotEpoch,
      data: Buffer.from(lines[1]),
    };
  return { header, restored };
}
