import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, runCli } from '../helpers/cli';
import { track, untrack } from '../harness/registry';

/**
 * docs/deployment.md, run as written: its fenced blocks are read from the doc itself (so the doc
 * cannot drift from what is tested) and run for three "machines" on this one: 10.0.0.N becomes
 * 127.0.0.1N (all of 127/8 is loopback, so every machine keeps the doc's ports), and /etc, /var
 * paths become one temp directory per machine. Certificates with the doc's openssl commands, a
 * 3-member etcd with TLS from its ETCD_* block, a 3-node NATS cluster with TLS and per-machine
 * NKeys from `flotilla bus-auth` and its nats-server.conf, three flotillad with its
 * flotilla.conf (plus the loopback's own: machine ID, process driver). Bounded: each wait has a
 * deadline, every process is killed at the end.
 */
jest.setTimeout(180_000);

const DOC = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'deployment.md'), 'utf8');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-deploydoc-'));
const tls = path.join(root, 'tls');
const procs: ChildProcess[] = [];
const ids = [1, 2, 3].map((i) => `${String(i).repeat(8)}${'0'.repeat(24)}`);
const cli = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
const daemon = path.join(REPO_ROOT, 'dist', 'src', 'daemon', 'main.js');

/** The fenced blocks of one section of the doc (`## 2. etcd…`), in order. */
function blocks(heading: string): string[] {
  const start = DOC.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`docs/deployment.md has no section "${heading}"`);
  const end = DOC.indexOf('\n## ', start + 1);
  const section = DOC.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/**
 * The doc's text (written for m1) for machine `i` on loopback: "change the name and addresses on
 * the others" is a swap of m1 and mi, 10.0.0.1 and 10.0.0.i — lists of all three stay the same
 * set, m1's routes to the others become mi's.
 */
function onLoopback(text: string, i: number): string {
  const dir = path.join(root, `m${i}`);
  const swap = (n: string) => (n === '1' ? String(i) : n === String(i) ? '1' : n);
  return (
    text
      // Each machine's own loopback listener: on one host the three would share it.
      .replace(/,https:\/\/127\.0\.0\.1:2379/g, '')
      .replace(/\bm([123])\b/g, (_, n: string) => `m${swap(n)}`)
      .replace(/10\.0\.0\.([123])\b/g, (_, n: string) => `10.0.0.${swap(n)}`)
      .replace(/10\.0\.0\./g, '127.0.0.1')
      .replace(/\/etc\/(etcd|nats-server|flotilla)\/tls\//g, `${tls}/`)
      .replace(/\/var\/lib\/etcd\/flotilla/g, path.join(dir, 'etcd'))
      .replace(/\/etc\/flotilla\/nats\.nk/g, path.join(root, 'bus', `${ids[i - 1]}.nk`))
      .replace(/\/run\/flotilla\//g, `${dir}/run/`)
  );
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  track({ pid: p.pid!, kind: `deployment-doc ${path.basename(cmd)}` });
  procs.push(p);
  return p;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms ${String(last ?? '')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

afterAll(async () => {
  for (const p of procs.reverse()) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    }
    if (p.pid) untrack(p.pid);
  }
  if (process.env.KEEP_DEPLOYMENT_DOC) return;
  fs.rmSync(root, { recursive: true, force: true });
});

test('docs/deployment.md: three machines with TLS etcd, TLS NATS, NKeys and flotillad', async () => {
  // 1. Certificates: the doc's commands, in bash (they use process substitution).
  fs.mkdirSync(tls, { recursive: true });
  const [certs] = blocks('1. Certificates');
  execFileSync('bash', ['-euo', 'pipefail', '-c', onLoopback(certs, 1)], {
    cwd: tls,
    stdio: 'pipe',
  });
  for (const i of [1, 2, 3]) {
    const text = execFileSync(
      'openssl',
      ['x509', '-in', path.join(tls, `m${i}.crt`), '-noout', '-ext', 'subjectAltName'],
      { encoding: 'utf8' },
    );
    expect(text).toContain(`IP Address:127.0.0.1${i}`);
    expect(text).toContain('URI:flotilla:role:operator');
  }

  // 2. etcd: the ETCD_* block of m1, changed for each member as the doc says.
  const [etcdEnv] = blocks('2. etcd');
  for (const i of [1, 2, 3]) {
    const env: NodeJS.ProcessEnv = {};
    for (const line of onLoopback(etcdEnv, i).split('\n')) {
      const m = /^(ETCD_[A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) env[m[1]] = m[2];
    }
    expect(env.ETCD_NAME).toBe(`m${i}`);
    fs.mkdirSync(path.join(root, `m${i}`), { recursive: true });
    start(
      process.env.FLOTILLA_ETCD_BIN ?? '/usr/bin/etcd',
      [],
      env,
      path.join(root, `m${i}`, 'etcd.log'),
    );
  }
  const etcdctl = [
    '--cacert',
    path.join(tls, 'ca.crt'),
    '--cert',
    path.join(tls, 'm1.crt'),
    '--key',
    path.join(tls, 'm1.key'),
  ];
  await until('etcd healthy', async () => {
    // etcdctl 3.4 prints the health lines on stderr.
    const r = spawnSync(
      'etcdctl',
      ['--endpoints', 'https://127.0.0.11:2379', ...etcdctl, 'endpoint', 'health', '--cluster'],
      { encoding: 'utf8', timeout: 10_000 },
    );
    const healthy = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('is healthy'));
    return healthy.length === 3 ? true : undefined;
  });

  // 3. NATS: bus-auth as the doc runs it (the machine IDs are ours), then m1's config per node.
  const [busAuth, natsConf] = blocks('3. NATS');
  const busCmd = busAuth
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n\s*/g, '')
    .replace(/\$\(ssh m(\d) cat \/etc\/machine-id\)/g, (_, n: string) => ids[Number(n) - 1])
    .trim();
  expect(busCmd).toMatch(/^flotilla bus-auth /);
  execFileSync('node', [cli, ...busCmd.split(/\s+/).slice(1)], { cwd: root, stdio: 'pipe' });
  for (const i of [1, 2, 3]) {
    const conf = path.join(root, `m${i}`, 'nats-server.conf');
    fs.writeFileSync(conf, onLoopback(natsConf, i));
    // "./bus/flotilla-auth.conf → /etc/nats-server/ on every machine" (beside the config).
    fs.copyFileSync(
      path.join(root, 'bus', 'flotilla-auth.conf'),
      path.join(root, `m${i}`, 'flotilla-auth.conf'),
    );
    start('nats-server', ['-c', conf], {}, path.join(root, `m${i}`, 'nats.log'));
  }

  // 4. flotillad: the doc's flotilla.conf of m1, for each machine; then the loopback's own keys.
  const conf = blocks('4. flotillad').find((b) => b.includes('etcd_servers='));
  expect(conf).toBeDefined();
  for (const i of [1, 2, 3]) {
    const dir = path.join(root, `m${i}`);
    fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
    const file = path.join(dir, 'flotilla.conf');
    fs.writeFileSync(
      file,
      `${onLoopback(conf!, i)}machine_id=${ids[i - 1]}\ndriver=process\nunits_directory=${dir}/units\n`,
      { mode: 0o640 },
    );
    start('node', [daemon, '--config', file], {}, path.join(dir, 'flotillad.log'));
  }

  // Check, as the doc does: the cluster over the local socket, three machines, /readyz.
  const sock = `unix://${path.join(root, 'm1', 'run', 'flotilla.sock')}`;
  const cluster = await until('a leader', async () => {
    const r = await runCli(['cluster'], { endpoint: sock });
    return r.code === 0 && /Leader:\s+\S+/.test(r.stdout) ? r.stdout : undefined;
  });
  expect(cluster).toMatch(/Leader:/);
  await until('three machines', async () => {
    const r = await runCli(['list-machines', '--no-legend'], { endpoint: sock });
    return r.code === 0 && r.stdout.trim().split('\n').length === 3 ? true : undefined;
  });
  // Over TLS from another machine, with that machine's certificate (an operator's).
  const remote = await runCli(
    [
      'list-machines',
      '--no-legend',
      '--ca-file',
      path.join(tls, 'ca.crt'),
      '--cert-file',
      path.join(tls, 'm2.crt'),
      '--key-file',
      path.join(tls, 'm2.key'),
    ],
    { endpoint: '127.0.0.13:7070' },
  );
  expect(remote.stderr).toBe('');
  expect(remote.stdout.trim().split('\n')).toHaveLength(3);
  await until('/readyz', async () => {
    const res = await fetch('http://127.0.0.11:7071/readyz');
    return res.status === 200 ? true : undefined;
  });
});
