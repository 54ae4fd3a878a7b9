/**
 * Cutting one process off the network, for fault tests (root only).
 *
 * Two network namespaces of our own, joined by a veth pair:
 *
 *   isolated ns ──veth── gateway ns ──unix sockets── this process ── 127.0.0.1 (servers)
 *   10.213.0.2            10.213.0.1
 *
 * The process under test runs in the isolated namespace (`prefix`, i.e. `ip netns exec`) and
 * reaches the host's loopback servers through a relay in the gateway namespace: it listens on
 * the gateway's veth address and passes each connection over a unix socket (the filesystem is
 * shared across network namespaces) to this process, which connects to 127.0.0.1. No address
 * is added outside the two namespaces. `down()` takes the gateway's end of the link down: the
 * isolated side loses carrier and its packets go nowhere (a partition, not a refusal: open TCP
 * connections are not reset, they stall); `up()` restores it.
 *
 * Namespaces are named `fltf<owner pid>x<n>…`; `cleanupNetns()` (jest's global teardown) deletes
 * those whose owner process is gone.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HarnessError, HarnessErrorCode } from './errors';
import { isAlive, killGroup, track, untrack } from './registry';

export const GATEWAY_IP = '10.213.0.1';
const ISOLATED_IP = '10.213.0.2';
const PREFIX = 'fltf';
let seq = 0;

function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, (err, stdout, stderr) => {
      if (err)
        reject(
          new HarnessError(
            HarnessErrorCode.Unsupported,
            `ip ${args.join(' ')} failed (network namespaces need root and iproute2): ${stderr.trim() || err.message}`,
          ),
        );
      else resolve(stdout);
    });
  });
}

/** The relay run in the gateway namespace: TCP on the veth address → unix socket per port. */
const RELAY = `
const net = require('node:net');
const [host, dir, ...ports] = process.argv.slice(1);
let pending = ports.length;
for (const port of ports) {
  net.createServer((c) => {
    const u = net.connect(dir + '/' + port + '.sock');
    c.pipe(u); u.pipe(c);
    c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
    c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
  }).listen(Number(port), host, () => { if (--pending === 0) console.log('ready'); });
}`;

export interface Partition {
  /** Command prefix that runs a program in the isolated namespace (`ip netns exec NAME`). */
  readonly prefix: string[];
  /** Address the isolated side uses for the host's loopback servers (same port numbers). */
  readonly hostIp: string;
  /** Takes the link down: the isolated namespace can reach nothing. */
  down(): Promise<void>;
  /** Brings the link back up. */
  up(): Promise<void>;
  /** Kills the relay, deletes both namespaces (and so the veth pair) and the temp dir. */
  dispose(): Promise<void>;
}

/**
 * Creates the two namespaces, the veth pair and the relay for `ports` (loopback ports of this
 * host reachable from the isolated side as `hostIp:port`). Anything already created is removed
 * again when a step fails.
 */
export async function startPartition(ports: number[]): Promise<Partition> {
  const id = `${PREFIX}${process.pid}x${seq++}`;
  const iso = `${id}i`;
  const gw = `${id}g`;
  // Interface names are at most 15 bytes; they live in our namespaces, so short fixed names do.
  const isoIf = 'veth-iso';
  const gwIf = 'veth-gw';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-netns-'));
  const servers: net.Server[] = [];
  let relay: ChildProcess | undefined;
  const dispose = async (): Promise<void> => {
    if (relay?.pid) {
      killGroup(relay.pid, 'SIGKILL');
      untrack(relay.pid);
    }
    for (const s of servers) s.close();
    await ip(['netns', 'del', iso]).catch(() => undefined);
    await ip(['netns', 'del', gw]).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await ip(['netns', 'add', iso]);
    await ip(['netns', 'add', gw]);
    await ip([
      'link',
      'add',
      isoIf,
      'netns',
      iso,
      'type',
      'veth',
      'peer',
      'name',
      gwIf,
      'netns',
      gw,
    ]);
    await ip(['-n', iso, 'addr', 'add', `${ISOLATED_IP}/30`, 'dev', isoIf]);
    await ip(['-n', gw, 'addr', 'add', `${GATEWAY_IP}/30`, 'dev', gwIf]);
    for (const [ns, dev] of [
      [iso, 'lo'],
      [iso, isoIf],
      [gw, 'lo'],
      [gw, gwIf],
    ])
      await ip(['-n', ns, 'link', 'set', dev, 'up']);
    // Host side: one unix socket per port, each connection passed on to 127.0.0.1:port.
    for (const port of ports) {
      const srv = net.createServer((c) => {
        const t = net.connect(port, '127.0.0.1');
        c.pipe(t);
        t.pipe(c);
        c.on('error', () => t.destroy());
        t.on('error', () => c.destroy());
        c.on('close', () => t.destroy());
        t.on('close', () => c.destroy());
      });
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(path.join(dir, `${port}.sock`), resolve);
      });
    }
    const child = spawn(
      'ip',
      ['netns', 'exec', gw, process.execPath, '-e', RELAY, GATEWAY_IP, dir, ...ports.map(String)],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    relay = child;
    if (!child.pid)
      throw new HarnessError(HarnessErrorCode.ExitedEarly, 'netns relay did not start');
    track({ pid: child.pid, kind: 'netns relay', dir });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new HarnessError(HarnessErrorCode.NotReady, `netns relay not ready: ${out}`)),
        10_000,
      );
      const onData = (b: Buffer): void => {
        out += b.toString();
        if (out.includes('ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(
          new HarnessError(HarnessErrorCode.ExitedEarly, `netns relay exited (${code}): ${out}`),
        );
      });
    });
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    prefix: ['ip', 'netns', 'exec', iso],
    hostIp: GATEWAY_IP,
    down: async () => void (await ip(['-n', gw, 'link', 'set', gwIf, 'down'])),
    up: async () => void (await ip(['-n', gw, 'link', 'set', gwIf, 'up'])),
    dispose,
  };
}

/** Deletes namespaces left by fault tests whose process is gone (jest's global teardown). */
export function cleanupNetns(): number {
  const dir = '/var/run/netns';
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const name of fs.readdirSync(dir)) {
    const m = new RegExp(`^${PREFIX}(\\d+)x\\d+[ig]$`).exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    try {
      // Synchronous on purpose: the teardown must finish before jest exits.
      execFileSync('ip', ['netns', 'del', name]);
      n++;
    } catch {
      /* gone already */
    }
  }
  return n;
}
