import { createHistogram } from 'node:perf_hooks';
import type { Engine } from '../engine/engine';

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

/**
 * Handler failures that were bugs, not refusals (an exception in a gRPC or fleet-API handler):
 * each became an INTERNAL answer, was logged, and is counted here.
 */
export const internalErrors = { grpc: 0, fleet: 0 };

export interface MetricsSources {
  machineId: string;
  engine?: Engine;
  agent?: { stats: Record<string, number> };
}

/** Prometheus text exposition of the daemon's counters and gauges. */
export function renderMetrics(src: MetricsSources): string {
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  const mem = process.memoryUsage();
  gauge('flotilla_process_resident_memory_bytes', 'Resident set size.', mem.rss);
  gauge('flotilla_process_heap_used_bytes', 'V8 heap in use.', mem.heapUsed);
  const q = (p: number): number => (loopDelay.count > 0 ? loopDelay.percentile(p) / 1e9 : 0);
  gauge(
    'flotilla_event_loop_delay_p50_seconds',
    'Median event-loop delay since the previous scrape.',
    q(50),
  );
  gauge(
    'flotilla_event_loop_delay_p99_seconds',
    '99th percentile event-loop delay since the previous scrape.',
    q(99),
  );
  gauge(
    'flotilla_event_loop_delay_max_seconds',
    'Longest event-loop delay since the previous scrape.',
    loopDelay.count > 0 ? loopDelay.max / 1e9 : 0,
  );
  loopDelay.reset();
  lines.push(
    '# HELP flotilla_api_internal_errors_total Handler exceptions answered INTERNAL (bugs, not refusals).',
    '# TYPE flotilla_api_internal_errors_total counter',
    `flotilla_api_internal_errors_total{api="grpc"} ${internalErrors.grpc}`,
    `flotilla_api_internal_errors_total{api="fleet"} ${internalErrors.fleet}`,
  );
  gauge('flotilla_is_leader', '1 when this daemon is the elected leader.', src.engine ? 1 : 0);
  const e = src.engine;
  if (e) {
    gauge('flotilla_engine_epoch', 'Current leadership epoch.', e.epoch);
    gauge('flotilla_engine_log_index', 'Index of the last folded event.', e.state.index);
    gauge('flotilla_engine_units', 'Units known to the cluster.', e.state.units.size);
    for (const [k, v] of Object.entries(e.stats))
      gauge(`flotilla_engine_${snake(k)}`, `Engine counter ${k}.`, v);
  }
  for (const [k, v] of Object.entries(src.agent?.stats ?? {})) {
    if (typeof v === 'number') gauge(`flotilla_agent_${snake(k)}`, `Agent counter ${k}.`, v);
  }
  return lines.join('\n') + '\n';
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}
