import type { ApiClient } from '../api/client';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { connectApi } from '../api/client';
import { currentCall, FORWARDED_BY_HEADER } from '../api/access';
import {
  bindAll,
  callStream,
  callUnary,
  deriveApi,
  isWrite,
  retriedOnFailover,
} from '../api/methods';
import type { ClusterApi } from '../api/types';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import type { LeaderInfo } from '../store/types';

/** `api` with every method bound to it, as a plain object (src/api/methods.ts). */
export { bindAll };

/**
 * What a leader that lost its term while the store was unreachable keeps serving: its last state
 * for reads, a clear refusal for writes (the method table's, src/api/methods.ts). Dropped as soon
 * as a leader is known again.
 */
export function readOnlyView(api: ClusterApi, why: string): ClusterApi {
  const refuse = (): never => {
    throw new FlotillaError(
      ErrorCode.StoreUnavailable,
      `writes are refused: ${why}; reads are served from the last known state`,
      { retryable: true },
    );
  };
  return {
    ...deriveApi({
      unary: async (name, req) => (isWrite(name, req) ? refuse() : callUnary(api, name, req)),
      // Streams are reads (src/api/methods.ts).
      stream: (name, req, signal) => callStream(api, name, req, signal),
    }),
    // The state is this daemon's last, but it leads no more: it names no leader (it would
    // otherwise call itself leader of an old term while a newer one may have begun).
    getClusterStatus: async (r) => {
      if (isWrite('getClusterStatus', r)) refuse();
      return { ...(await api.getClusterStatus(r)), leaderMachineId: '', leaderAddress: '' };
    },
  };
}

/** A call forwarded more often than this is refused (a loop between several daemons). */
const MAX_FORWARDING_HOPS = 3;

/** The daemons the current call was forwarded through, oldest first. */
function forwardingHops(): string[] {
  const by = currentCall()?.forwardedBy;
  return by ? by.split(',').filter(Boolean) : [];
}

/** Failures of a read that a failover explains: the caller's read is tried again. */
const FAILOVER_CODES: ReadonlySet<string> = new Set([
  ErrorCode.NoLeader,
  ErrorCode.NotLeader,
  ErrorCode.Unavailable,
]);

export interface RouterOptions {
  /**
   * How long a read keeps being retried for its caller through a failover (the dead leader's
   * key expires, a new leader is elected and restores; default 8 s, below the CLI's 10 s request
   * deadline, so the caller gets the retried answer or a clear error, not a timeout). 0: no retries.
   */
  readRetryMs?: number;
}

/**
 * The ClusterApi every daemon serves. On the leader it is the engine's own API; on a follower
 * every call (reads too: only the leader holds the state) is forwarded to the leader's gRPC
 * address, which the daemon learns from the election key. Its methods are derived from the
 * method table (src/api/methods.ts): a unary read is retried through a failover (`read`), a
 * write and a stream go to the current target once.
 */
// The class's ClusterApi methods are set in the constructor, one per entry of the method table.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface ApiRouter extends ClusterApi {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class ApiRouter {
  private local: ClusterApi | undefined;
  /** Whether the local engine still leads right now (its lease certainly valid). */
  private localLeads: (() => boolean) | undefined;
  private leader: LeaderInfo | undefined;
  private remote: { address: string; client: ApiClient } | undefined;
  private stale: ClusterApi | undefined;

  /** `credentials`: for calls forwarded to the leader (TLS/mTLS; default plaintext). */
  constructor(
    private readonly self: { machine: string },
    private readonly credentials?: ChannelCredentials,
    private readonly opts: RouterOptions = {},
  ) {
    Object.assign(
      this,
      deriveApi({
        unary: (name, req) =>
          retriedOnFailover(name, req)
            ? this.read((a) => callUnary(a, name, req))
            : callUnary(this.target(), name, req),
        stream: (name, req, signal) => callStream(this.target(), name, req, signal),
      }),
    );
  }

  /**
   * The local engine's API while this daemon leads. `leads` says whether it still does at the
   * moment of a call: a leader paused past its lease learns it only at its next keepalive, and
   * must not answer (nor name itself leader) until then.
   */
  setLocal(api: ClusterApi | undefined, leads?: () => boolean): void {
    this.local = api;
    this.localLeads = api ? leads : undefined;
  }

  /** Serves `api` read-only until a leader is known (the store is unreachable). */
  setStale(api: ClusterApi | undefined): void {
    this.stale = api;
  }

  setLeader(leader: LeaderInfo | undefined): void {
    this.leader = leader;
    if (leader) this.stale = undefined;
  }

  get leaderInfo(): LeaderInfo | undefined {
    return this.leader;
  }

  private target(): ClusterApi {
    const l = this.leader;
    if (this.local && (this.localLeads?.() ?? true)) return this.local;
    if (this.stale && (!l || l.machine === this.self.machine)) return this.stale;
    if (!l || l.machine === this.self.machine) {
      throw new FlotillaError(
        ErrorCode.NoLeader,
        'no leader is elected right now; try again in a few seconds',
        { retryable: true },
      );
    }
    // A call forwarded "to the leader" that comes back to a daemon it already passed (an
    // advertise address that reaches the wrong daemon, e.g. 127.0.0.1 on another host) would go
    // round forever: refuse it, saying what to fix. One more hop is fine (a leader that just
    // lost its term forwards to the new one).
    const hops = forwardingHops();
    if (hops.includes(this.self.machine) || hops.length >= MAX_FORWARDING_HOPS)
      throw new FlotillaError(
        ErrorCode.ForwardingLoop,
        `forwarding loop: this call was forwarded by ${hops.map((h) => h.slice(0, 12)).join(' → ')} to reach the leader ${l.machine.slice(0, 12)} at ${l.address}, and came back to ${this.self.machine.slice(0, 12)}; set grpc_advertise on the leader to an address the other machines reach`,
        { details: { hops: hops.join(','), leader: l.machine, address: l.address } },
      );
    if (!this.remote || this.remote.address !== l.address) {
      this.remote?.client.close();
      this.remote = {
        address: l.address,
        client: connectApi(l.address, {
          credentials: this.credentials,
          metadata: () => ({
            [FORWARDED_BY_HEADER]: [...forwardingHops(), this.self.machine].join(','),
          }),
        }),
      };
    }
    return this.remote.client;
  }

  close(): void {
    this.closed = true;
    this.remote?.client.close();
    this.remote = undefined;
  }

  private closed = false;

  /**
   * A read, retried for its caller while a failover explains the failure (no leader yet, the old
   * leader unreachable or deposed), with backoff, for at most `readRetryMs`. Each try looks up
   * the leader again. Writes are not retried here: one that failed in flight may have landed.
   */
  private async read<T>(call: (api: ClusterApi) => Promise<T>): Promise<T> {
    const deadline = Date.now() + (this.opts.readRetryMs ?? 8_000);
    let delay = 50;
    for (;;) {
      try {
        return await call(this.target());
      } catch (err) {
        const failover = isFlotillaError(err) && FAILOVER_CODES.has(err.code);
        if (!failover || this.closed || Date.now() + delay > deadline) throw err;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 500);
      }
    }
  }
}
