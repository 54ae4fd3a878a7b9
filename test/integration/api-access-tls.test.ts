import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestPki } from '../helpers/certs';
import { runCli, spawnCli } from '../helpers/cli';
import { killDevUnits, runRefused, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';
import { fleetctl, fleetctlPath, type FleetctlResult } from '../helpers/fleetctl';

/**
 * fleet's HTTP API over HTTPS with client certificates, driven by the original fleetctl v1.0.0,
 * and `journal --follow` by role (docs/security.md), on a real `flotillad --dev` whose fleet API
 * listens on 0.0.0.0 — allowed because every TCP listener needs a client certificate.
 */
jest.setTimeout(120_000);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-access-tls-'));
const pki = new TestPki(dir);
const f = (name: string): string => pki.f(name);
let daemon: DevDaemon;
let grpc: string;
let fleet: string;

/** fleetctl's TLS flags for `name`'s certificate (none: only the CA, no client certificate). */
const tlsAs = (name?: string, ca = 'ca'): string[] => [
  '--ca-file',
  f(`${ca}.pem`),
  ...(name ? ['--cert-file', f(`${name}.pem`), '--key-file', f(`${name}.key`)] : []),
];

const fc = (who: string[], ...args: string[]): Promise<FleetctlResult> =>
  fleetctl(fleet, [...who, ...args], { cwd: dir });

const cli = (who: string, args: string[]) =>
  runCli(['--request-timeout', '5', ...args, ...tlsAs(who)], {
    endpoint: grpc,
    cwd: dir,
    mode: 'dist',
  });

beforeAll(async () => {
  expect(fs.existsSync(fleetctlPath())).toBe(true);
  pki.makeBasics('operator');
  pki.makeCert('reader', 'ca', { server: false, role: 'read-only' });
  pki.makeCert('agent', 'ca', { server: false, role: 'agent' });
  fs.writeFileSync(path.join(dir, 'a.service'), '[Service]\nExecStart=/bin/sleep 1000\n');
  fs.writeFileSync(path.join(dir, 'b.service'), '[Service]\nExecStart=/bin/sleep 1000\n');
  fs.writeFileSync(
    path.join(dir, 'talk.service'),
    '[Service]\nExecStart=/bin/sh -c "echo hello-journal; exec sleep 1000"\n',
  );
  // Port 0 everywhere: the daemon picks its ports and announces them.
  daemon = await startDevDaemon({
    dir,
    args: [...pki.daemonTlsFlags(), '--fleet-api-listen', '0.0.0.0:0'],
    readyListener: 'fleet API v1',
  });
  grpc = `127.0.0.1:${daemon.port}`;
  fleet = `https://127.0.0.1:${daemon.portOf('fleet API v1')}`;
});

afterAll(async () => {
  await daemon?.stop();
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("fleet's HTTP API over HTTPS (the original fleetctl)", () => {
  it('an operator certificate reads and writes', async () => {
    let r = await fc(tlsAs('operator'), 'list-machines', '--no-legend');
    for (let i = 0; i < 50 && (r.code !== 0 || r.stdout.trim() === ''); i++) {
      // The dev daemon's agent may not have joined yet.
      await new Promise((res) => setTimeout(res, 200));
      r = await fc(tlsAs('operator'), 'list-machines', '--no-legend');
    }
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).not.toBe('');
    const submit = await fc(tlsAs('operator'), 'submit', 'a.service');
    expect(submit.code).toBe(0);
    const files = await fc(tlsAs('operator'), 'list-unit-files', '--no-legend');
    expect(files.stdout).toContain('a.service');
  });

  it('read-only and agent certificates read but cannot write (403, naming the role)', async () => {
    for (const [who, role] of [
      ['reader', 'read-only'],
      ['agent', 'agent'],
    ]) {
      const read = await fc(tlsAs(who), 'list-unit-files', '--no-legend');
      expect(read.code).toBe(0);
      expect(read.stdout).toContain('a.service');
      const write = await fc(tlsAs(who), 'submit', 'b.service');
      expect(write.code).not.toBe(0);
      expect(write.stdout + write.stderr).toContain(
        `createUnits needs the operator role; the certificate CN=${who} has the ${role} role`,
      );
      const destroy = await fc(tlsAs(who), 'destroy', 'a.service');
      expect(destroy.code).not.toBe(0);
      expect(destroy.stdout + destroy.stderr).toContain('needs the operator role');
    }
    const files = await fc(tlsAs('operator'), 'list-unit-files', '--no-legend');
    expect(files.stdout).not.toContain('b.service');
    expect(files.stdout).toContain('a.service');
  });

  it('refuses no client certificate, one from another CA, and plain HTTP', async () => {
    for (const who of [tlsAs(), tlsAs('intruder')]) {
      const r = await fc(who, 'list-units');
      expect(r.code).not.toBe(0);
      expect(r.stdout).not.toContain('a.service');
    }
    const plain = await fleetctl(fleet.replace('https:', 'http:'), ['list-units'], { cwd: dir });
    expect(plain.code).not.toBe(0);
  });

  it('refuses to start with a fleet API on 0.0.0.0 with TLS but no client certificates', async () => {
    // Refused before it binds anything: port 0 (the message names the address as given).
    const { code, output } = await runRefused(dir, [
      '--grpc-listen',
      '127.0.0.1:0',
      '--grpc-tls-cert',
      f('server.pem'),
      '--grpc-tls-key',
      f('server.key'),
      '--fleet-api-listen',
      '0.0.0.0:0',
    ]);
    expect(code).toBe(2);
    expect(output).toContain(
      `refusing to serve fleet's HTTP API on 0.0.0.0:0 with TLS but without client certificates`,
    );
  });
});

describe('journal --follow by role', () => {
  it('a read-only certificate follows a journal; without a certificate of the CA it is refused at once, cleanly', async () => {
    let started = await cli('operator', ['start', '--block-attempts=10', 'talk.service']);
    for (let i = 0; i < 50 && started.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      started = await cli('operator', ['start', '--block-attempts=10', 'talk.service']);
    }
    expect(started.code).toBe(0);
    for (const who of ['reader', 'agent']) {
      const follow = spawnCli(['journal', '-f', 'talk.service', ...tlsAs(who)], {
        endpoint: grpc,
        mode: 'dist',
        timeoutMs: 30_000,
      });
      await follow.waitForStdout(/hello-journal/);
      await follow.stop();
    }
    for (const who of [tlsAs('intruder'), tlsAs()]) {
      const r = await runCli(['journal', '-f', 'talk.service', ...who], {
        endpoint: grpc,
        cwd: dir,
        mode: 'dist',
        timeoutMs: 30_000,
      });
      expect(r.code).toBe(1);
      expect(r.stdout).not.toContain('hello-journal');
      // The handshake fails: the client never gets as far as the unit.
      expect(r.stderr).toMatch(
        /Error retrieving unit talk\.service: cannot reach flotilla at 127\.0\.0\.1:\d+/,
      );
    }
  });
});
