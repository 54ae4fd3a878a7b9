/**
 * flotillad's Prometheus metrics, with prom-client (one registry per daemon, so several daemons
 * in one process — tests — do not share series). Conventions: counters end in `_total`,
 * durations are histograms in seconds, state is a gauge. What each series means:
 * docs/deployment.md, "Monitoring".
 */
import { createHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentStats } from '../actors/agent';
import type { ClusterApi } from '../api/types';
import type { Engine, EngineStats } from '../engine/engine';
import { isFlotillaError } from '../errors';
import type { FlotillaEvent } from '../events/types';
import type { LeaderInfo, Term } from '../store/types';
import { callStream, callUnary, deriveApi } from '../api/methods';

/**
 * How late the event loop runs timers: everything the daemon does (answering calls, renewing
 * its lease, heartbeats) waits this long behind whatever holds the loop. Measured from the
 * first import on; each scrape reports the window since the previous one.
 */
const loopDelay = createHistogram();
const SAMPLE_MS = 20;
let lastTick = performance.now();
// (perf_hooks' monitorEventLoopDelay loses its reference point on reset(): measured here, a
// 60 ms stall right after a reset showed as 11 ms. A plain timer does not.)
setInterval(() => {
  const now = performance.now();
  loopDelay.record(Math.max(1, Math.round((now - lastTick - SAMPLE_MS) * 1e6)));
  lastTick = now;
}, SAMPLE_MS).unref();

/** Engine statistics: monotonic ones become `_total` counters, the others gauges. */
const ENGINE_STATS: Record<keyof EngineStats, { kind: 'counter' | 'gauge'; help: string }> = {
  commits: { kind: 'counter', help: 'Group commits written to the store.' },
  eventsCommitted: { kind: 'counter', help: 'Events committed (durable and transient).' },
  appendFailures: { kind: 'counter', help: 'Store appends that failed.' },
  snapshots: { kind: 'counter', help: 'Snapshots written.' },
  lastSnapshotIndex: { kind: 'gauge', help: 'Log index of the latest snapshot written.' },
  lastSnapshotBytes: { kind: 'gauge', help: 'Size of the latest snapshot written.' },
  malformed: { kind: 'counter', help: 'Bus messages dropped as malformed.' },
  handlerErrors: {
    kind: 'counter',
    help: 'Bus message handlers that failed (an engine bug; logged at error).',
  },
  ownWriteFailures: {
    kind: 'counter',
    help: "The engine's own writes not committed (each written again by its cause).",
  },
  scheduleMessages: { kind: 'counter', help: 'Schedule messages published to agents.' },
  restoredEvents: { kind: 'gauge', help: 'Log events folded when this term began.' },
  nudges: { kind: 'counter', help: 'Agents asked to resync after a gap.' },
  busReconnects: { kind: 'counter', help: 'Reconnections of the engine to the bus.' },
  oversizeMessages: {
    kind: 'counter',
    help: 'Messages not sent: larger than the bus max_payload.',
  },
  machinesLost: { kind: 'counter', help: 'Machines declared lost by this leader.' },
  reschedulingHolds: {
    kind: 'counter',
    help: 'Times the mass-loss guard held rescheduling.',
  },
  reschedulingHeld: { kind: 'gauge', help: '1 while the mass-loss guard holds rescheduling.' },
  busDown: {
    kind: 'gauge',
    help: "1 while the leader's own bus connection is down (it judges no machine then).",
  },
};

/** Agent statistics: all monotonic. */
const AGENT_STATS: Record<keyof AgentStats, string> = {
  scheduleMessages: 'Schedule deltas received.',
  scheduleChanges: 'Unit entries in the schedule deltas received.',
  droppedDeltas: 'Schedule deltas dropped as stale or duplicate.',
  fullSchedules: 'Full schedules received.',
  scheduleRequests: 'Full schedules requested from the leader.',
  scheduleRequestFailures: 'Full schedule requests that failed.',
  malformed: 'Bus messages dropped as malformed.',
  resyncs: 'Resync requests received.',
  reports: 'Unit state reports sent.',
  fullReports: 'Full unit state reports sent.',
  oversizeMessages: 'Messages not sent: larger than the bus max_payload.',
  heartbeats: 'Heartbeats sent.',
  opBatches: 'Batches of unit operations applied.',
  ops: 'Unit operations applied.',
  opFailures: 'Unit operations that failed.',
  rpcRequests: 'RPC requests from the leader answered.',
  staleSchedules: 'Full schedules refused: older than an epoch already heard.',
  notFromLeader:
    'Schedules, full schedules and resyncs refused: not from the leader of the current epoch.',
};

/** Where the metrics read the daemon's state at each scrape. */
export interface MetricsSources {
  engine(): Engine | undefined;
  agent(): { stats: Record<string, number> } | undefined;
  leader(): LeaderInfo | undefined;
  /** Whether the store answered just now (bounded in time). */
  storeUp(): Promise<boolean>;
  version: string;
}

/** Most unit placements tracked at once for the request→placed and placed→active histograms. */
const MAX_PENDING = 100_000;

export function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly busUp: Gauge<'connection'>;
  private readonly commitSeconds: Histogram;
  private readonly internalErrors: Counter<'api'>;
  private readonly placeSeconds: Histogram;
  private readonly activeSeconds: Histogram;
  private readonly apiSeconds: Histogram<'method' | 'code'>;
  /** For counters fed from a stats object: the object and value seen at the last scrape. */
  private readonly seen = new Map<string, { src: object; value: number }>();
  /** unit -> time its placement was asked for (event time, ms). */
  private readonly requested = new Map<string, number>();
  /** unit@machine -> time it was placed there. */
  private readonly placed = new Map<string, number>();

  constructor(private readonly src: MetricsSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'flotilla_' });
    const gauge = <L extends string = string>(
      name: string,
      help: string,
      collect: (g: Gauge<L>) => void | Promise<void>,
      labelNames: L[] = [],
    ): Gauge<L> =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          return collect(this);
        },
      });

    gauge(
      'flotilla_build_info',
      'Always 1; the version in a label.',
      (g) => g.set({ version: src.version }, 1),
      ['version'],
    );
    const q = (p: number): number => (loopDelay.count > 0 ? loopDelay.percentile(p) / 1e9 : 0);
    // The three loop gauges read the same window; the last one read resets it.
    gauge(
      'flotilla_event_loop_delay_p50_seconds',
      'Median event-loop delay since the previous scrape.',
      (g) => g.set(q(50)),
    );
    gauge(
      'flotilla_event_loop_delay_p99_seconds',
      '99th percentile event-loop delay since the previous scrape.',
      (g) => g.set(q(99)),
    );
    gauge(
      'flotilla_event_loop_delay_max_seconds',
      'Longest event-loop delay since the previous scrape.',
      (g) => {
        g.set(loopDelay.count > 0 ? loopDelay.max / 1e9 : 0);
        loopDelay.reset();
      },
    );

    gauge('flotilla_is_leader', '1 when this daemon is the elected leader.', (g) =>
      g.set(src.engine() ? 1 : 0),
    );
    gauge('flotilla_leader_known', '1 when this daemon knows who leads.', (g) =>
      g.set(src.leader() ? 1 : 0),
    );
    gauge(
      'flotilla_leader_epoch',
      'Epoch of the current leader as this daemon sees it (0: none).',
      (g) => g.set(src.leader()?.epoch ?? 0),
    );
    gauge(
      'flotilla_store_up',
      '1 when the store (etcd, or the dev data directory) answered this scrape.',
      async (g) => g.set((await src.storeUp()) ? 1 : 0),
    );
    this.busUp = gauge(
      'flotilla_bus_up',
      '1 while the connection to the bus (NATS) is up.',
      () => undefined,
      ['connection'],
    );

    // Leader-only: 0 (or no series) on followers; join with flotilla_is_leader.
    gauge('flotilla_log_index', 'Index of the last event folded by the leader.', (g) =>
      g.set(src.engine()?.state.index ?? 0),
    );
    gauge(
      'flotilla_snapshot_age_seconds',
      'Seconds since the leader wrote its last snapshot (or took over).',
      (g) => {
        const e = src.engine();
        g.set(e ? Math.max(0, (Date.now() - e.lastSnapshotTime) / 1000) : 0);
      },
    );
    gauge(
      'flotilla_units',
      'Units known to the cluster, by target state (leader only).',
      (g) => {
        g.reset();
        const e = src.engine();
        if (!e) return;
        const n: Record<string, number> = { inactive: 0, loaded: 0, launched: 0 };
        for (const u of e.state.units.values()) n[u.target] = (n[u.target] ?? 0) + 1;
        for (const [target, v] of Object.entries(n)) g.set({ target }, v);
      },
      ['target'],
    );
    gauge(
      'flotilla_unit_states',
      'Unit instances reported by agents, by systemd active state (leader only).',
      (g) => {
        g.reset();
        const e = src.engine();
        if (!e) return;
        const n = new Map<string, number>();
        for (const byMachine of e.state.reported.values())
          for (const s of byMachine.values()) n.set(s.active, (n.get(s.active) ?? 0) + 1);
        for (const [active, v] of n) g.set({ active }, v);
      },
      ['active'],
    );
    gauge(
      'flotilla_machines',
      'Machines known to the leader, by presence (leader only).',
      (g) => {
        g.reset();
        const e = src.engine();
        if (!e) return;
        const n = { alive: 0, lost: 0 };
        for (const m of e.state.machines.values()) n[m.presence]++;
        g.set({ presence: 'alive' }, n.alive);
        g.set({ presence: 'lost' }, n.lost);
      },
      ['presence'],
    );

    for (const [k, spec] of Object.entries(ENGINE_STATS)) {
      const stat = k as keyof EngineStats;
      if (spec.kind === 'gauge') {
        gauge(`flotilla_engine_${snake(stat)}`, spec.help, (g) =>
          g.set(src.engine()?.stats[stat] ?? 0),
        );
      } else {
        const seen = this.seen;
        new Counter({
          name: `flotilla_engine_${snake(stat)}_total`,
          help: spec.help,
          registers: [r],
          collect() {
            const e = src.engine();
            if (e) feed(seen, this, `engine.${stat}`, e, e.stats[stat]);
          },
        });
      }
    }
    for (const [k, help] of Object.entries(AGENT_STATS)) {
      const seen = this.seen;
      new Counter({
        name: `flotilla_agent_${snake(k)}_total`,
        help,
        registers: [r],
        collect() {
          const a = src.agent();
          if (a) feed(seen, this, `agent.${k}`, a, a.stats[k] ?? 0);
        },
      });
    }

    this.internalErrors = new Counter({
      name: 'flotilla_api_internal_errors_total',
      help: 'Handler exceptions answered INTERNAL (bugs, not refusals), by API.',
      labelNames: ['api'],
      registers: [r],
    });
    // Both series from the start, at 0: "no internal error" is a value, not a missing series.
    for (const api of ['grpc', 'fleet'] as const) this.internalErrors.inc({ api }, 0);
    this.commitSeconds = new Histogram({
      name: 'flotilla_commit_duration_seconds',
      help: "Time the leader's group commits take to be durable in the store.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
    });
    this.placeSeconds = new Histogram({
      name: 'flotilla_unit_placement_seconds',
      help: 'From a unit asked to run (submitted or started) to its placement on a machine.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [r],
    });
    this.activeSeconds = new Histogram({
      name: 'flotilla_unit_activation_seconds',
      help: 'From a unit placed on a machine to its agent reporting it active.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [r],
    });
    this.apiSeconds = new Histogram({
      name: 'flotilla_api_request_duration_seconds',
      help: 'API calls answered by this daemon (gRPC and fleet API), by method and result code.',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A handler failure that was a bug, not a refusal (an exception in a gRPC or fleet-API
   * handler): it became an INTERNAL answer and was logged; counted here.
   */
  internalError(api: 'grpc' | 'fleet'): void {
    this.internalErrors.inc({ api });
  }

  /** Records whether one of this daemon's bus connections is up. */
  setBus(connection: string, up: boolean): void {
    this.busUp.set({ connection }, up ? 1 : 0);
  }

  /** `api` with every unary call timed by method and result code. */
  instrumentApi(api: ClusterApi): ClusterApi {
    return deriveApi({
      unary: async (method, req) => {
        const end = this.apiSeconds.startTimer({ method });
        try {
          const res = await callUnary(api, method, req);
          end({ code: 'OK' });
          return res;
        } catch (err) {
          end({ code: isFlotillaError(err) ? err.code : 'INTERNAL' });
          throw err;
        }
      },
      // Streams (watch, journal) last as long as their caller wants: not timed.
      stream: (method, req, signal) => callStream(api, method, req, signal),
    });
  }

  /** `term` with its appends (the leader's group commits) timed. */
  instrumentTerm(term: Term): Term {
    const hist = this.commitSeconds;
    return new Proxy(term, {
      get(target, prop, receiver) {
        if (prop === 'append') {
          return async (events: FlotillaEvent[]) => {
            const end = hist.startTimer();
            await target.append(events);
            end();
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  /** Follows a leader's committed events for the placement histograms until the engine stops. */
  followEngine(engine: Engine): () => void {
    this.requested.clear();
    this.placed.clear();
    const w = engine.watch(0, (e) => this.onEvent(e));
    return w.close;
  }

  /** Feeds one committed event to the request→placed and placed→active histograms. */
  onEvent(e: FlotillaEvent): void {
    switch (e.type) {
      case 'UnitSubmitted':
      case 'UnitTargetSet':
        if (e.target === 'inactive') this.requested.delete(e.unit);
        else if (this.requested.size < MAX_PENDING && !this.requested.has(e.unit))
          this.requested.set(e.unit, e.time);
        return;
      case 'UnitScheduled': {
        const t = this.requested.get(e.unit);
        if (t !== undefined) {
          this.placeSeconds.observe(Math.max(0, e.time - t) / 1000);
          this.requested.delete(e.unit);
        }
        if (this.placed.size < MAX_PENDING) this.placed.set(`${e.unit}@${e.machine}`, e.time);
        return;
      }
      case 'UnitUnscheduled':
        this.placed.delete(`${e.unit}@${e.machine}`);
        return;
      case 'UnitDestroyed':
        this.requested.delete(e.unit);
        for (const k of this.placed.keys()) if (k.startsWith(`${e.unit}@`)) this.placed.delete(k);
        return;
      case 'UnitStateReported': {
        if (e.state?.active !== 'active') return;
        const key = `${e.unit}@${e.machine}`;
        const t = this.placed.get(key);
        if (t !== undefined) {
          this.activeSeconds.observe(Math.max(0, e.time - t) / 1000);
          this.placed.delete(key);
        }
        return;
      }
      default:
        return;
    }
  }
}

/** Adds to `counter` what `value` (a monotonic statistic of `src`) grew by since the last scrape. */
function feed(
  seen: Map<string, { src: object; value: number }>,
  counter: Counter,
  key: string,
  src: object,
  value: number,
): void {
  const prev = seen.get(key);
  // A new source (a new term's engine) starts from zero: all of its value is new.
  const grew = prev && prev.src === src ? value - prev.value : value;
  if (grew > 0) counter.inc(grew);
  seen.set(key, { src, value });
}
