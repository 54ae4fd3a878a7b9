import { DaemonMetrics } from '../../../src/daemon/metrics';
import {
  splitHostPort,
  startHealthServer,
  storeProbe,
  type HealthSources,
} from '../../../src/daemon/health';
import type { LeaderInfo, LogStore } from '../../../src/store/types';

function setup(over: Partial<HealthSources> = {}): HealthSources & {
  set(p: { leader?: LeaderInfo; store?: boolean; bus?: boolean }): void;
} {
  let leader: LeaderInfo | undefined = { machine: 'm1', address: 'a:1', epoch: 2 };
  let store = true;
  const buses = new Map([['agent', true]]);
  return {
    machineId: 'm1',
    leader: () => leader,
    isLeader: () => false,
    buses: () => buses,
    storeUp: async () => store,
    ...over,
    set(p) {
      if ('leader' in p) leader = p.leader;
      if (p.store !== undefined) store = p.store;
      if (p.bus !== undefined) buses.set('agent', p.bus);
    },
  };
}

function metricsOf(src: HealthSources): DaemonMetrics {
  return new DaemonMetrics({
    engine: () => undefined,
    agent: () => undefined,
    leader: src.leader,
    storeUp: src.storeUp,
    version: 'x',
  });
}

describe('health endpoint', () => {
  it('answers /healthz 200, /readyz 200 or 503 naming the failed check, /metrics, 404 and 405', async () => {
    const src = setup();
    const metrics = metricsOf(src);
    const http = await startHealthServer('127.0.0.1:0', src, metrics);
    const url = (p: string): string => `http://${http.address}${p}`;
    try {
      expect((await fetch(url('/healthz'))).status).toBe(200);
      const ready = await fetch(url('/readyz'));
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { ready: boolean }).ready).toBe(true);

      for (const [change, check] of [
        [{ leader: undefined }, 'leader'],
        [{ store: false }, 'store'],
        [{ bus: false }, 'bus'],
      ] as const) {
        src.set({ leader: { machine: 'm1', address: 'a:1', epoch: 2 }, store: true, bus: true });
        src.set(change);
        const r = await fetch(url('/readyz'));
        expect(r.status).toBe(503);
        const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
        expect(body.checks[check].ok).toBe(false);
        // Alive all the same.
        expect((await fetch(url('/healthz'))).status).toBe(200);
      }
      const m = await fetch(url('/metrics'));
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await m.text()).toMatch(/^flotilla_leader_known 1$/m);
      expect((await fetch(url('/nope'))).status).toBe(404);
      expect((await fetch(url('/readyz'), { method: 'POST' })).status).toBe(405);
    } finally {
      await http.close();
    }
  });

  it('refuses a busy address with an error naming http_listen', async () => {
    const src = setup();
    const metrics = metricsOf(src);
    const a = await startHealthServer('127.0.0.1:0', src, metrics);
    try {
      await expect(startHealthServer(a.address, src, metrics)).rejects.toThrow(
        /http_listen .*address already in use/,
      );
    } finally {
      await a.close();
    }
  });

  it('probes the store within its time limit, one probe at a time', async () => {
    let calls = 0;
    const hanging = {
      leader: () => (calls++, new Promise(() => undefined)),
    } as unknown as LogStore;
    const probe = storeProbe(hanging, 50);
    const [a, b] = await Promise.all([probe(), probe()]);
    expect([a, b]).toEqual([false, false]);
    expect(calls).toBe(1);
    const failing = {
      leader: async () => Promise.reject(new Error('down')),
    } as unknown as LogStore;
    expect(await storeProbe(failing, 1000)()).toBe(false);
    const fine = { leader: async () => undefined } as unknown as LogStore;
    expect(await storeProbe(fine, 1000)()).toBe(true);
  });

  it('splits host:port, bracketed IPv6 and a bare port', () => {
    expect(splitHostPort('127.0.0.1:7071')).toEqual(['127.0.0.1', 7071]);
    expect(splitHostPort('[::1]:9')).toEqual(['::1', 9]);
    expect(splitHostPort('7071')).toEqual(['127.0.0.1', 7071]);
    expect(splitHostPort(':7071')).toEqual(['0.0.0.0', 7071]);
  });
});
