import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type NatsConnection,
  type TlsOptions,
} from 'nats';
import { ErrorCode, FlotillaError } from '../errors';
import type { Bus, BusMessage, Subscription } from './types';
import { checkPayload } from './types';

export interface NatsBusOptions {
  servers: string[];
  /** Connection name shown by the server's monitoring (e.g. "flotillad m1"). */
  name?: string;
  /** TLS (PEM contents): `ca` verifies the server; `cert`/`key` are presented when it asks (mTLS). */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Username and password, when the server requires them. */
  user?: string;
  pass?: string;
  /** This daemon's NKey seed (`flotilla bus-auth`): the server knows it by its public key. */
  nkeySeed?: string;
  /** A NATS credentials file's contents (JWT + seed; decentralized auth). */
  creds?: string;
  /**
   * Prefix of this connection's reply inboxes (`_INBOX.<cluster>.<machine>`), so the server's
   * permissions can let a machine receive replies on its own inboxes only.
   */
  inboxPrefix?: string;
  /**
   * Told of asynchronous errors the server reports, such as a permissions violation (this
   * identity may not publish or subscribe there: the bus authorization and the daemon disagree).
   */
  onError?: (message: string) => void;
}

/**
 * The Bus over a real NATS connection. Reconnects forever with jitter, so a NATS restart does
 * not make every agent reconnect in the same instant. Core NATS drops what is published while
 * the server is away: the protocol's sequence numbers and full-schedule requests cover that.
 */
/** NATS's default `max_payload`, assumed until the server's INFO says otherwise. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export class NatsBus implements Bus {
  private listeners = new Set<(s: 'connected' | 'disconnected') => void>();
  /** Between a 'disconnect' and the next 'reconnect' (a listener added then hears so at once). */
  private down = false;

  private constructor(
    private readonly nc: NatsConnection,
    onError?: (message: string) => void,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.down = true;
          this.emit('disconnected');
        } else if (s.type === 'reconnect') {
          this.down = false;
          this.emit('connected');
        } else if (s.type === 'error') onError?.(String(s.data));
      }
    })();
  }

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    try {
      const nc = await connect({
        servers: opts.servers,
        name: opts.name,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        reconnectJitter: 500,
        waitOnFirstConnect: true,
        pingInterval: 10_000,
        ...(opts.tls
          ? {
              tls: {
                ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
                ...(opts.tls.cert ? { cert: opts.tls.cert } : {}),
                ...(opts.tls.key ? { key: opts.tls.key } : {}),
                // Passed through to tls.connect by nats.js' node transport (not in its types).
                checkServerIdentity: serverIdentityCheck(opts.servers),
              } as TlsOptions,
            }
          : {}),
        ...(opts.user ? { user: opts.user, pass: opts.pass } : {}),
        ...(opts.nkeySeed
          ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(opts.nkeySeed)) }
          : opts.creds
            ? { authenticator: credsAuthenticator(new TextEncoder().encode(opts.creds)) }
            : {}),
        ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
      });
      return new NatsBus(nc, opts.onError);
    } catch (err) {
      throw new FlotillaError(
        ErrorCode.Unavailable,
        `cannot connect to NATS at ${opts.servers.join(',')}: ${(err as Error).message}`,
        { cause: err, retryable: true },
      );
    }
  }

  private emit(s: 'connected' | 'disconnected'): void {
    for (const l of this.listeners) l(s);
  }

  get maxPayload(): number {
    return this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  }

  publish(subject: string, data: Uint8Array): void {
    checkPayload(subject, data, this.maxPayload);
    try {
      this.nc.publish(subject, data);
    } catch {
      // Closed or draining connection: a publish is fire-and-forget by contract.
    }
  }

  subscribe(subject: string, handler: (msg: BusMessage) => void): Subscription {
    const sub = this.nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return;
        const msg: BusMessage = { subject: m.subject, data: m.data };
        if (m.reply) {
          msg.reply = m.reply;
          msg.respond = (d) => {
            checkPayload(m.reply!, d, this.maxPayload);
            m.respond(d);
          };
        }
        handler(msg);
      },
    });
    return { unsubscribe: () => sub.unsubscribe() };
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    checkPayload(subject, data, this.maxPayload);
    try {
      const m = await this.nc.request(subject, data, { timeout: timeoutMs });
      return m.data;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '503')
        throw new FlotillaError(ErrorCode.Unavailable, `no responders on ${subject}`, {
          cause: err,
          retryable: true,
        });
      throw new FlotillaError(ErrorCode.Timeout, `no reply on ${subject} within ${timeoutMs} ms`, {
        cause: err,
        retryable: true,
      });
    }
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  onStatus(listener: (status: 'connected' | 'disconnected') => void): () => void {
    this.listeners.add(listener);
    queueMicrotask(() => listener(this.down || this.nc.isClosed() ? 'disconnected' : 'connected'));
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}

/**
 * nats.js upgrades its socket to TLS without passing the host, so Node checks the server's
 * certificate against "localhost": a certificate for `tls://10.0.0.1:4222` (subjectAltName
 * IP:10.0.0.1) was refused with ERR_TLS_CERT_ALTNAME_INVALID. The certificate (already verified
 * against the CA) must instead name one of the configured servers.
 */
export function serverIdentityCheck(
  servers: string | string[] | undefined,
): (host: string, cert: PeerCertificate) => Error | undefined {
  const hosts = [servers ?? []]
    .flat()
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return new URL(s.includes('://') ? s : `nats://${s}`).hostname.replace(/^\[|\]$/g, '');
      } catch {
        return s;
      }
    });
  return (host, cert) => {
    let first: Error | undefined;
    for (const h of hosts.length > 0 ? hosts : [host]) {
      const err = checkServerIdentity(h, cert);
      if (err === undefined) return undefined;
      first ??= err;
    }
    return first;
  };
}
