import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * A TCP port that was free a moment ago (the kernel picks it: port 0), released before it is
 * returned: another process may take it before the caller binds it. Do not hand it to a server:
 * prefer one that binds port 0 itself and says which port it got — nats-server (`startNats`: its
 * ports file), flotillad (test/helpers/announced.ts: `startCluster`, `startDevDaemon` without a
 * port, `DaemonNode.listenerPort`). A server that must be told its port before it starts goes
 * through `onFreshPorts`, which starts it again on fresh ports when it lost the race; a port that
 * must refuse connections is `refusingPort`'s. Still exported for the visualizer's test and
 * bench/viz.ts until they are converted.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => {
        if (addr && typeof addr === 'object') resolve(addr.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/**
 * Starts something that must be given its TCP ports before it binds them and cannot bind port 0
 * and say which it got (etcd, whose members name each other's ports; systemd-socket-activate,
 * which refuses port 0): `start` gets `count` ports free a moment ago, and when it fails because
 * another process took one in between (`lostRace(err)`: "address already in use"), it is called
 * again with fresh ports, at most `attempts` times in all. The only use of `freePort` left here.
 */
export async function onFreshPorts<T>(
  count: number,
  start: (ports: number[]) => Promise<T>,
  lostRace: (err: unknown) => boolean,
  attempts = 3,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    // One at a time, each still free when the next is probed: `count` different ports.
    while (ports.length < count) {
      const p = await freePort();
      if (!ports.includes(p)) ports.push(p);
    }
    try {
      return await start(ports);
    } catch (err) {
      if (attempt >= attempts || !lostRace(err)) throw err;
    }
  }
}

/** True for an error (or a process's output in one) that says a port was taken: EADDRINUSE. */
export function addressInUse(err: unknown): boolean {
  const text =
    err instanceof Error ? `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` : '';
  return /EADDRINUSE|address already in use/i.test(text);
}

/** A loopback TCP port that refuses connections for as long as it is held; `close` frees it. */
export interface RefusingPort extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A port nobody listens on, held so that nobody can start to: the local port of a connection this
 * process keeps open to a listener of its own. A connection dialed to it is refused (no socket
 * listens there), and while it is held the kernel neither hands it to a bind on port 0 nor lets
 * another bind it (the connected socket is not SO_REUSEADDR). For "connection refused" cases,
 * where a port probed free and released could be taken by a server before the test dials it.
 */
export async function refusingPort(): Promise<RefusingPort> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => accepted.push(s));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port: listening } = srv.address() as net.AddressInfo;
  const held = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ port: listening, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
  const close = async (): Promise<void> => {
    held.destroy();
    for (const s of accepted) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };
  return { port: held.localPort!, close, [Symbol.asyncDispose]: close };
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
export function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * The ports file nats-server writes in `ports_file_dir` once it listens (`<exe>_<pid>.ports`,
 * JSON: `{"nats": ["nats://127.0.0.1:41234"], "monitoring": [...], "cluster": [...]}`), for the
 * process `pid`; undefined until it is there and complete.
 */
export function readPortsFile(
  dir: string,
  pid: number | undefined,
): Record<string, string[] | undefined> | undefined {
  if (pid === undefined) return undefined;
  const name = fs.readdirSync(dir).find((f) => f.endsWith(`_${pid}.ports`));
  if (!name) return undefined;
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as Record<
      string,
      string[] | undefined
    >;
  } catch {
    // Being written.
    return undefined;
  }
}
