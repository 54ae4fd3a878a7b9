import type { Engine } from '../engine/engine';

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
