import dbus from 'dbus-next';
import { ErrorCode, FlotillaError } from '../../errors';

export const SYSTEMD_NAME = 'org.freedesktop.systemd1';
export const MANAGER_PATH = '/org/freedesktop/systemd1';
export const MANAGER_IFACE = 'org.freedesktop.systemd1.Manager';
export const UNIT_IFACE = 'org.freedesktop.systemd1.Unit';
export const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';
const DBUS_NAME = 'org.freedesktop.DBus';
const DBUS_PATH = '/org/freedesktop/DBus';

/** dbus-next's runtime message type for signals (its .d.ts enum values are wrong: 0-based). */
const SIGNAL_TYPE = 4;

/**
 * At most this many method calls wait for a reply at once. The system bus allows 128 pending
 * replies per connection (dbus-daemon's max_replies_per_connection) and fails the excess with
 * LimitsExceeded; systemd answers one call at a time anyway, so a deeper pipeline buys nothing.
 */
const MAX_IN_FLIGHT = 64;

/** How long open() waits for the bus to answer Hello before giving up. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface BusOptions {
  /** A bus address ("unix:path=…"); connects with sessionBus({ busAddress }). */
  busAddress?: string;
  /** Without busAddress: true = the session (user) bus, false = the system bus. */
  userBus: boolean;
}

/** Counters kept for the benchmark and /metrics; plain numbers, reset never. */
export interface BusStats {
  /** Every method call sent: to systemd and to the bus daemon (AddMatch). */
  calls: number;
  /** The same, per member name ("StartUnit", "Get", …). */
  callsByMethod: Record<string, number>;
  /** Signals delivered to this connection by its match rules. */
  signalsReceived: number;
}

/** A signal from systemd, as delivered by dbus-next. */
export interface Signal {
  path: string;
  iface: string;
  member: string;
  body: unknown[];
}

/** The D-Bus error name of a failed call ("org.freedesktop.systemd1.NoSuchUnit"), if it is one. */
export function dbusErrorName(err: unknown): string | undefined {
  if (err instanceof dbus.DBusError) return err.type;
  if (err instanceof FlotillaError && typeof err.details.dbusError === 'string') {
    return err.details.dbusError;
  }
  return undefined;
}

/** Human text of a failed call: systemd's own message and its error name. */
export function describeError(err: unknown): string {
  if (err instanceof dbus.DBusError) return `${err.text} (${err.type})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * One D-Bus connection to systemd, spoken through dbus-next's low-level message API.
 *
 * Why not proxy objects: `getProxyObject` introspects every object it is asked for (one extra
 * round trip and an XML parse per unit). systemd's interfaces are stable and documented, so the
 * driver sends method calls by name and signature and reads signals off the raw message stream.
 *
 * Contract: every method call is counted in `stats`; at most MAX_IN_FLIGHT wait for a reply at
 * once; when the connection fails or closes, every waiting call rejects with a retryable
 * DriverFailed error instead of hanging (dbus-next itself never rejects them).
 */
export class SystemdBus {
  readonly stats: BusStats = { calls: 0, callsByMethod: {}, signalsReceived: 0 };
  private bus: dbus.MessageBus | undefined;
  private inFlight = 0;
  private readonly queue: (() => void)[] = [];
  private readonly waiting = new Set<(err: Error) => void>();
  private readonly closeListeners = new Set<(err: Error) => void>();
  private failure: Error | undefined;

  constructor(private readonly opts: BusOptions) {}

  /** Connects and waits for the bus's Hello reply; rejects (DriverFailed) if that fails. */
  async connect(onSignal: (s: Signal) => void): Promise<void> {
    const where = this.describe();
    const bus = this.opts.busAddress
      ? dbus.sessionBus({ busAddress: this.opts.busAddress })
      : this.opts.userBus
        ? dbus.sessionBus()
        : dbus.systemBus();
    this.bus = bus;
    this.failure = undefined;
    // Events of an earlier, disconnected connection must not fail this one.
    const lost = (cause: unknown): void => {
      if (this.bus === bus) this.fail(where, cause);
    };
    // Without an 'error' listener an EventEmitter error would crash the agent.
    bus.on('error', lost);
    (bus as unknown as { _connection: NodeJS.EventEmitter })._connection.on('end', () =>
      lost(new Error('connection closed by the peer')),
    );
    bus.on('message', (msg: dbus.Message) => {
      if ((msg.type as number) !== SIGNAL_TYPE) return;
      this.stats.signalsReceived++;
      onSignal({ path: msg.path, iface: msg.interface, member: msg.member, body: msg.body });
    });
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      bus.once('connect', () => resolve());
      this.waiting.add(reject);
      timer = setTimeout(
        () => lost(new Error(`no answer to Hello within ${CONNECT_TIMEOUT_MS} ms`)),
        CONNECT_TIMEOUT_MS,
      );
    }).finally(() => {
      clearTimeout(timer);
      this.waiting.clear();
    });
  }

  /** Calls `member` on systemd's Manager object. */
  manager(member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.call(SYSTEMD_NAME, MANAGER_PATH, MANAGER_IFACE, member, signature, body);
  }

  /** org.freedesktop.DBus.Properties.Get, unwrapped (64-bit values stay BigInt here). */
  async getProperty(path: string, iface: string, name: string): Promise<unknown> {
    const [v] = await this.call(SYSTEMD_NAME, path, PROPERTIES_IFACE, 'Get', 'ss', [iface, name]);
    return (v as dbus.Variant).value;
  }

  /** org.freedesktop.DBus.Properties.GetAll, unwrapped. */
  async getAll(path: string, iface: string): Promise<Record<string, unknown>> {
    const [all] = await this.call(SYSTEMD_NAME, path, PROPERTIES_IFACE, 'GetAll', 's', [iface]);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(all as Record<string, dbus.Variant>)) out[k] = v.value;
    return out;
  }

  /** Asks the bus daemon to deliver signals matching `rule` to this connection. */
  async addMatch(rule: string): Promise<void> {
    await this.call(DBUS_NAME, DBUS_PATH, DBUS_NAME, 'AddMatch', 's', [rule]);
  }

  /** Called once when the connection fails or closes (not after disconnect()). */
  onClose(listener: (err: Error) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  disconnect(): void {
    const bus = this.bus;
    this.bus = undefined;
    if (!bus) return;
    this.fail(this.describe(), new Error('driver closed'), false);
    bus.removeAllListeners('message');
    bus.disconnect();
  }

  private async call(
    destination: string,
    path: string,
    iface: string,
    member: string,
    signature: string,
    body: unknown[],
  ): Promise<unknown[]> {
    await this.slot();
    try {
      const bus = this.bus;
      if (!bus || this.failure) {
        throw this.failure ?? notConnected(this.describe());
      }
      this.stats.calls++;
      this.stats.callsByMethod[member] = (this.stats.callsByMethod[member] ?? 0) + 1;
      const msg = new dbus.Message({
        destination,
        path,
        interface: iface,
        member,
        signature,
        body,
      });
      let reject!: (err: Error) => void;
      const aborted = new Promise<never>((_, rej) => (reject = rej));
      this.waiting.add(reject);
      try {
        const reply = await Promise.race([bus.call(msg), aborted]);
        return reply?.body ?? [];
      } finally {
        this.waiting.delete(reject);
      }
    } finally {
      this.release();
    }
  }

  private slot(): Promise<void> {
    if (this.inFlight < MAX_IN_FLIGHT) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.inFlight--;
  }

  private fail(where: string, cause: unknown, notify = true): void {
    if (this.failure) return;
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.failure = new FlotillaError(
      ErrorCode.DriverFailed,
      `systemd driver: D-Bus connection to ${where} lost: ${reason}`,
      { cause, retryable: true },
    );
    for (const reject of [...this.waiting]) reject(this.failure);
    this.waiting.clear();
    if (notify) for (const l of [...this.closeListeners]) l(this.failure);
  }

  private describe(): string {
    if (this.opts.busAddress) return this.opts.busAddress;
    return this.opts.userBus ? 'the session bus' : 'the system bus';
  }
}

function notConnected(where: string): FlotillaError {
  return new FlotillaError(ErrorCode.DriverFailed, `systemd driver: not connected to ${where}`, {
    retryable: true,
  });
}
