/**
 * How the daemon's leader campaign waits and logs after a failed campaign.
 *
 * A transient failure (etcd away, a lost race) is retried within about a second, with a warning
 * each time. A log holding events this version cannot read is said at error level each time and
 * retried after 10 s, leaving the election to a daemon that can read them. A refusal by etcd (PERMISSION_DENIED: these credentials may read the
 * cluster's keys but not write them) will not heal by itself: it is said once, at error level,
 * with what to do, and retried with an exponential backoff up to `maxMs`, so a machine given
 * read-only credentials but left campaigning neither floods its log nor etcd. Retrying at all
 * lets a grant made later take effect without a restart.
 */
import { ErrorCode, errorText, isFlotillaError } from '../errors';
import type { LogSink } from '../log';

export interface CampaignRetryOptions {
  cluster: string;
  log: LogSink;
  /** First wait after a refusal; doubles each time. */
  deniedMinMs?: number;
  /** Longest wait after a refusal. */
  deniedMaxMs?: number;
}

/** Whether etcd refused the campaign for the credentials' role (not an outage). */
export function isPermissionDenied(err: unknown): boolean {
  return isFlotillaError(err, ErrorCode.PermissionDenied);
}

export class CampaignRetry {
  private denied = 0;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(private readonly o: CampaignRetryOptions) {
    this.minMs = o.deniedMinMs ?? 1000;
    this.maxMs = o.deniedMaxMs ?? 30_000;
  }

  /** Logs a failed campaign and returns how long to wait before campaigning again. */
  failed(err: unknown): number {
    if (isFlotillaError(err, ErrorCode.UnknownEventSchema)) {
      // A log this version cannot read stays unreadable: say so loudly, and leave the election
      // to a daemon that can (a newer version) for a while before trying again.
      this.o.log.error('refusing to lead: unknown events in the log', { error: errorText(err) });
      return 10_000 + Math.random() * 500;
    }
    if (!isPermissionDenied(err)) {
      this.o.log.warn('campaign failed; retrying', { error: errorText(err) });
      return 500 + Math.random() * 500;
    }
    const wait = Math.min(this.minMs * 2 ** Math.min(this.denied, 30), this.maxMs);
    if (this.denied === 0) {
      this.o.log.error(
        `campaign failed: permission denied: these etcd credentials cannot write /flotilla/${this.o.cluster}/; ` +
          'set disable_engine=true on agent-only machines, or grant the role readwrite on that prefix ' +
          `(docs/security.md, step 4); retrying every ${Math.round(this.maxMs / 1000)} s at most, quietly`,
        { error: errorText(err) },
      );
    } else {
      this.o.log.debug('campaign still refused: permission denied', {
        attempts: this.denied + 1,
        nextInMs: wait,
      });
    }
    this.denied++;
    return wait;
  }

  /** The campaign succeeded: a later refusal is reported again. */
  succeeded(): void {
    if (this.denied > 0) this.o.log.info('campaign allowed again', { refusals: this.denied });
    this.denied = 0;
  }
}
