import { renderMetrics } from '../../../src/daemon/metrics';

function gauges(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, value] = line.split(' ');
    out.set(name, Number(value));
  }
  return out;
}

describe('renderMetrics', () => {
  it('reports event-loop delay over the window since the previous scrape', async () => {
    renderMetrics({ machineId: 'm' });
    // Hold the loop for ~60 ms, then let the monitor's timer run a few times.
    const until = performance.now() + 60;
    while (performance.now() < until);
    await new Promise((r) => setTimeout(r, 50));
    const busy = gauges(renderMetrics({ machineId: 'm' }));
    expect(busy.get('flotilla_event_loop_delay_max_seconds')).toBeGreaterThan(0.03);
    expect(busy.get('flotilla_event_loop_delay_p50_seconds')).toBeLessThanOrEqual(
      busy.get('flotilla_event_loop_delay_max_seconds')!,
    );
    await new Promise((r) => setTimeout(r, 50));
    const calm = gauges(renderMetrics({ machineId: 'm' }));
    expect(calm.get('flotilla_event_loop_delay_max_seconds')).toBeLessThan(
      busy.get('flotilla_event_loop_delay_max_seconds')!,
    );
    expect(calm.get('flotilla_is_leader')).toBe(0);
    expect(calm.get('flotilla_process_resident_memory_bytes')).toBeGreaterThan(0);
  });
});
