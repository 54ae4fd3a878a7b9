/**
 * The message bus between leader and agents: NATS in production, an in-process bus in dev mode
 * and fast tests. Payloads are bytes; `src/protocol/` encodes and validates them.
 */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Present on requests: answer with `respond`. */
  respond?(data: Uint8Array): void;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface Bus {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription;
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Resolves once everything published so far has reached the server. */
  flush(): Promise<void>;
  /** Connection state changes: 'connected' after the first connect and every reconnect, 'disconnected' on loss. */
  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void;
  close(): Promise<void>;
}
