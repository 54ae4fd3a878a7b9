import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * A TCP port that was free a moment ago (the kernel picks it: port 0), released before it is
 * returned: another process may take it before the caller binds it. Prefer a server that binds
 * port 0 itself and says which port it got — nats-server (`startNats`: its ports file), flotillad
 * (test/helpers/announced.ts: `startCluster`, `startDevDaemon` without a port; a restart passes
 * back the port learned at the first start). Left for etcd, which cannot (`startEtcdCluster`
 * starts again on fresh ports when it loses the race), for addresses that are never dialed, and
 * for a port that must be named before its server starts (api-access's forwarding loop: the
 * leader advertises the follower's port). Not yet converted: the cli-api, history, visualizer,
 * etcd-auth and bus-identity integration tests, bench/ and scripts/.
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
