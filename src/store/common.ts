/**
 * Pieces every LogStore implementation shares: batch validation, the "term lost" signal, the
 * typed errors a store throws, and the snapshot checksum. Keeping them here makes the three
 * stores (memory, file, etcd) fail the same way for the same reason, which the shared contract
 * suite (test/store-contract.ts) checks.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FlotillaError } from '../errors';
import { isDurable, type FlotillaEvent } from '../events/types';
import type { LogSink } from '../log';
import type { LeaderInfo } from './types';

/** Stores only warn (a torn line, a dropped partial batch): any log sink will do. */
export type StoreLogger = Pick<LogSink, 'warn'>;

/** Default logger: one line on stderr. Stores only warn (torn lines, dropped partial batches). */
export const stderrLogger: StoreLogger = {
  warn(msg, fields) {
    const kv = fields ? ' ' + JSON.stringify(fields) : '';
    process.stderr.write(`${new Date().toISOString()} WARN store: ${msg}${kv}\n`);
  },
};

export function fencedError(epoch: number, reason: string, cause?: unknown): FlotillaError {
  return new FlotillaError(ErrorCode.Fenced, `term ${epoch} is fenced: ${reason}`, {
    cause,
    details: { epoch },
  });
}

/** The store could not be reached or did not answer in time; the same call may work later. */
export function unavailableError(what: string, cause?: unknown): FlotillaError {
  // grpc-js ends a failed connection's message with an empty "Resolution note:".
  const why =
    cause instanceof Error ? `: ${cause.message.replace(/\.?\s*Resolution note:\s*$/, '')}` : '';
  return new FlotillaError(ErrorCode.StoreUnavailable, `store unavailable (${what})${why}`, {
    cause,
    retryable: true,
  });
}

/** Stored data is unreadable or fails its checksum; `key` names the key or file (and line). */
export function corruptError(key: string, why: string, cause?: unknown): FlotillaError {
  return new FlotillaError(ErrorCode.StoreCorrupt, `store data corrupt at ${key}: ${why}`, {
    cause,
    details: { key },
  });
}

export function invalidAppend(why: string, details: Record<string, number | string> = {}) {
  return new FlotillaError(ErrorCode.InvalidArgument, `append refused: ${why}`, { details });
}

/**
 * Checks a batch before any byte is written: only durable events (transient ones are rebuilt
 * from agents and must never reach the store), indexes strictly increasing and above
 * `lastIndex` (the highest index this term has restored or appended; 0 when unknown).
 */
export function assertAppendable(events: readonly FlotillaEvent[], lastIndex: number): void {
  let prev = lastIndex;
  for (const e of events) {
    if (!isDurable(e)) {
      throw invalidAppend(`event ${e.index} (${e.type}) is transient and is never stored`, {
        index: e.index,
        type: e.type,
      });
    }
    if (!Number.isSafeInteger(e.index) || e.index <= prev) {
      throw invalidAppend(`event index ${e.index} does not follow ${prev}`, {
        index: e.index,
        previous: prev,
      });
    }
    prev = e.index;
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The "term lost" latch: fires its listeners once, with the first reason, and never again.
 * `resign()` sets `ended` without firing (a term that gives up is not "lost").
 */
export class LostSignal {
  private listeners = new Set<(reason: string) => void>();
  private reasonText: string | undefined;
  private endedFlag = false;

  get lost(): boolean {
    return this.reasonText !== undefined;
  }

  /** True once the term is over for any reason (lost or resigned): writes must fail. */
  get ended(): boolean {
    return this.endedFlag;
  }

  get reason(): string | undefined {
    return this.reasonText;
  }

  on(listener: (reason: string) => void): () => void {
    if (this.reasonText !== undefined) {
      // Late subscribers still hear about it, asynchronously like everyone else.
      const reason = this.reasonText;
      queueMicrotask(() => listener(reason));
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  fire(reason: string): void {
    if (this.endedFlag) return;
    this.endedFlag = true;
    this.reasonText = reason;
    const ls = [...this.listeners];
    this.listeners.clear();
    for (const l of ls) {
      try {
        l(reason);
      } catch {
        // A listener's failure must not keep the others from hearing that the term is over.
      }
    }
  }

  /** Ends the term without firing (resign). */
  end(): void {
    this.endedFlag = true;
    this.listeners.clear();
  }
}

/** Parses a LeaderInfo written by a store; undefined if it is not one. */
export function parseLeaderInfo(text: string): LeaderInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LeaderInfo>;
    if (
      typeof v.machine === 'string' &&
      typeof v.address === 'string' &&
      typeof v.epoch === 'number'
    ) {
      return { machine: v.machine, address: v.address, epoch: v.epoch };
    }
  } catch {
    // fall through
  }
  return undefined;
}

export function sameLeader(a: LeaderInfo | undefined, b: LeaderInfo | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.machine === b.machine && a.address === b.address && a.epoch === b.epoch;
}

/** Rejects with the signal's reason (an AbortError by default) if it aborts first. */
export function abortable<T>(signal: AbortSignal, p: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('campaign aborted');
}

/** Sleeps `ms`, waking early (resolving) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
