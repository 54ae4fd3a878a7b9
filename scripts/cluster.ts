/**
 * `npm run cluster -- --machines 3`: a real Flotilla cluster on this machine, to try things
 * with. Starts etcd and nats-server (the Debian binaries, on PATH or where test/harness looks,
 * FLOTILLA_ETCD_BIN / FLOTILLA_NATS_BIN override) on free loopback ports, then N flotillad
 * processes on loopback with the process driver (units run as child processes; no systemd
 * needed), each serving fleet's HTTP API v1 on a unix socket for the original fleetctl, prints
 * the endpoints and some commands, and on Ctrl-C (or SIGTERM) stops the
 * daemons, the units they started, NATS and etcd, and removes its temp directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEtcd, startNats, type EtcdCluster, type NatsServer } from '../test/harness';
import { tcpOpen } from '../test/harness/ports';
import { killGroup, track, untrack } from '../test/harness/registry';
import { announcedPort } from '../test/helpers/announced';
import { daemonFlags, FLOTILLAD } from '../test/helpers/cluster';
import { killUnitProcesses } from '../test/helpers/unit-processes';

const USAGE = `usage: npm run cluster -- [--machines N] [--base-port PORT]

Starts etcd, NATS and N flotillad daemons (default 3) on 127.0.0.1, prints how to use them,
and tears everything down on Ctrl-C. --base-port P gives daemon i the gRPC port P+i (default:
ports each daemon picks).
`;

interface Daemon {
  index: number;
  machineId: string;
  grpc: string;
  http: string;
  unitsDir: string;
  /** fleet's HTTP API v1 for the original fleetctl (`--endpoint unix://…`). */
  fleetSock: string;
  log: string;
  proc: ChildProcess;
}

function parse(argv: string[]): { machines: number; basePort: number } {
  let machines = 3;
  let basePort = 0;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? a.split('=', 2) : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (flag === '--machines') {
      machines = Number(value());
      if (!Number.isInteger(machines) || machines < 1 || machines > 9)
        throw new Error('--machines: a whole number from 1 to 9');
    } else if (flag === '--base-port') {
      basePort = Number(value());
      if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000)
        throw new Error('--base-port: a port from 1024 to 65000');
    } else throw new Error(`unknown argument ${a}\n\n${USAGE}`);
  }
  return { machines, basePort };
}

/**
 * Waits until daemon `d` has announced its gRPC and HTTP ports in its log (it picks those given
 * as port 0) and its gRPC port accepts connections; fills in `d.grpc` and `d.http`.
 */
async function waitListening(d: Daemon): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const log = fs.readFileSync(d.log, 'utf8');
    const grpc = announcedPort(log, 'API');
    const http = announcedPort(log, 'HTTP');
    if (grpc !== undefined && http !== undefined && (await tcpOpen(grpc))) {
      d.grpc = `127.0.0.1:${grpc}`;
      d.http = `127.0.0.1:${http}`;
      return;
    }
    if (d.proc.exitCode !== null) throw new Error(`flotillad ${d.index} exited:\n${log}`);
    if (Date.now() > end) throw new Error(`flotillad ${d.index} did not listen within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  const { machines, basePort } = parse(process.argv.slice(2));
  if (!fs.existsSync(FLOTILLAD)) throw new Error(`${FLOTILLAD} is missing: run npm run build`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-cluster-'));
  const cluster = 'local';
  let etcd: EtcdCluster | undefined;
  let nats: NatsServer | undefined;
  const daemons: Daemon[] = [];
  let stopping: Promise<void> | undefined;

  const teardown = (): Promise<void> =>
    (stopping ??= (async () => {
      process.stdout.write('\nstopping the daemons, their units, NATS and etcd…\n');
      await Promise.all(
        daemons.map(
          (d) =>
            new Promise<void>((resolve) => {
              if (d.proc.exitCode !== null || d.proc.signalCode !== null) return resolve();
              const t = setTimeout(() => killGroup(d.proc.pid!, 'SIGKILL'), 15_000);
              d.proc.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              d.proc.kill('SIGTERM');
            }),
        ),
      );
      let units = 0;
      for (const d of daemons) {
        untrack(d.proc.pid!);
        units += killUnitProcesses(d.unitsDir);
      }
      await nats?.dispose();
      await etcd?.dispose();
      fs.rmSync(root, { recursive: true, force: true });
      process.stdout.write(`done (${daemons.length} daemons, ${units} units stopped)\n`);
    })());

  process.on('SIGINT', () => void teardown().then(() => process.exit(0)));
  process.on('SIGTERM', () => void teardown().then(() => process.exit(0)));

  try {
    etcd = await startEtcd();
    nats = await startNats();
    for (let i = 0; i < machines; i++) {
      const grpcPort = basePort ? basePort + i : 0;
      const dir = path.join(root, `machine${i + 1}`);
      fs.mkdirSync(dir, { recursive: true });
      const log = path.join(dir, 'flotillad.log');
      const machineId = randomBytes(16).toString('hex');
      const unitsDir = path.join(dir, 'units');
      const fleetSock = path.join(dir, 'fleet.sock');
      const args = [
        ...daemonFlags({
          etcd,
          nats,
          cluster,
          machineId,
          grpcPort,
          agentTtl: '10s',
          leaseTtl: '5s',
        }),
        '--driver',
        'process',
        '--units-directory',
        unitsDir,
        '--metadata',
        `machine=${i + 1},zone=${['a', 'b', 'c'][i % 3]}`,
        '--fleet-api-listen',
        `unix://${fleetSock}`,
      ];
      const out = fs.openSync(log, 'a');
      const proc = spawn(process.execPath, [FLOTILLAD, ...args], {
        env: { PATH: process.env.PATH, FLOTILLA_CONFIG: path.join(dir, 'none.conf') },
        detached: true,
        stdio: ['ignore', out, out],
      });
      fs.closeSync(out);
      track({ pid: proc.pid!, kind: 'flotillad (npm run cluster)' });
      const d: Daemon = {
        index: i + 1,
        machineId,
        grpc: '',
        http: '',
        unitsDir,
        fleetSock,
        log,
        proc,
      };
      daemons.push(d);
      await waitListening(d);
    }
  } catch (err) {
    await teardown();
    throw err;
  }

  const first = daemons[0].grpc;
  const lines = [
    `Flotilla cluster "${cluster}" on 127.0.0.1: ${machines} machine${machines > 1 ? 's' : ''}`,
    '',
    `etcd:  ${etcd.endpoints.join(',')}`,
    `NATS:  ${nats.url}`,
    ...daemons.map(
      (d) =>
        `machine ${d.index}: gRPC ${d.grpc}  http://${d.http}/metrics  /readyz  fleet API unix://${d.fleetSock}  log ${d.log}`,
    ),
    '',
    'Try, in another terminal:',
    `  export FLOTILLA_ENDPOINT=${first}`,
    '  npx flotilla list-machines',
    '  npx flotilla start examples/hello.service',
    "  npx flotilla start 'examples/web@1.service' 'examples/web@2.service'   # Conflicts: one per machine",
    '  npx flotilla list-units',
    '  npx flotilla journal hello.service',
    '  npx flotilla cluster',
    '  npx flotilla events --follow',
    `  npx flotilla replay --etcd-servers ${etcd.endpoints[0]} --cluster ${cluster} --unit hello.service`,
    `  npx flotilla backup /tmp/flotilla.backup --etcd-servers ${etcd.endpoints[0]} --cluster ${cluster}`,
    `  curl -s http://${daemons[0].http}/readyz`,
    `  fleetctl --endpoint unix://${daemons[0].fleetSock} list-machines   # the original fleetctl (fleet's API v1 on every machine)`,
    '  kill the leader (flotilla cluster shows it) and watch another take over',
    '',
    'Ctrl-C stops everything and removes the temporary directory.',
    'ready',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  for (const d of daemons) {
    d.proc.once('exit', (code, signal) => {
      if (!stopping)
        process.stdout.write(
          `machine ${d.index}: flotillad exited (${signal ?? code}); see ${d.log}\n`,
        );
    });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`npm run cluster: ${(err as Error).message}\n`);
  process.exit(1);
});
