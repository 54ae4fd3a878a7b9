import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startApiServer, type ApiServerHandle } from '../../src/api/server';
import { serverTls } from '../../src/api/tls';
import { isFlotillaError, ErrorCode } from '../../src/errors';
import { runCli, runCliInProcess } from '../helpers/cli';
import { startCluster } from '../helpers/cluster';
import { startDevDaemon } from '../helpers/dev-daemon';
import { loadConfig, type DaemonConfig } from '../../src/daemon/config';
import { etcdSecurity, natsSecurity } from '../../src/daemon/stores';
import { startEngineCluster, type EngineCluster } from '../helpers/engine-cluster';
import { TestPki } from '../helpers/certs';

/**
 * The gRPC API over TLS and mutual TLS, with certificates made by openssl for this run, driven
 * through the `flotilla` CLI as a user would (--ca-file, --cert-file, --key-file).
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-tls-'));
const f = (name: string): string => path.join(dir, name);

const pki = new TestPki(dir);

const daemonTlsFlags = (): string[] => pki.daemonTlsFlags();

/** flotillad's and `flotilla replay`'s flags for etcd with mTLS. */
const etcdClientFlags = (): string[] => [
  '--etcd-cafile',
  f('ca.pem'),
  '--etcd-certfile',
  f('client.pem'),
  '--etcd-keyfile',
  f('client.key'),
];

/** The CLI flags of a client with a certificate from the CA. */
const mtlsFlags = (): string[] => [
  '--ca-file',
  f('ca.pem'),
  '--cert-file',
  f('client.pem'),
  '--key-file',
  f('client.key'),
];

let cluster: EngineCluster;
const servers: ApiServerHandle[] = [];

beforeAll(async () => {
  pki.makeBasics();
  cluster = await startEngineCluster();
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await cluster.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function serve(mutual: boolean): Promise<{ tcp: string; unix: string }> {
  const server = await startApiServer({
    api: cluster.api,
    listen: ['127.0.0.1:0', `unix://${f(`api-${servers.length}.sock`)}`],
    credentials: serverTls({
      cert: f('server.pem'),
      key: f('server.key'),
      ca: mutual ? f('ca.pem') : undefined,
    }),
  });
  servers.push(server);
  return { tcp: server.addresses[0], unix: server.addresses[1] };
}

const machineIds = (stdout: string): string[] =>
  stdout
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0]);

describe('gRPC API over TLS', () => {
  it('TLS: a client that trusts the CA is served; a plaintext client is not', async () => {
    const { tcp } = await serve(false);
    const ok = await runCliInProcess(['list-machines', '--ca-file', f('ca.pem')], {
      endpoint: tcp,
    });
    expect(ok.code).toBe(0);
    expect(machineIds(ok.stdout)).toHaveLength(3);
    const plain = await runCliInProcess(['list-machines', '--request-timeout', '3'], {
      endpoint: tcp,
    });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/^Error retrieving list of active machines: /);
    // One line naming the endpoint and the problem; no OpenSSL dump, no Node warning.
    expect(plain.stderr).toBe(
      `Error retrieving list of active machines: cannot reach flotilla at ${tcp}: connection failed during setup (a TLS server needs --ca-file)\n`,
    );
    // A CA that did not sign the server's certificate (the intruder's own).
    const untrusted = await runCli(
      ['list-machines', '--request-timeout', '3', '--ca-file', f('intruder.pem')],
      { endpoint: tcp },
    );
    expect(untrusted.code).toBe(1);
    // A separate process: Node's DEP0123 warning (an IP as TLS server name) would show here.
    expect(untrusted.stderr).not.toContain('DeprecationWarning');
    expect(untrusted.stderr).toMatch(
      new RegExp(
        `^Error retrieving list of active machines: cannot reach flotilla at ${tcp.replace(/\./g, '\\.')}: TLS: the server's certificate is not signed by a trusted CA \\(check --ca-file\\): [^\\n]*\\n$`,
      ),
    );
  });

  it('mTLS: only clients with a certificate from the CA are served', async () => {
    const { tcp } = await serve(true);
    const tls = ['--ca-file', f('ca.pem')];
    const ok = await runCliInProcess(
      ['list-machines', ...tls, '--cert-file', f('client.pem'), '--key-file', f('client.key')],
      { endpoint: tcp },
    );
    expect(ok.code).toBe(0);
    expect(machineIds(ok.stdout)).toHaveLength(3);
    const noCert = await runCliInProcess(['list-machines', '--request-timeout', '3', ...tls], {
      endpoint: tcp,
    });
    expect(noCert.code).toBe(1);
    expect(noCert.stderr.split('\n')).toHaveLength(2); // one line and its newline
    const rogue = await runCliInProcess(
      [
        'list-machines',
        '--request-timeout',
        '3',
        ...tls,
        '--cert-file',
        f('intruder.pem'),
        '--key-file',
        f('intruder.key'),
      ],
      { endpoint: tcp },
    );
    expect(rogue.code).toBe(1);
    // The same settings from the environment, as for every flag.
    const env = await runCliInProcess(['list-machines'], {
      endpoint: tcp,
      env: {
        FLOTILLA_CA_FILE: f('ca.pem'),
        FLOTILLA_CERT_FILE: f('client.pem'),
        FLOTILLA_KEY_FILE: f('client.key'),
      },
    });
    expect(env.code).toBe(0);
  });

  it('the unix socket stays plaintext (guarded by its file mode)', async () => {
    const { unix } = await serve(true);
    const r = await runCliInProcess(['list-machines'], { endpoint: unix });
    expect(r.code).toBe(0);
    expect(machineIds(r.stdout)).toHaveLength(3);
  });

  it('refuses incomplete or unreadable settings, naming them', async () => {
    const err = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const onlyCa = err(() => serverTls({ ca: f('ca.pem') }));
    expect(isFlotillaError(onlyCa, ErrorCode.ConfigInvalid)).toBe(true);
    expect((onlyCa as Error).message).toBe(
      "grpc_tls_ca needs grpc_tls_cert and grpc_tls_key (the server's own certificate)",
    );
    const noKey = err(() => serverTls({ cert: f('server.pem') }));
    expect((noKey as Error).message).toBe('grpc_tls_key is required with grpc_tls_cert');
    const missing = err(() => serverTls({ cert: f('nope.pem'), key: f('server.key') }));
    expect((missing as Error).message).toContain(`grpc_tls_cert: cannot read ${f('nope.pem')}`);
    const cli = await runCliInProcess(['list-machines', '--cert-file', f('client.pem')], {
      endpoint: '127.0.0.1:1',
    });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('key-file is required with cert-file');
  });
});

describe('flotillad with grpc_tls_*', () => {
  it('serves its API with mTLS: the CLI with a client certificate works, without one it does not', async () => {
    const devDir = f('dev');
    fs.mkdirSync(devDir);
    const daemon = await startDevDaemon({
      dir: devDir,
      args: daemonTlsFlags(),
      kind: 'flotillad --dev (tls)',
    });
    try {
      const endpoint = `127.0.0.1:${daemon.port}`;
      const mtls = mtlsFlags();
      const ok = await runCli(['list-machines', ...mtls], { endpoint });
      expect(ok.code).toBe(0);
      expect(machineIds(ok.stdout)).toHaveLength(1);
      const refused = await runCli(
        ['list-machines', '--request-timeout', '3', '--ca-file', f('ca.pem')],
        {
          endpoint,
        },
      );
      expect(refused.code).toBe(1);
    } finally {
      expect(await daemon.stop()).toBe(0);
    }
  });
});

describe('a cluster with mTLS between daemons', () => {
  it('a follower forwards a client call to the leader over mTLS with its own certificate', async () => {
    const cluster = await startCluster({
      nodes: [{}, { disableEngine: true }],
      flags: daemonTlsFlags(),
    });
    try {
      const follower = cluster.endpoints()[1];
      const mtls = mtlsFlags();
      let r = await runCli(['list-machines', ...mtls], { endpoint: follower });
      const end = Date.now() + 20_000;
      while (machineIds(r.stdout).length < 2 && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 200));
        r = await runCli(['list-machines', ...mtls], { endpoint: follower });
      }
      expect(r.code).toBe(0);
      expect(machineIds(r.stdout)).toHaveLength(2);
      // A write through the follower reaches the leader's log.
      fs.writeFileSync(f('tls-hello.service'), '[Service]\nExecStart=/bin/sleep 1000\n');
      const submit = await runCli(['submit', f('tls-hello.service'), ...mtls], {
        endpoint: follower,
      });
      expect(submit.code).toBe(0);
      const files = await runCli(['list-unit-files', ...mtls], {
        endpoint: cluster.endpoints()[0],
      });
      expect(files.stdout).toContain('tls-hello.service');
    } finally {
      await cluster.dispose();
    }
  });
});

describe('etcd and NATS over TLS', () => {
  it('daemons reach etcd with mTLS and NATS with mTLS and a password, and run a cluster', async () => {
    const server = { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem') };
    const cluster = await startCluster({
      nodes: [{}, { disableEngine: true }],
      etcd: { tls: server },
      nats: { tls: server, auth: { user: 'flotilla', password: 's3cret' } },
      flags: [
        ...etcdClientFlags(),
        '--nats-cafile',
        f('ca.pem'),
        '--nats-certfile',
        f('client.pem'),
        '--nats-keyfile',
        f('client.key'),
        '--nats-user',
        'flotilla',
        '--nats-password',
        's3cret',
      ],
    });
    try {
      expect(cluster.etcd.endpoints[0]).toMatch(/^https:/);
      // Both machines joined (NATS) under an elected leader (etcd), seen through the follower.
      const follower = cluster.endpoints()[1];
      let r = await runCli(['list-machines'], { endpoint: follower });
      const end = Date.now() + 20_000;
      while (machineIds(r.stdout).length < 2 && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 200));
        r = await runCli(['list-machines'], { endpoint: follower });
      }
      expect(machineIds(r.stdout)).toHaveLength(2);
      fs.writeFileSync(f('etcd-tls.service'), '[Service]\nExecStart=/bin/sleep 1000\n');
      expect((await runCli(['submit', f('etcd-tls.service')], { endpoint: follower })).code).toBe(
        0,
      );
      // `flotilla replay` reads the same etcd with the same kind of settings, as flags.
      const etcdFlags = [
        '--etcd-servers',
        cluster.etcd.endpoints[0],
        '--cluster',
        cluster.clusterName,
      ];
      const replayed = await runCli(['replay', ...etcdFlags, ...etcdClientFlags()]);
      expect(replayed.code).toBe(0);
      expect(replayed.stdout).toContain('etcd-tls.service');
      const half = await runCli(['replay', ...etcdFlags, '--etcd-certfile', f('client.pem')]);
      expect(half.code).not.toBe(0);
      expect(half.stderr).toContain('--etcd-keyfile is required with --etcd-certfile');
    } finally {
      await cluster.dispose();
    }
  });

  it('refuses incomplete etcd and NATS TLS settings, naming the keys', () => {
    const base = loadConfig([], { FLOTILLA_CONFIG: f('none.conf') }).config;
    const cfg = (over: Partial<DaemonConfig>): DaemonConfig => ({ ...base, ...over });
    const msg = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(msg(() => etcdSecurity(cfg({ etcd_certfile: f('client.pem') })))).toBe(
      'etcd_keyfile is required with etcd_certfile',
    );
    expect(
      msg(() =>
        etcdSecurity(cfg({ etcd_certfile: f('client.pem'), etcd_keyfile: f('client.key') })),
      ),
    ).toBe('etcd_cafile is required with etcd_certfile');
    expect(msg(() => natsSecurity(cfg({ nats_cafile: f('missing.pem') })))).toContain(
      `nats_cafile: cannot read ${f('missing.pem')}`,
    );
    expect(natsSecurity(cfg({}))).toEqual({});
  });
});
