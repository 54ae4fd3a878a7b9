import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { track, untrack } from '../harness/registry';
import { TestPki } from '../helpers/certs';
import { runCli } from '../helpers/cli';
import { FLOTILLAD, startCluster } from '../helpers/cluster';
import { killDevUnits, runRefused, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * Who may reach the API and what each role may do (docs/security.md), on real daemons:
 * certificates made by openssl, the `flotilla` CLI as the client.
 */
jest.setTimeout(120_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-access-'));
const pki = new TestPki(dir);
const f = (name: string): string => pki.f(name);
const UNIT = '[Service]\nExecStart=/bin/sleep 1000\n';

/** The CLI's flags for a client presenting `name`'s certificate, trusting `ca`. */
const as = (name: string, ca = 'ca'): string[] => [
  '--ca-file',
  f(`${ca}.pem`),
  '--cert-file',
  f(`${name}.pem`),
  '--key-file',
  f(`${name}.key`),
];

const cli = (endpoint: string, args: string[]) =>
  runCli(['--request-timeout', '5', ...args], { endpoint, cwd: dir, mode: 'dist' });

const refusedStart = (args: string[], dev = true) => runRefused(dir, args, dev);

beforeAll(() => {
  pki.makeBasics('operator');
  pki.makeCert('reader', 'ca', { server: false, role: 'read-only' });
  pki.makeCert('agent', 'ca', { server: false, ou: 'flotilla-agent' });
  pki.makeCert('norole', 'ca', { server: false });
  fs.writeFileSync(path.join(dir, 'a.service'), UNIT);
  fs.writeFileSync(path.join(dir, 'b.service'), UNIT);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('roles from client certificates (mTLS)', () => {
  let daemon: DevDaemon;
  let endpoint: string;
  beforeAll(async () => {
    fs.mkdirSync(f('dev'));
    daemon = await startDevDaemon({ dir: f('dev'), args: pki.daemonTlsFlags() });
    endpoint = `127.0.0.1:${daemon.port}`;
  });
  afterAll(async () => {
    await daemon?.stop();
    killDevUnits(f('dev'));
  });

  it('refuses a client without a certificate and one from another CA', async () => {
    const none = await cli(endpoint, ['list-machines', '--ca-file', f('ca.pem')]);
    expect(none.code).toBe(1);
    const rogue = await cli(endpoint, ['list-machines', ...as('intruder')]);
    expect(rogue.code).toBe(1);
    expect((await cli(endpoint, ['list-machines', ...as('operator')])).code).toBe(0);
  });

  it('an operator writes; read-only, agent and role-less certificates read but cannot write', async () => {
    expect((await cli(endpoint, ['submit', 'a.service', ...as('operator')])).code).toBe(0);
    for (const [who, role] of [
      ['reader', 'read-only'],
      ['agent', 'agent'],
      ['norole', 'read-only'],
    ]) {
      const read = await cli(endpoint, ['list-unit-files', ...as(who)]);
      expect(read.code).toBe(0);
      expect(read.stdout).toContain('a.service');
      const write = await cli(endpoint, ['submit', 'b.service', ...as(who)]);
      expect(write.code).toBe(1);
      expect(write.stderr).toContain(
        `createUnits needs the operator role; the certificate CN=${who} has the ${role} role`,
      );
      const destroy = await cli(endpoint, ['destroy', 'a.service', ...as(who)]);
      expect(destroy.code).toBe(1);
      expect(destroy.stderr).toContain('needs the operator role');
    }
    const files = await cli(endpoint, ['list-unit-files', ...as('operator')]);
    expect(files.stdout).not.toContain('b.service');
    expect(files.stdout).toContain('a.service');
  });
});

describe('listeners other hosts can reach', () => {
  it('refuses a plaintext gRPC API on 0.0.0.0 without --grpc-insecure', async () => {
    const r = await refusedStart(['--grpc-listen', '0.0.0.0:0']);
    expect(r.code).toBe(2);
    expect(r.output).toContain('refusing to serve the gRPC API in plaintext on 0.0.0.0:');
    expect(r.output).toContain('grpc_insecure=true');
  });

  it('refuses TLS without client certificates, and a fleet API on a non-loopback address', async () => {
    const tlsOnly = await refusedStart([
      '--grpc-listen',
      '0.0.0.0:0',
      '--grpc-tls-cert',
      f('server.pem'),
      '--grpc-tls-key',
      f('server.key'),
    ]);
    expect(tlsOnly.code).toBe(2);
    expect(tlsOnly.output).toContain('with TLS but without client certificates');
    const fleet = await refusedStart(['--fleet-api-listen', '0.0.0.0:0']);
    expect(fleet.code).toBe(2);
    expect(fleet.output).toContain("refusing to serve fleet's HTTP API in plaintext");
  });

  it('refuses a loopback advertise address when the cluster spans hosts', async () => {
    // 192.0.2.1 (TEST-NET-1) is never dialed: the daemon refuses before it connects to NATS.
    const r = await refusedStart(
      [
        '--machine-id',
        '0123456789abcdef0123456789abcdef',
        '--grpc-listen',
        '127.0.0.1:0',
        '--etcd-servers',
        // Never dialed either: refused before.
        'http://127.0.0.1:2379',
        '--nats-servers',
        'nats://192.0.2.1:4222',
        '--driver',
        'simulated',
      ],
      false,
    );
    expect(r.code).toBe(2);
    expect(r.output).toContain('the gRPC advertise address 127.0.0.1:');
    expect(r.output).toContain(
      'is on loopback, but the cluster spans hosts (nats://192.0.2.1:4222)',
    );
  });

  it('with --grpc-insecure it serves, and warns in its log and in /healthz; an http_listen on 0.0.0.0 is warned of (in a network namespace)', async () => {
    const port = 7070;
    const script = [
      'ip link set lo up',
      `exec ${process.execPath} ${FLOTILLAD} --dev --data-dir ${f('ns')} --grpc-listen 0.0.0.0:${port} --grpc-insecure --http-listen 0.0.0.0:8080`,
    ].join(' && ');
    const proc = spawn('unshare', ['-n', 'sh', '-c', script], {
      env: { PATH: process.env.PATH, FLOTILLA_CONFIG: path.join(dir, 'none.conf') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    track({ pid: proc.pid!, kind: 'flotillad (netns)' });
    let output = '';
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
    try {
      const probe = `require('http').get('http://127.0.0.1:8080/healthz',r=>{let d='';r.on('data',c=>d+=c);r.on('end',()=>console.log(d))}).on('error',()=>process.exit(1))`;
      let health = '';
      const end = Date.now() + 20_000;
      while (health === '' && Date.now() < end) {
        health = await new Promise<string>((resolve) =>
          execFile(
            'nsenter',
            ['-t', String(proc.pid), '-n', process.execPath, '-e', probe],
            (err, out) => resolve(err ? '' : out),
          ),
        );
        if (health === '') await new Promise((r) => setTimeout(r, 200));
      }
      const h = JSON.parse(health) as { insecure?: string[] };
      expect(h.insecure).toEqual([
        `INSECURE (grpc_insecure=true): serving the gRPC API in plaintext on 0.0.0.0:${port}`,
      ]);
      expect(output).toContain('INSECURE (grpc_insecure=true): serving the gRPC API in plaintext');
      // /metrics and the visualizer on every address: served (monitoring), with a warning.
      expect(output).toContain(
        'http_listen 0.0.0.0:8080 serves /metrics and the visualizer (/ui/: unit names, states and histories, machines, their IPs and metadata) without authentication',
      );
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      untrack(proc.pid!);
      fs.rmSync(f('ns'), { recursive: true, force: true });
    }
  });
});

describe('forwarding', () => {
  it('a call that the advertise address sends back to a follower is refused as a loop, and answered', async () => {
    // The leader advertises an address that reaches the follower, as 127.0.0.1:7070 did on
    // every host of the README's multi-host example. The follower starts first, on a port it
    // picks, so that the leader can be told that port (no port probed free and handed over).
    const cluster = await startCluster({ nodes: [{ disableEngine: true }] });
    await cluster.addNode({ flags: ['--grpc-advertise', cluster.nodes[0].endpoint] });
    try {
      const follower = cluster.nodes[0].endpoint;
      let r = await cli(follower, ['list-machines']);
      const end = Date.now() + 20_000;
      while (!r.stderr.includes('forwarding loop') && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 200));
        r = await cli(follower, ['list-machines']);
      }
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('forwarding loop');
      expect(r.stderr).toContain('set grpc_advertise on the leader');
      // The leader itself still serves.
      expect((await cli(cluster.nodes[1].endpoint, ['list-machines'])).code).toBe(0);
    } finally {
      await cluster.dispose();
    }
  });
});
