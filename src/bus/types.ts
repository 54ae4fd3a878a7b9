import { ErrorCode, FlotillaError } from '../errors';

/**
 * The message bus between leader and agents: NATS in production, an in-process bus in dev mode
 * and fast tests. Payloads are bytes; `src/protocol/` encodes and validates them.
 */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Present on requests: answer with `respond`. */
  respond?(data: Uint8Array): void;
  /**
   * The subject `respond` publishes to, as the requester chose it (NATS only). A responder with
   * more rights than the requester checks it: a reply is published with the responder's rights.
   */
  reply?: string;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface Bus {
  /**
   * Largest message the server takes (NATS's `max_payload`, 1 MiB by default). Publishing more
   * throws PAYLOAD_TOO_LARGE; senders of large things split them below this.
   */
  readonly maxPayload: number;
  /** Fire-and-forget, except for a message above `maxPayload` (PAYLOAD_TOO_LARGE). */
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription;
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Resolves once everything published so far has reached the server. */
  flush(): Promise<void>;
  /** Connection state changes: 'connected' after the first connect and every reconnect, 'disconnected' on loss. */
  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void;
  close(): Promise<void>;
}

/** Throws PAYLOAD_TOO_LARGE, naming the subject, the size and the limit, for a message above it. */
export function checkPayload(subject: string, data: Uint8Array, maxPayload: number): void {
  if (data.length <= maxPayload) return;
  throw new FlotillaError(
    ErrorCode.PayloadTooLarge,
    `message of ${data.length} bytes on ${subject} is above the bus's max_payload (${maxPayload} bytes); raise max_payload in the NATS server's configuration`,
    { details: { subject, bytes: data.length, maxPayload } },
  );
}
