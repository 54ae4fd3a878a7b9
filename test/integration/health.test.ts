import { REPO_ROOT, runCli } from '../helpers/cli';
import { announcedPort } from '../helpers/announced';
import { startCluster, type TestCluster } from '../helpers/cluster';

/**
 * /healthz, /readyz and /metrics of a real flotillad on real etcd and NATS: /readyz says 503
 * naming the store while etcd is down and 200 again once it is back; /metrics counts commits,
 * API calls and placements.
 */
jest.setTimeout(90_000);

let cluster: TestCluster | undefined;

afterAll(async () => {
  await cluster?.dispose();
});

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: r.status, body: await r.text() };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await f();
    if (last !== undefined) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => '\\' + c)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('flotillad health and metrics', () => {
  it('reports readiness truthfully and counts what happens', async () => {
    // The daemon's HTTP server listens on a port it picks (127.0.0.1:0) and says which.
    cluster = await startCluster({ nodes: [{}] });
    const node = cluster.nodes[0];
    const port = await until('the HTTP port', async () => announcedPort(node.output, 'HTTP'));
    const base = `http://127.0.0.1:${port}`;
    expect((await get(`${base}/healthz`)).status).toBe(200);
    await until('ready', async () =>
      (await get(`${base}/readyz`)).status === 200 ? true : undefined,
    );

    const start = await runCli(['start', 'examples/hello.service'], {
      endpoint: cluster.nodes[0].endpoint,
      cwd: REPO_ROOT,
    });
    expect(start.code).toBe(0);

    const text = await until('a placement in the metrics', async () => {
      const t = (await get(`${base}/metrics`)).body;
      return (sample(t, 'flotilla_unit_placement_seconds_count') ?? 0) >= 1 ? t : undefined;
    });
    expect(sample(text, 'flotilla_is_leader')).toBe(1);
    expect(sample(text, 'flotilla_leader_known')).toBe(1);
    expect(sample(text, 'flotilla_store_up')).toBe(1);
    expect(sample(text, 'flotilla_bus_up{connection="agent"}')).toBe(1);
    expect(sample(text, 'flotilla_bus_up{connection="engine"}')).toBe(1);
    expect(sample(text, 'flotilla_log_index')).toBeGreaterThan(0);
    expect(sample(text, 'flotilla_engine_commits_total')).toBeGreaterThan(0);
    expect(sample(text, 'flotilla_commit_duration_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'flotilla_units{target="launched"}')).toBe(1);
    expect(sample(text, 'flotilla_machines{presence="alive"}')).toBe(1);
    expect(
      sample(text, 'flotilla_api_request_duration_seconds_count{method="createUnits",code="OK"}'),
    ).toBeGreaterThanOrEqual(1);

    // etcd down: still alive, not ready, and the failing check is named.
    await cluster.etcd.members[0].stop();
    const down = await until('not ready', async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 503 ? r : undefined;
    });
    expect(JSON.parse(down.body).checks.store.ok).toBe(false);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect(sample((await get(`${base}/metrics`)).body, 'flotilla_store_up')).toBe(0);

    await cluster.etcd.members[0].start();
    await until(
      'ready again',
      async () => ((await get(`${base}/readyz`)).status === 200 ? true : undefined),
      45_000,
    );

    // NATS down: the bus check fails.
    await cluster.nats.stop();
    const noBus = await until('bus down', async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 503 && JSON.parse(r.body).checks.bus.ok === false ? r : undefined;
    });
    expect(JSON.parse(noBus.body).checks.store.ok).toBe(true);
    await cluster.nats.start();
    await until('bus back', async () =>
      (await get(`${base}/readyz`)).status === 200 ? true : undefined,
    );
  });
});
