import fs from 'node:fs';
import path from 'node:path';
import { cliVersion } from '../version';
import { ErrorCode, FlotillaError } from '../errors';
import type { RawRestored, Restored } from '../store/types';
import {
  CollectingSink,
  HistoryParser,
  historyChunks,
  type HistoryFile,
  type HistoryHeader,
  type HistorySink,
} from './export-format';

/**
 * Writing and reading history files (the format: src/history/export-format.ts), for `flotilla
 * events export`, `flotilla backup`, `flotilla replay FILE` and `flotilla viz FILE`.
 */

/**
 * A file written under a temporary name next to it, then synced and renamed: never half a
 * file. `abort()` removes the temporary file.
 */
export class AtomicFile {
  private readonly tmp: string;
  private readonly fd: number;
  bytes = 0;

  constructor(private readonly file: string) {
    this.tmp = path.join(
      path.dirname(path.resolve(file)),
      `.${path.basename(file)}.${process.pid}.tmp`,
    );
    this.fd = fs.openSync(this.tmp, 'w', 0o600);
  }

  write(buf: Uint8Array): void {
    for (let at = 0; at < buf.length;) at += fs.writeSync(this.fd, buf, at, buf.length - at);
    this.bytes += buf.length;
  }

  commit(): void {
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }

  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already closed (the rename failed): only the temporary file is left to remove.
    }
    fs.rmSync(this.tmp, { force: true });
  }
}

/** Writes a history file: to a temporary name, synced, then renamed (never half a file). */
export function writeHistoryFile(
  file: string,
  restored: Restored | RawRestored,
  cluster: string,
): { bytes: number } {
  const out = new AtomicFile(file);
  try {
    for (const chunk of historyChunks(restored, { cluster, flotilla: cliVersion() }))
      out.write(chunk);
    out.commit();
  } catch (err) {
    out.abort();
    throw err;
  }
  return { bytes: out.bytes };
}

/**
 * Reads and checks a history file; a file that cannot be read is HISTORY_NOT_FOUND. Read in
 * large chunks and parsed line by line: the file's text is never held whole (a 200 MiB file
 * read as one string, then split, cost more in copying and garbage collection than parsing).
 */
export function readHistoryFile(file: string): HistoryFile {
  const sink = new CollectingSink();
  const header = streamHistoryFile(file, sink);
  return { header, restored: sink.restored() };
}

/**
 * Reads and checks a history file as readHistoryFile does, giving what it reads to `sink` as
 * it reads it (nothing is held: a fold over a long file keeps only its state). With
 * `keepIfContains`, only the lines holding one of these strings are parsed whole; the others
 * are read as stubs (HistoryParser.stubLine) — all of them, when the list is empty.
 */
export function streamHistoryFile(
  file: string,
  sink: HistorySink,
  opts: { keepIfContains?: readonly string[] } = {},
): HistoryHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw notFound(file, err);
  }
  const parser = new HistoryParser(file, sink);
  const stubs = opts.keepIfContains !== undefined;
  // A line with an escape sequence is parsed whole: the needles are searched as written.
  const needles = stubs ? [...opts.keepIfContains!, '\\'].map((s) => Buffer.from(s)) : [];
  // next[i]: where needle i next occurs in the buffer (Infinity: not in the rest of it).
  const next = needles.map(() => -1);
  try {
    let buf = Buffer.allocUnsafe(CHUNK);
    let have = 0;
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      let n: number;
      try {
        n = fs.readSync(fd, buf, have, buf.length - have, null);
      } catch (err) {
        throw notFound(file, err);
      }
      if (n === 0) break;
      const end = have + n;
      const view = buf.subarray(0, end);
      next.fill(-1);
      let at = 0;
      for (let nl = view.indexOf(10, have); nl >= 0; nl = view.indexOf(10, at)) {
        let whole = !stubs;
        for (let i = 0; i < needles.length && !whole; i++) {
          if (next[i] !== Infinity && next[i] < at) {
            const p = view.indexOf(needles[i], at);
            next[i] = p < 0 ? Infinity : p;
          }
          whole = next[i] < nl;
        }
        if (whole || !parser.stubLine(buf, at, nl)) parser.line(buf.toString('utf8', at, nl));
        at = nl + 1;
      }
      // Keep the incomplete last line at the start of the buffer for the next read.
      buf.copy(buf, 0, at, end);
      have = end - at;
    }
    if (have > 0) parser.line(buf.toString('utf8', 0, have));
  } finally {
    fs.closeSync(fd);
  }
  return parser.end();
}

const CHUNK = 4 << 20;

function notFound(file: string, err: unknown): FlotillaError {
  return new FlotillaError(
    ErrorCode.HistoryNotFound,
    `cannot read history file ${file}: ${(err as Error).message}`,
    { cause: err, details: { file } },
  );
}
