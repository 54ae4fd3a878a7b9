/**
 * Follows the cluster through the gRPC Watch API and timestamps, for each unit, the first
 * moment it was observed active (a UnitStateReported event whose state.active is "active").
 * Timestamps are this process's performance.now(), the same clock the benchmark takes its
 * request times with.
 */
import { connectApi, type ApiClient } from '../../src/api/client';

export class ActiveWatcher {
  /** unit → performance.now() when first seen active. */
  readonly activeAt = new Map<string, number>();
  /** unit → the leader's event time (ms since the epoch) of its first UnitScheduled. */
  readonly scheduledTime = new Map<string, number>();
  /** unit → the leader's event time of its first state report (any state). */
  readonly firstReportTime = new Map<string, number>();
  /** unit → the leader's event time of the report that said active. */
  readonly activeTime = new Map<string, number>();
  /** unit → Date.now() when the watch delivered that report here. */
  readonly activeSeenWall = new Map<string, number>();
  /** unit → the machine it was first seen active on. */
  readonly activeOn = new Map<string, string>();
  /** unit → performance.now() when last seen not active (stopped, gone). */
  readonly inactiveAt = new Map<string, number>();
  events = 0;
  lastIndex = 0;
  errors = 0;
  private readonly abort = new AbortController();
  private client: ApiClient;
  private done: Promise<void>;
  private connected!: () => void;
  readonly ready: Promise<void>;

  /** `endpoint()` is asked again after a watch breaks (a new leader after a failover). */
  constructor(private readonly endpoint: () => string) {
    this.client = connectApi(endpoint(), { requestTimeoutMs: 0 });
    this.ready = new Promise((r) => (this.connected = r));
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        // A watch from index 0 streams only new events; prove it is live with one read first.
        await this.client.getClusterStatus({});
        // After a break, resume right after the last event seen (the leader keeps a buffer).
        const fromIndex = this.lastIndex > 0 ? this.lastIndex + 1 : 0;
        const stream = this.client.watch(
          { fromIndex, types: ['UnitScheduled', 'UnitStateReported'] },
          this.abort.signal,
        );
        this.connected();
        for await (const e of stream) {
          this.events++;
          this.lastIndex = Number(e.index);
          if (e.type === 'UnitScheduled') {
            if (!this.scheduledTime.has(e.unit)) this.scheduledTime.set(e.unit, Number(e.timeMs));
            continue;
          }
          if (e.type !== 'UnitStateReported') continue;
          const now = performance.now();
          if (!this.firstReportTime.has(e.unit)) this.firstReportTime.set(e.unit, Number(e.timeMs));
          const body = JSON.parse(e.json) as { state: { active: string } | null };
          if (body.state?.active === 'active') {
            if (!this.activeAt.has(e.unit)) {
              this.activeAt.set(e.unit, now);
              this.activeTime.set(e.unit, Number(e.timeMs));
              this.activeSeenWall.set(e.unit, Date.now());
              this.activeOn.set(e.unit, e.machine);
            }
          } else {
            this.inactiveAt.set(e.unit, now);
          }
        }
      } catch (err) {
        if (this.abort.signal.aborted) break;
        this.errors++;
        if ((err as Error).message.includes('no longer')) this.lastIndex = 0;
        await new Promise((r) => setTimeout(r, 100));
        this.client.close();
        this.client = connectApi(this.endpoint(), { requestTimeoutMs: 0 });
      }
    }
  }

  /** Resolves when every name has been seen active, or after `timeoutMs` (no throw). */
  async waitActive(names: string[], timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let missing = names.filter((n) => !this.activeAt.has(n));
    while (missing.length > 0 && performance.now() < deadline) {
      await new Promise<void>((r) => setTimeout(r, 50));
      missing = missing.filter((n) => !this.activeAt.has(n));
    }
    return names.length - missing.length;
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.done.catch(() => undefined);
    this.client.close();
  }
}
