import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { onFreshPorts } from '../harness';
import { addressInUse } from '../harness/ports';
import { TestPki } from '../helpers/certs';
import { FLOTILLAD } from '../helpers/cluster';

/**
 * Sockets systemd passes (socket activation, `LISTEN_FDS`) for fleet's HTTP API, handed over by
 * systemd's own `systemd-socket-activate`: with TLS configured a passed TCP socket serves HTTPS
 * with client certificates, as a configured TCP listener does; a passed unix socket stays plain
 * HTTP, guarded by its file mode (docs/security.md).
 */
jest.setTimeout(60_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-activation-'));
const pki = new TestPki(dir);
const sock = path.join(dir, 'fleet.sock');
const DIST = path.resolve(__dirname, '../../dist/src');

// The child: flotillad's fleet API server over the sockets systemd passed, with mTLS.
const script = `
const fs = require('fs');
const { listenFds } = require(${JSON.stringify(`${DIST}/daemon/sd.js`)});
const { startFleetApiServer } = require(${JSON.stringify(`${DIST}/fleetapi/server.js`)});
const f = (n) => fs.readFileSync(${JSON.stringify(dir)} + '/' + n);
startFleetApiServer({
  api: {},
  listen: [],
  fds: listenFds().map((s) => s.fd),
  tls: { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') },
}).then((h) => console.log('serving ' + h.addresses.join(',')), (e) => { console.error(e); process.exit(1); });
`;

function get(
  o: https.RequestOptions & { tls?: boolean },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (o.tls ? https : http).request(
      { path: '/fleet/v1/discovery', method: 'GET', ...o },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** A `systemd-socket-activate` listening on a TCP port and serving it to a child. */
interface Activator {
  proc: ChildProcess;
  port: number;
  /** Everything it and its child wrote so far. */
  output(): string;
  /** Its exit code once it has exited. */
  exited: Promise<number | null>;
}

/**
 * Starts `systemd-socket-activate -l HOST:PORT [more] COMMAND…` on a TCP port. It refuses port
 * 0, so it is given one probed free: when another process took it in between, it exits with
 * "Address already in use" and is started again on a fresh port (`onFreshPorts`).
 */
function activate(
  host: string,
  more: string[],
  command: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Activator> {
  return onFreshPorts(
    1,
    async ([port]) => {
      const proc = spawn(
        'systemd-socket-activate',
        ['-l', `${host}:${port}`, ...more, ...command],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env,
        },
      );
      const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      let out = '';
      proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
      proc.stderr?.on('data', (b: Buffer) => (out += b.toString()));
      const listening = `Listening on ${host}:${port} as `;
      const end = Date.now() + 20_000;
      while (!out.includes(listening)) {
        if (proc.exitCode !== null || proc.signalCode !== null)
          throw new Error(`systemd-socket-activate exited: ${out}`);
        if (Date.now() > end) throw new Error(`systemd-socket-activate did not listen: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return { proc, port, output: () => out, exited };
    },
    addressInUse,
  );
}

let activator: Activator;
let port: number;

beforeAll(async () => {
  pki.makeBasics();
  activator = await activate('127.0.0.1', ['-l', sock], [process.execPath, '-e', script]);
  port = activator.port;
  // systemd-socket-activate starts the child at the first connection: this one (plain HTTP on
  // the unix socket) wakes it.
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await get({ socketPath: sock }).catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() > end)
      throw new Error(`the activated fleet API never answered:\n${activator.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(() => {
  activator?.proc.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('fleet API on sockets passed by systemd', () => {
  it('serves both passed sockets', () => {
    expect(activator.output()).toMatch(/serving fd:\/\/3,fd:\/\/4/);
  });

  it('a passed TCP socket serves HTTPS with client certificates when TLS is configured', async () => {
    const ok = await get({
      host: '127.0.0.1',
      port,
      tls: true,
      ca: fs.readFileSync(pki.f('ca.pem')),
      cert: fs.readFileSync(pki.f('client.pem')),
      key: fs.readFileSync(pki.f('client.key')),
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('"discoveryVersion"');
    // Without a client certificate, or in plain HTTP: no answer.
    await expect(
      get({ host: '127.0.0.1', port, tls: true, ca: fs.readFileSync(pki.f('ca.pem')) }),
    ).rejects.toThrow();
    await expect(get({ host: '127.0.0.1', port })).rejects.toThrow();
  });

  it('a passed unix socket stays plain HTTP', async () => {
    const r = await get({ socketPath: sock });
    expect(r.status).toBe(200);
  });
});

describe('flotillad on a TCP socket passed by systemd', () => {
  it('refuses a non-loopback passed socket without TLS, naming it, as it refuses a configured one', async () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-activation-d-'));
    const d = await activate(
      '0.0.0.0',
      [],
      [
        process.execPath,
        FLOTILLAD,
        '--dev',
        '--data-dir',
        data,
        '--grpc-listen',
        '127.0.0.1:0',
        '--http-listen',
        '127.0.0.1:0',
      ],
      { ...process.env, FLOTILLA_CONFIG: path.join(data, 'none.conf') },
    );
    const p = d.port;
    try {
      // The first connection wakes the daemon; it must refuse to serve and exit.
      const end = Date.now() + 30_000;
      let code: number | null | undefined;
      while (code === undefined && Date.now() < end) {
        await get({ host: '127.0.0.1', port: p }).catch(() => undefined);
        code = await Promise.race([
          d.exited,
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 300)),
        ]);
      }
      expect(d.output()).toContain(
        `refusing to serve fleet's HTTP API in plaintext and without authentication on 0.0.0.0:${p}`,
      );
      expect(code).not.toBe(0);
      expect(code).not.toBeUndefined();
    } finally {
      d.proc.kill('SIGKILL');
      fs.rmSync(data, { recursive: true, force: true, maxRetries: 5 });
    }
  });
});
