import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { credentials, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { connectApi } from '../../src/api/client';
import { ERROR_CODE_TRAILER, grpcStatusFor } from '../../src/api/errors';
import { startApiServer } from '../../src/api/server';
import type { ApiServerHandle } from '../../src/api/server';
import type { Unit } from '../../src/gen/flotilla/v1/flotilla';
import type { ClusterApi } from '../../src/api/types';
import { ErrorCode, FlotillaError, isFlotillaError } from '../../src/errors';
import { FlotillaClient } from '../../src/gen/flotilla/v1/flotilla';
import { refusingPort } from '../harness';
import {
  parseTable,
  runCli,
  runCliInProcess,
  spawnCli,
  startCliInProcess,
  stripProgress,
  tableObjects,
} from '../helpers/cli';
import type { CliResult, InProcessCliOptions, RunCliOptions } from '../helpers/cli';
import type { CountedApi } from '../helpers/counted-api';
import { startEngineCluster, type EngineCluster } from '../helpers/engine-cluster';
import type { EngineClusterOptions } from '../helpers/engine-cluster';

/**
 * The gRPC server and client over the real engine (EngineApi on the memory store, real agents
 * on simulated systemd, all in this process: test/helpers/engine-cluster.ts), and the `flotilla`
 * CLI against it: exact stdout, stderr and exit codes for every verb. The CLI runs in-process
 * through its entry function (src/cli/run.ts) and reaches the server over gRPC as the binary
 * does; a handful of cases spawn the real binary for what only a process shows (signals, the
 * environment, the built bin).
 */

const M1 = '32d3a898aa1bc3b5ec9e07a4e2a8c0f1';
const M2 = '7b2c6f1e9d0a4b3c8e5f6a7b8c9d0e1f';
const M3 = 'c9f0e1d2c3b4a5968778695a4b3c2d1e';

const HELLO = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo hello; sleep 1; done"
`;
const HELLO_V2 = HELLO.replace('echo hello', 'echo hello again');
const GLOBAL = `[Unit]
Description=Everywhere

[Service]
ExecStart=/bin/sleep infinity

[X-Fleet]
Global=true
`;
const WEB = `[Unit]
Description=Web %i

[Service]
ExecStart=/bin/web --port 80%i
`;

interface Env {
  cluster: EngineCluster;
  /** What the server serves: the engine's API, with call counters (counted-api.ts). */
  api: CountedApi;
  server: ApiServerHandle;
  /** 127.0.0.1:<port> */
  tcp: string;
  /** unix:///…/run/flotilla.sock */
  unix: string;
  /** A directory with unit files, used as the CLI's working directory. */
  dir: string;
  /** Runs the CLI in-process against the server. */
  cli(args: string[], opts?: InProcessCliOptions): Promise<CliResult>;
  /** Runs the CLI binary as a subprocess against the server. */
  spawned(args: string[], opts?: RunCliOptions): Promise<CliResult>;
  write(name: string, text: string): void;
  /** A unit as the engine shows it. */
  unit(name: string): Promise<Unit>;
  /** How many units the cluster has. */
  unitCount(): Promise<number>;
}

const envs: Env[] = [];

/**
 * A cluster served over gRPC. `agents: 'paused'`: the machines are alive but their agents do
 * nothing until `cluster.resumeAgents()` (a command that waits keeps waiting).
 */
async function setup(
  opts: EngineClusterOptions & { api?: (c: EngineCluster) => ClusterApi; agents?: 'paused' } = {},
): Promise<Env> {
  const cluster = await startEngineCluster(opts);
  if (opts.agents === 'paused') await cluster.pauseAgents();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-api-'));
  const sock = path.join(dir, 'run', 'flotilla.sock');
  const server = await cluster.serve({
    ...(opts.api ? { api: opts.api(cluster) } : {}),
    listen: [`unix://${sock}`],
  });
  const env: Env = {
    cluster,
    api: cluster.api,
    server,
    tcp: server.addresses[0],
    unix: server.addresses[1],
    dir,
    cli: (args, o = {}) => runCliInProcess(args, { endpoint: env.tcp, cwd: dir, ...o }),
    spawned: (args, o = {}) => runCli(args, { endpoint: env.tcp, cwd: dir, ...o }),
    write: (name, text) => {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), text);
    },
    unit: (name) => cluster.engineApi.getUnit({ name }),
    unitCount: async () => (await cluster.engineApi.getClusterStatus({})).units,
  };
  envs.push(env);
  return env;
}

afterEach(async () => {
  for (const e of envs.splice(0)) {
    await e.cluster.close();
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
});

/** Polls `cond` (no timing assertion: only a bound so a broken test fails instead of hanging). */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

function ok(stdout: string, stderr = ''): CliResult {
  return { stdout, stderr, code: 0, signal: null };
}
function failed(stderr: string, stdout = ''): CliResult {
  return { stdout, stderr, code: 1, signal: null };
}

// ====================================================================== gRPC server and client

describe('API server', () => {
  test('listens on TCP (actual port reported) and on a unix socket (mode 0660)', async () => {
    const e = await setup();
    expect(e.tcp).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(e.tcp).not.toBe('127.0.0.1:0');
    const sock = e.unix.slice('unix://'.length);
    expect(e.unix).toBe(`unix://${path.join(e.dir, 'run', 'flotilla.sock')}`);
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    for (const ep of [e.tcp, e.unix]) {
      const c = connectApi(ep);
      expect((await c.listMachines({})).machines.map((m) => m.id)).toEqual([M1, M2, M3]);
      c.close();
    }
  });

  test('removes a stale socket file, refuses a live one, and removes its socket on close', async () => {
    const e = await setup();
    const sock = path.join(e.dir, 'stale', 'flotilla.sock');
    fs.mkdirSync(path.dirname(sock));
    // A daemon killed with SIGKILL leaves its socket file behind with nobody listening.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          '-e',
          "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
          sock,
        ],
        { stdio: 'ignore' },
      );
      child.on('error', reject);
      child.on('exit', () => resolve());
    });
    expect(fs.statSync(sock).isSocket()).toBe(true);
    const server = await startApiServer({ api: e.api, listen: [`unix://${sock}`] });
    const c = connectApi(`unix://${sock}`);
    expect((await c.getClusterStatus({})).leaderMachineId).toBe(M1);
    c.close();
    await expect(startApiServer({ api: e.api, listen: [`unix://${sock}`] })).rejects.toThrow(
      /another process is serving on this socket/,
    );
    fs.writeFileSync(path.join(e.dir, 'plain'), 'x');
    await expect(
      startApiServer({ api: e.api, listen: [`unix://${path.join(e.dir, 'plain')}`] }),
    ).rejects.toThrow(/exists and is not a socket/);
    await server.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  test('refuses bad listen addresses with CONFIG_INVALID', async () => {
    const e = await setup();
    for (const addr of ['unix://relative.sock', 'localhost', '127.0.0.1:99999']) {
      await expect(startApiServer({ api: e.api, listen: [addr] })).rejects.toMatchObject({
        code: ErrorCode.ConfigInvalid,
      });
    }
  });
});

describe('errors cross gRPC with their stable code', () => {
  const cases: [ErrorCode, GrpcStatus][] = [
    [ErrorCode.UnitNotFound, GrpcStatus.NOT_FOUND],
    [ErrorCode.InvalidArgument, GrpcStatus.INVALID_ARGUMENT],
    [ErrorCode.UnitFileInvalid, GrpcStatus.INVALID_ARGUMENT],
    [ErrorCode.UnitNameInvalid, GrpcStatus.INVALID_ARGUMENT],
    [ErrorCode.UnitOptionsInvalid, GrpcStatus.INVALID_ARGUMENT],
    [ErrorCode.InvalidState, GrpcStatus.FAILED_PRECONDITION],
    [ErrorCode.NotLeader, GrpcStatus.UNAVAILABLE],
    [ErrorCode.NoLeader, GrpcStatus.UNAVAILABLE],
    [ErrorCode.StoreUnavailable, GrpcStatus.UNAVAILABLE],
    [ErrorCode.Unavailable, GrpcStatus.UNAVAILABLE],
    [ErrorCode.AgentUnavailable, GrpcStatus.UNAVAILABLE],
    [ErrorCode.Timeout, GrpcStatus.DEADLINE_EXCEEDED],
    [ErrorCode.UnitExists, GrpcStatus.ALREADY_EXISTS],
    [ErrorCode.Fenced, GrpcStatus.INTERNAL],
    [ErrorCode.StoreCorrupt, GrpcStatus.INTERNAL],
    [ErrorCode.Internal, GrpcStatus.INTERNAL],
    [ErrorCode.DriverFailed, GrpcStatus.INTERNAL],
  ];

  test.each(cases)('%s → gRPC %s, and back to the same FlotillaError', async (code, grpc) => {
    expect(grpcStatusFor(code)).toBe(grpc);
    const e = await setup();
    const thrown = new FlotillaError(code, `something about ${code}`, {
      details: { unit: 'hello.service', line: 3 },
      retryable: code === ErrorCode.NotLeader,
    });

    // A plain gRPC client sees the status code and the trailer.
    e.api.failNext('getUnit', thrown);
    const raw = new FlotillaClient(e.tcp, credentials.createInsecure());
    const err = await new Promise<ServiceError>((resolve) =>
      raw.getUnit({ name: 'x' }, new Metadata(), (er) => resolve(er!)),
    );
    raw.close();
    expect(err.code).toBe(grpc);
    expect(err.details).toBe(`something about ${code}`);
    expect(err.metadata.get(ERROR_CODE_TRAILER)).toEqual([code]);

    // Our client turns it back into the FlotillaError.
    e.api.failNext('getUnit', thrown);
    const c = connectApi(e.unix);
    const got = await c.getUnit({ name: 'x' }).catch((x: unknown) => x);
    c.close();
    expect(isFlotillaError(got, code)).toBe(true);
    expect(got).toMatchObject({
      code,
      message: `something about ${code}`,
      details: { unit: 'hello.service', line: 3 },
      retryable: code === ErrorCode.NotLeader,
    });
  });

  test('a plain Error from the api is INTERNAL, without its stack', async () => {
    const e = await setup();
    e.api.failNext('listMachines', new TypeError('x is undefined'));
    const c = connectApi(e.tcp);
    await expect(c.listMachines({})).rejects.toMatchObject({
      code: ErrorCode.Internal,
      message: 'internal error: x is undefined',
    });
    c.close();
  });

  test('real validation errors from the cluster keep their code', async () => {
    const e = await setup();
    const c = connectApi(e.tcp);
    await expect(c.getUnit({ name: 'nope.service' })).rejects.toMatchObject({
      code: ErrorCode.UnitNotFound,
    });
    await expect(
      c.createUnits({
        units: [{ name: 'bad name', options: [], targetState: '' }],
        replace: false,
      }),
    ).rejects.toMatchObject({ code: ErrorCode.UnitNameInvalid });
    await expect(
      c.setTargetStates({ names: ['x.service'], targetState: 'launched' }),
    ).rejects.toMatchObject({ code: ErrorCode.UnitNotFound });
    c.close();
  });

  test('unreachable endpoints: UNAVAILABLE naming the endpoint', async () => {
    await using refusing = await refusingPort();
    const { port } = refusing;
    const c = connectApi(`127.0.0.1:${port}`);
    await expect(c.listMachines({})).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
      message: `cannot reach flotilla at 127.0.0.1:${port}: connection refused`,
      retryable: true,
    });
    c.close();
    const missing = `unix://${os.tmpdir()}/flotilla-no-such-dir/flotilla.sock`;
    const u = connectApi(missing);
    await expect(u.listMachines({})).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
      message: `cannot reach flotilla at ${missing}: no such socket`,
    });
    u.close();
  });

  test('per-call deadlines: TIMEOUT when the server does not answer in time', async () => {
    const e = await setup({
      api: (cluster) => ({
        ...cluster.api,
        getClusterStatus: () => new Promise(() => undefined),
      }),
    });
    const c = connectApi(e.tcp, { requestTimeoutMs: 200 });
    await expect(c.getClusterStatus({})).rejects.toMatchObject({ code: ErrorCode.Timeout });
    c.close();
  });
});

describe('streams', () => {
  test('watch: replays from an index, then live; client abort cancels the server side', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service' }]);
    const from = (await e.cluster.engineApi.getClusterStatus({})).logIndex;
    const c = connectApi(e.tcp);
    const ac = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      const types = ['UnitSubmitted', 'UnitTargetSet'];
      for await (const ev of c.watch({ fromIndex: 1, types }, ac.signal)) {
        seen.push(`${ev.index} ${ev.type} ${ev.unit}`);
      }
    })();
    await eventually(() => seen.length === 1, 'backlog');
    await c.setTargetStates({ names: ['a.service'], targetState: 'loaded' });
    await eventually(() => seen.some((s) => s.includes('UnitTargetSet')), 'live event');
    expect(seen).toEqual([
      expect.stringMatching(/^\d+ UnitSubmitted a\.service$/),
      expect.stringMatching(/^\d+ UnitTargetSet a\.service$/),
    ]);
    expect(Number(seen[1].split(' ')[0])).toBeGreaterThan(from);
    ac.abort();
    await done; // ends quietly on our own abort
    await eventually(() => e.api.aborted('watch') === 1, 'server-side abort');
    c.close();
  });

  test('unitJournal --follow streams appended lines until cancelled', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service', target: 'launched' }]);
    for (let i = 1; i <= 20; i++) e.cluster.appendJournal('a.service', `line ${i}`);
    const c = connectApi(e.unix);
    const ac = new AbortController();
    let text = '';
    const done = (async () => {
      for await (const ch of c.unitJournal(
        { name: 'a.service', machineId: '', lines: 2, follow: true },
        ac.signal,
      )) {
        text += ch.text;
      }
    })();
    await eventually(() => text === 'line 19\nline 20\n', 'initial lines');
    e.cluster.appendJournal('a.service', 'a new line');
    await eventually(() => text.endsWith('\na new line\n'), 'followed line');
    expect(text).toBe('line 19\nline 20\na new line\n');
    ac.abort();
    await done;
    await eventually(() => e.api.aborted('unitJournal') === 1, 'server-side abort');
    c.close();
  });

  test('close() ends open streams', async () => {
    const e = await setup();
    const c = connectApi(e.tcp);
    const stream = c.watch({ fromIndex: 0, types: [] }, new AbortController().signal);
    const it = stream[Symbol.asyncIterator]();
    const next = it.next().catch((x: unknown) => x);
    await eventually(() => e.api.count('watch') === 1, 'watch open');
    await e.server.close();
    const r = await next;
    expect(
      r === undefined || (r as IteratorResult<unknown>).done === true || isFlotillaError(r),
    ).toBe(true);
    c.close();
  });
});

// ====================================================================== CLI

describe('flotilla: global behaviour', () => {
  test('no arguments and help print usage, exit 0', async () => {
    const e = await setup();
    for (const args of [[], ['help'], ['--help'], ['-h']]) {
      const r = await e.cli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('USAGE:\n\tflotilla [global options] <command>');
      expect(r.stdout).toMatch(/\tlist-unit-files\t+List the units that exist in the cluster\n/);
      expect(r.stdout).toContain('FLOTILLA_ENDPOINT');
    }
    const one = await e.cli(['help', 'journal']);
    expect(one.stdout).toContain('flotilla journal [--lines=N|-n N] [-f|--follow] UNIT');
    const flag = await e.cli(['start', '--help']);
    expect(flag.stdout).toContain('NAME:\n\tflotilla start - ');
    expect(e.api.total()).toBe(0);
  });

  test('--version and version', async () => {
    const e = await setup();
    const version = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8'))
      .version as string;
    expect(await e.cli(['--version'])).toEqual(ok(`flotilla version ${version}\n`));
    expect(await e.cli(['version'])).toEqual(ok(`flotilla version ${version}\n`));
    expect(await e.cli(['-v'])).toEqual(ok(`flotilla version ${version}\n`));
  });

  test('the built bin (dist/src/cli/main.js, what `npm test` builds) behaves the same', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    expect(await e.spawned(['start', 'hello'], { mode: 'dist' })).toEqual(
      ok('Unit hello.service inactive\nUnit hello.service launched on 32d3a898.../10.0.0.1\n'),
    );
    expect(await e.spawned(['bogus'], { mode: 'dist' })).toEqual(
      failed(`Unknown command "bogus". Run 'flotilla help' for usage.\n`),
    );
  });

  test('unknown commands and flags exit 1 with one line (fleetctl exited 0: fix)', async () => {
    const e = await setup();
    expect(await e.cli(['bogus'])).toEqual(
      failed(`Unknown command "bogus". Run 'flotilla help' for usage.\n`),
    );
    expect(await e.cli(['bogus', '--also-bogus'])).toEqual(
      failed(`Unknown command "bogus". Run 'flotilla help' for usage.\n`),
    );
    expect(await e.cli(['list-units', '--bogus'])).toEqual(
      failed(`Unknown flag "--bogus". Run 'flotilla help' for usage.\n`),
    );
    expect(await e.cli(['help', 'bogus'])).toEqual(
      failed(`Unknown command "bogus". Run 'flotilla help' for usage.\n`),
    );
    expect(await e.cli(['start', '--block-attempts=soon', 'x'])).toEqual(
      failed('invalid value "soon" for flag --block-attempts: expected an integer\n'),
    );
    expect(e.api.total()).toBe(0);
  });

  test('an unreachable endpoint: one line naming it, exit 1', async () => {
    const e = await setup();
    await using refusing = await refusingPort();
    const { port } = refusing;
    expect(await e.cli(['list-units'], { endpoint: `127.0.0.1:${port}` })).toEqual(
      failed(
        `Error retrieving list of units from repository: cannot reach flotilla at 127.0.0.1:${port}: connection refused\n`,
      ),
    );
    const sock = path.join(e.dir, 'nothing.sock');
    expect(await e.cli(['list-machines', `--endpoint=unix://${sock}`])).toEqual(
      failed(
        `Error retrieving list of active machines: cannot reach flotilla at unix://${sock}: no such socket\n`,
      ),
    );
  });

  test('endpoint from FLOTILLA_ENDPOINT, the flag wins; the unix socket works too', async () => {
    const e = await setup();
    await using refusing = await refusingPort();
    const dead = `127.0.0.1:${refusing.port}`;
    const byEnv = await runCli(['list-machines', '--no-legend', '--fields=ip'], {
      env: { FLOTILLA_ENDPOINT: e.unix },
    });
    expect(byEnv).toEqual(ok('10.0.0.1\n10.0.0.2\n10.0.0.3\n'));
    const flagWins = await runCliInProcess(
      ['--endpoint', e.tcp, 'list-machines', '--no-legend', '--fields=ip'],
      { env: { FLOTILLA_ENDPOINT: dead } },
    );
    expect(flagWins).toEqual(ok('10.0.0.1\n10.0.0.2\n10.0.0.3\n'));
  });

  test('other global flags from the environment: FLOTILLA_NO_LEGEND, FLOTILLA_FIELDS, FLOTILLA_FULL', async () => {
    const e = await setup();
    const r = await e.cli(['list-machines'], {
      env: { FLOTILLA_NO_LEGEND: 'true', FLOTILLA_FIELDS: 'machine', FLOTILLA_FULL: '1' },
    });
    expect(r).toEqual(ok(`${M1}\n${M2}\n${M3}\n`));
    const flagWins = await e.cli(['list-machines', '--no-legend=false', '--fields=ip'], {
      env: { FLOTILLA_NO_LEGEND: 'true', FLOTILLA_FIELDS: 'machine' },
    });
    expect(flagWins).toEqual(ok('IP\n10.0.0.1\n10.0.0.2\n10.0.0.3\n'));
  });

  test('a FlotillaError from the cluster reaches the user as one line', async () => {
    const e = await setup();
    e.api.failNext(
      'listUnitStates',
      new FlotillaError(ErrorCode.NoLeader, 'no leader elected yet; try again'),
    );
    expect(await e.cli(['list-units'])).toEqual(
      failed('Error retrieving list of units from repository: no leader elected yet; try again\n'),
    );
  });
});

describe('flotilla list-machines', () => {
  test('default columns, --full, --no-legend, --fields, --json', async () => {
    const e = await setup();
    expect(await e.cli(['list-machines'])).toEqual(
      ok(
        'MACHINE\t\tIP\t\tMETADATA\n' +
          '32d3a898...\t10.0.0.1\tdisk=ssd,region=us-east\n' +
          '7b2c6f1e...\t10.0.0.2\t-\n' +
          'c9f0e1d2...\t10.0.0.3\tregion=eu-west\n',
      ),
    );
    expect(await e.cli(['list-machines', '-l', '--no-legend'])).toEqual(
      ok(
        `${M1}\t10.0.0.1\tdisk=ssd,region=us-east\n` +
          `${M2}\t10.0.0.2\t-\n` +
          `${M3}\t10.0.0.3\tregion=eu-west\n`,
      ),
    );
    expect(await e.cli(['list-machines', '--fields=ip,machine'])).toEqual(
      ok('IP\t\tMACHINE\n10.0.0.1\t32d3a898...\n10.0.0.2\t7b2c6f1e...\n10.0.0.3\tc9f0e1d2...\n'),
    );
    const json = await e.cli(['list-machines', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      { machine: M1, ip: '10.0.0.1', metadata: { disk: 'ssd', region: 'us-east' } },
      { machine: M2, ip: '10.0.0.2', metadata: {} },
      { machine: M3, ip: '10.0.0.3', metadata: { region: 'eu-west' } },
    ]);
  });

  test('--fields errors: exit 1 before contacting the cluster', async () => {
    const e = await setup();
    expect(await e.cli(['list-machines', '--fields='])).toEqual(
      failed('Must define output format\n'),
    );
    expect(await e.cli(['list-machines', '--fields=machine,unit'])).toEqual(
      failed('Invalid key in output format: "unit"\n'),
    );
    expect(e.api.total()).toBe(0);
  });
});

describe('flotilla submit', () => {
  test('creates units from files, prints Unit x inactive; same content again does nothing', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    e.write('units/other.service', HELLO_V2);
    expect(await e.cli(['submit', 'hello', 'units/other.service'])).toEqual(
      ok('Unit hello.service inactive\nUnit other.service inactive\n'),
    );
    expect(await e.cli(['submit', 'hello.service'])).toEqual(ok(''));
    const files = tableObjects((await e.cli(['list-unit-files'])).stdout);
    expect(files).toEqual([
      {
        unit: 'hello.service',
        hash: expect.stringMatching(/^[0-9a-f]{7}$/),
        dstate: 'inactive',
        state: 'inactive',
        target: '-',
      },
      {
        unit: 'other.service',
        hash: expect.stringMatching(/^[0-9a-f]{7}$/),
        dstate: 'inactive',
        state: 'inactive',
        target: '-',
      },
    ]);
  });

  test('a different local file: the WARNING, cluster copy kept; --replace replaces it', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    await e.cli(['submit', 'hello.service']);
    const before = (await e.unit('hello.service')).hash;
    e.write('hello.service', HELLO_V2);
    expect(await e.cli(['submit', 'hello.service'])).toEqual(
      ok(
        '',
        'WARNING: Unit hello.service in registry differs from local unit file hello.service. Add --replace to override.\n',
      ),
    );
    expect((await e.unit('hello.service')).hash).toBe(before);
    expect(await e.cli(['submit', '--replace', 'hello.service'])).toEqual(ok(''));
    expect((await e.unit('hello.service')).hash).not.toBe(before);
    expect(await e.cli(['submit', '--replace', 'hello.service'])).toEqual(
      ok('Found same Unit(hello.service) in Registry, nothing to do\n'),
    );
  });

  test('--replace is refused from a state the command may not replace from', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    await e.cli(['start', 'hello.service']);
    e.write('hello.service', HELLO_V2);
    expect(await e.cli(['submit', '--replace', 'hello.service'])).toEqual(
      ok(
        '',
        "Warning: can not replace Unit(hello.service) in state 'launched', use the appropriate command\n",
      ),
    );
  });

  test('parse errors: one line naming file and line, exit 1, nothing created', async () => {
    const e = await setup();
    e.write('broken.service', '[Unit]\nDescription=Broken\nExecStart /bin/true\n');
    expect(await e.cli(['submit', 'broken.service'])).toEqual(
      failed(
        'Error creating units: failed getting Unit(broken.service) from file: broken.service:3: expected "Name=Value", found "ExecStart /bin/true"\n',
      ),
    );
    expect(await e.unitCount()).toBe(0);
  });

  test('missing files and templates, in fleetctl words', async () => {
    const e = await setup();
    expect(await e.cli(['submit', 'nowhere'])).toEqual(
      failed(
        'Error creating units: unable to find Unit(nowhere.service) in Registry or on filesystem\n',
      ),
    );
    expect(await e.cli(['submit', 'web@1'])).toEqual(
      failed(
        'Error creating units: failed getting Unit(web@1.service) from template: unable to find template Unit(web@.service) in Registry or on filesystem\n',
      ),
    );
    expect(await e.cli(['submit'])).toEqual(failed('No units given\n'));
  });

  test('invalid unit options are refused by the cluster with its message', async () => {
    const e = await setup();
    e.write(
      'bad.service',
      '[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineOf=other.service\n',
    );
    const r = await e.cli(['submit', 'bad.service']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^Error creating units: [^\n]+\n$/);
  });
});

describe('flotilla load / start', () => {
  test('start: creates, launches, prints fleetctl lines; list-units and list-unit-files', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    expect(await e.cli(['start', 'hello'])).toEqual(
      ok('Unit hello.service inactive\nUnit hello.service launched on 32d3a898.../10.0.0.1\n'),
    );
    // Already launched: nothing to trigger, nothing printed (fleetctl).
    expect(await e.cli(['start', 'hello'])).toEqual(ok(''));
    expect(await e.cli(['list-units'])).toEqual(
      ok(
        'UNIT\t\tMACHINE\t\t\tACTIVE\tSUB\nhello.service\t32d3a898.../10.0.0.1\tactive\trunning\n',
      ),
    );
    const hash = (await e.unit('hello.service')).hash;
    expect(await e.cli(['list-unit-files'])).toEqual(
      ok(
        'UNIT\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\n' +
          `hello.service\t${hash.slice(0, 7)}\tlaunched\tlaunched\t32d3a898.../10.0.0.1\n`,
      ),
    );
    expect(
      await e.cli(['list-unit-files', '--full', '--fields=unit,hash,target,desc,global']),
    ).toEqual(
      ok(
        'UNIT\t\tHASH\t\t\t\t\t\tTARGET\t\t\t\t\t\tDESC\t\tGLOBAL\n' +
          `hello.service\t${hash}\t${M1}/10.0.0.1\tHello World\tfalse\n`,
      ),
    );
    expect(await e.cli(['list-units', '--fields=unit,load,hash', '--no-legend', '-l'])).toEqual(
      ok(`hello.service\tloaded\t${hash}\n`),
    );
  });

  test('load: loaded on a machine', async () => {
    const e = await setup();
    e.write('a.service', HELLO);
    e.write('b.service', HELLO_V2);
    expect(await e.cli(['load', 'a', 'b'])).toEqual(
      ok(
        'Unit a.service inactive\nUnit b.service inactive\n' +
          'Unit a.service loaded on 32d3a898.../10.0.0.1\nUnit b.service loaded on 7b2c6f1e.../10.0.0.2\n',
      ),
    );
    expect(await e.cli(['list-units'])).toEqual(
      ok(
        'UNIT\t\tMACHINE\t\t\tACTIVE\t\tSUB\n' +
          'a.service\t32d3a898.../10.0.0.1\tinactive\tdead\n' +
          'b.service\t7b2c6f1e.../10.0.0.2\tinactive\tdead\n',
      ),
    );
  });

  test('--no-block prints "Triggered unit x start" once and returns', async () => {
    const e = await setup({ agents: 'paused' });
    e.write('hello.service', HELLO);
    expect(await e.cli(['start', '--no-block', 'hello'])).toEqual(
      ok('Unit hello.service inactive\nTriggered unit hello.service start\n'),
    );
    expect((await e.unit('hello.service')).targetState).toBe('launched');
  });

  test("--block-attempts=N gives up with fleetctl's message, exit 1", async () => {
    const e = await setup({ agents: 'paused' });
    e.write('hello.service', HELLO);
    expect(await e.cli(['start', '--block-attempts=1', 'hello'])).toEqual(
      failed(
        'Error waiting for units: timed out waiting for unit hello.service to report state launched\n',
        'Unit hello.service inactive\n',
      ),
    );
  });

  test('blocks until the agents report: launched once the cluster converges', async () => {
    const e = await setup({ agents: 'paused' });
    e.write('hello.service', HELLO);
    const p = startCliInProcess(['start', 'hello'], { endpoint: e.tcp, cwd: e.dir });
    await p.waitForStdout(/Unit hello\.service inactive\n/);
    await e.cluster.until(
      () => e.cluster.engine.state.units.get('hello.service')?.target === 'launched',
      'target set',
    );
    expect(p.done()).toBe(false); // still waiting
    await e.cluster.resumeAgents();
    expect(await p.result).toEqual(
      ok('Unit hello.service inactive\nUnit hello.service launched on 32d3a898.../10.0.0.1\n'),
    );
  });

  test('Ctrl-C while blocking exits 130 without a timeout message', async () => {
    const e = await setup({ agents: 'paused' });
    e.write('hello.service', HELLO);
    const p = spawnCli(['start', 'hello'], { endpoint: e.tcp, cwd: e.dir });
    await p.waitForStdout(/Unit hello\.service inactive\n/);
    await e.cluster.until(
      () => e.cluster.engine.state.units.get('hello.service')?.target === 'launched',
      'target set',
    );
    expect(await p.stop('SIGINT')).toEqual({
      stdout: 'Unit hello.service inactive\n',
      stderr: '',
      code: 130,
      signal: null,
    });
  });

  test('global units are triggered, never waited on; list-units shows one row per machine', async () => {
    const e = await setup();
    e.write('everywhere.service', GLOBAL);
    expect(await e.cli(['start', 'everywhere'])).toEqual(
      ok('Unit everywhere.service inactive\nTriggered global unit everywhere.service start\n'),
    );
    await e.cluster.settle(['everywhere.service']);
    expect(await e.cli(['list-units'])).toEqual(
      ok(
        'UNIT\t\t\tMACHINE\t\t\tACTIVE\tSUB\n' +
          'everywhere.service\t32d3a898.../10.0.0.1\tactive\trunning\n' +
          'everywhere.service\t7b2c6f1e.../10.0.0.2\tactive\trunning\n' +
          'everywhere.service\tc9f0e1d2.../10.0.0.3\tactive\trunning\n',
      ),
    );
    const files = tableObjects((await e.cli(['list-unit-files'])).stdout);
    expect(files[0]).toMatchObject({
      unit: 'everywhere.service',
      dstate: 'launched',
      state: '-',
      target: 'global',
    });
  });

  test('start web@1.service from a local web@.service template', async () => {
    const e = await setup();
    e.write('web@.service', WEB);
    expect(await e.cli(['start', 'web@1.service', 'web@2'])).toEqual(
      ok(
        'Unit web@1.service inactive\nUnit web@2.service inactive\n' +
          'Unit web@1.service launched on 32d3a898.../10.0.0.1\n' +
          'Unit web@2.service launched on 7b2c6f1e.../10.0.0.2\n',
      ),
    );
    expect((await e.cli(['cat', 'web@1'])).stdout).toBe(
      '[Unit]\nDescription=Web %i\n\n[Service]\nExecStart=/bin/web --port 80%i\n',
    );
    // A template in the cluster is used before a local file.
    await e.cli(['submit', 'web@.service']);
    e.write('web@.service', WEB.replace('80%i', '90%i'));
    const r = await e.cli(['start', 'web@3']);
    expect(r.stderr).toBe(
      'WARNING: Unit web@.service in registry differs from local template unit file web@.service. Add --replace to override.\n',
    );
    expect((await e.unit('web@3.service')).hash).toBe((await e.unit('web@1.service')).hash);
  });

  test('start of a template is refused', async () => {
    const e = await setup();
    e.write('web@.service', WEB);
    expect(await e.cli(['start', 'web@.service'])).toEqual(
      failed(
        'Error starting units: cannot activate template "web@.service"\n',
        'Unit web@.service inactive\n',
      ),
    );
    expect(await e.cli(['load', 'web@.service'])).toEqual(
      failed('Error loading units: cannot activate template "web@.service"\n'),
    );
  });

  test('start --replace of a running unit replaces it and waits for it', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    await e.cli(['start', 'hello']);
    e.write('hello.service', HELLO_V2);
    expect(await e.cli(['start', 'hello'])).toEqual(
      ok(
        '',
        'WARNING: Unit hello.service in registry differs from local unit file hello.service. Add --replace to override.\n',
      ),
    );
    expect(await e.cli(['start', '--replace', 'hello'])).toEqual(
      ok('Unit hello.service launched on 32d3a898.../10.0.0.1\n'),
    );
    expect((await e.cli(['cat', 'hello'])).stdout).toContain('echo hello again');
  });

  test('--json lists for scripts', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    await e.cli(['start', 'hello']);
    const units = JSON.parse((await e.cli(['list-units', '--json'])).stdout) as unknown;
    expect(units).toEqual([
      { unit: 'hello.service', machine: `${M1}/10.0.0.1`, active: 'active', sub: 'running' },
    ]);
    const files = JSON.parse(
      (await e.cli(['list-unit-files', '--json', '--fields=unit,dstate,desc,global'])).stdout,
    ) as unknown;
    expect(files).toEqual([
      { unit: 'hello.service', dstate: 'launched', desc: 'Hello World', global: false },
    ]);
  });

  test('3,000 units in one start: O(1) creation and target calls over gRPC', async () => {
    const e = await setup({ agents: 'paused' });
    const names = Array.from(
      { length: 3000 },
      (_, i) => `bulk${String(i).padStart(4, '0')}.service`,
    );
    for (const n of names) e.write(n, `[Service]\nExecStart=/bin/sleep ${n.length}\n`);
    const r = await e.cli(['start', '--no-block', ...names]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(e.api.count('createUnits')).toBe(1);
    expect(e.api.count('setTargetStates')).toBe(1);
    expect(e.api.count('getUnit')).toBe(0);
    expect(e.api.count('listUnits')).toBeLessThanOrEqual(4);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Triggered unit '))).toHaveLength(3000);
    await e.cluster.resumeAgents();
    await e.cluster.settle();
    e.api.resetCounts();
    const list = await e.cli(['list-units', '--no-legend']);
    expect(parseTable(list.stdout, false).rows).toHaveLength(3000);
    expect(e.api.count('listUnitStates')).toBe(3);
    const stop = await e.cli(['stop', ...names]);
    expect(stop.code).toBe(0);
    expect(stripProgress(stop.stderr)).toBe(`Successfully stopped units [${names.join(' ')}].\n`);
    expect(e.api.count('setTargetStates')).toBe(1);
  });
});

describe('flotilla stop / unload / destroy / restart', () => {
  async function started(opts: { agents?: 'paused' } = {}): Promise<Env> {
    const e = await setup();
    e.write('hello.service', HELLO);
    e.write('everywhere.service', GLOBAL);
    await e.cli(['start', '--no-block', 'hello', 'everywhere']);
    await e.cluster.settle();
    if (opts.agents === 'paused') await e.cluster.pauseAgents();
    return e;
  }

  test('stop waits for loaded and ends with the summary on stderr', async () => {
    const e = await started();
    expect(await e.cli(['stop', 'hello.service', 'everywhere'])).toEqual(
      ok(
        'Triggered global unit everywhere.service stop\nUnit hello.service loaded on 32d3a898.../10.0.0.1\n',
        'Successfully stopped units [hello.service everywhere.service].\n',
      ),
    );
    expect(await e.cli(['stop', 'hello'])).toEqual(ok(''));
  });

  test('stop of an inactive unit is refused; unknown names are skipped', async () => {
    const e = await started();
    e.write('idle.service', HELLO_V2);
    await e.cli(['submit', 'idle']);
    expect(await e.cli(['stop', 'idle'])).toEqual(
      failed('Unable to stop unit idle.service in state inactive\n'),
    );
    expect(await e.cli(['stop', 'nothere', 'neither'])).toEqual(
      ok('', 'Units not found in registry\n'),
    );
  });

  test('stop --no-block', async () => {
    const e = await started({ agents: 'paused' });
    expect(await e.cli(['stop', '--no-block', 'hello'])).toEqual(
      ok('Triggered unit hello.service stop\n'),
    );
  });

  test('unload waits for inactive', async () => {
    const e = await started();
    expect(await e.cli(['unload', 'hello', 'everywhere'])).toEqual(
      ok(
        'Triggered global unit everywhere.service unload\nUnit hello.service inactive\n',
        'Successfully unloaded units [hello.service everywhere.service].\n',
      ),
    );
    expect(await e.cli(['unload', 'missing'])).toEqual(ok('', 'Units not found in registry\n'));
    expect(await e.cli(['unload', '--block-attempts=1', 'hello'])).toEqual(ok(''));
  });

  test('destroy prints Destroyed per unit; missing names: Units not found in registry', async () => {
    const e = await started();
    expect(await e.cli(['destroy', 'hello', 'missing.service', 'everywhere'])).toEqual(
      ok('Destroyed hello.service\nDestroyed everywhere.service\n'),
    );
    expect(await e.unitCount()).toBe(0);
    expect(await e.cli(['destroy', 'hello'])).toEqual(ok('', 'Units not found in registry\n'));
    expect(e.api.count('destroyUnits')).toBe(1);
  });

  test('restart stops, waits for loaded, starts, waits for launched; global units too', async () => {
    const e = await started();
    e.api.resetCounts();
    expect(await e.cli(['restart', 'hello', 'everywhere'])).toEqual(
      ok(
        'Unit hello.service loaded on 32d3a898.../10.0.0.1\n' +
          'Global unit everywhere.service loaded on 3 machines\n' +
          'Unit hello.service launched on 32d3a898.../10.0.0.1\n' +
          'Global unit everywhere.service launched on 3 machines\n' +
          'Unit(hello.service) was restarted.\nUnit(everywhere.service) was restarted.\n',
      ),
    );
    expect(e.api.count('setTargetStates')).toBe(2);
    expect((await e.unit('hello.service')).targetState).toBe('launched');
  });

  test('restart of an inactive unit is refused', async () => {
    const e = await started();
    e.write('idle.service', HELLO_V2);
    await e.cli(['submit', 'idle']);
    expect(await e.cli(['restart', 'idle'])).toEqual(
      failed('Unable to restart unit idle.service in state inactive\n'),
    );
    expect(await e.cli(['restart', 'missing'])).toEqual(failed('Units not found in registry\n'));
  });
});

describe('flotilla cat / status / journal', () => {
  test('cat prints the unit file without adding a newline; missing unit exits 1', async () => {
    const e = await setup();
    e.write('hello.service', '# comment\n' + HELLO);
    await e.cli(['submit', 'hello']);
    expect(await e.cli(['cat', 'hello'])).toEqual(
      ok(
        '[Unit]\nDescription=Hello World\n\n[Service]\nExecStart=/bin/sh -c "while true; do echo hello; sleep 1; done"\n',
      ),
    );
    expect(await e.cli(['cat', 'nope'])).toEqual(failed('Unit nope.service not found\n'));
    expect(await e.cli(['cat'])).toEqual(failed('One unit file must be provided\n'));
    expect(await e.cli(['cat', 'a', 'b'])).toEqual(failed('One unit file must be provided\n'));
    const json = JSON.parse((await e.cli(['cat', '--json', 'hello'])).stdout) as { name: string };
    expect(json.name).toBe('hello.service');
  });

  test('status asks the agent; global units on every machine', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    e.write('everywhere.service', GLOBAL);
    await e.cli(['start', 'hello', 'everywhere']);
    await e.cluster.settle();
    // What the simulated systemd answers, without its clock and PIDs.
    const status = (unit: string, desc: string): string =>
      `● ${unit} - ${desc}\n     Loaded: loaded (simulated/${unit}; static)\n     Active: active (running)\n   Main PID: N (simulated)\n`;
    const plain = (r: CliResult): CliResult => ({
      ...r,
      stdout: r.stdout.replace(/ since [^\n]*/g, '').replace(/Main PID: \d+/g, 'Main PID: N'),
    });
    e.api.resetCounts();
    expect(plain(await e.cli(['status', 'hello']))).toEqual(
      ok(status('hello.service', 'Hello World')),
    );
    expect(plain(await e.cli(['status', 'hello', 'everywhere']))).toEqual(
      ok(
        status('hello.service', 'Hello World') +
          '\n' +
          `Machine 32d3a898.../10.0.0.1:\n${status('everywhere.service', 'Everywhere')}\n` +
          `Machine 7b2c6f1e.../10.0.0.2:\n${status('everywhere.service', 'Everywhere')}\n` +
          `Machine c9f0e1d2.../10.0.0.3:\n${status('everywhere.service', 'Everywhere')}`,
      ),
    );
    expect(e.api.count('unitStatus')).toBe(5);
    expect(await e.cli(['status', 'nope'])).toEqual(failed('Unit nope.service does not exist.\n'));
    e.write('idle.service', HELLO_V2);
    await e.cli(['submit', 'idle']);
    expect(await e.cli(['status', 'idle'])).toEqual(
      failed('Unit idle.service does not appear to be loaded.\n'),
    );
  });

  test('journal: --lines/-n; checks like fleetctl', async () => {
    const e = await setup();
    e.write('hello.service', HELLO);
    e.write('everywhere.service', GLOBAL);
    await e.cli(['start', 'hello', 'everywhere']);
    for (let i = 1; i <= 20; i++) e.cluster.appendJournal('hello.service', `line ${i}`);
    expect(await e.cli(['journal', '-n', '2', 'hello'])).toEqual(ok('line 19\nline 20\n'));
    expect((await e.cli(['journal', 'hello'])).stdout.split('\n')).toHaveLength(11);
    expect((await e.cli(['journal', '--lines=3', 'hello'])).stdout.split('\n')).toHaveLength(4);
    expect(await e.cli(['journal', 'everywhere'])).toEqual(
      failed('Unable to retrieve journal of global unit everywhere.service.\n'),
    );
    expect(await e.cli(['journal', 'nope'])).toEqual(failed('Unit nope.service does not exist.\n'));
    expect(await e.cli(['journal'])).toEqual(failed('One unit file must be provided.\n'));
  });

  test('journal --follow streams new lines until interrupted (the binary, SIGINT)', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service', target: 'launched' }]);
    e.cluster.appendJournal('a.service', 'line 20');
    const p = spawnCli(['journal', '-f', '-n', '1', 'a'], { endpoint: e.unix, cwd: e.dir });
    await p.waitForStdout(/line 20/);
    e.cluster.appendJournal('a.service', 'fresh output');
    await p.waitForStdout(/fresh output/);
    const r = await p.stop('SIGINT');
    expect(r).toEqual(ok('line 20\nfresh output\n'));
    await eventually(() => e.api.aborted('unitJournal') === 1, 'stream cancelled');
  });
});

describe('flotilla cluster / events', () => {
  test('cluster: leader, address, epoch, log index', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service' }]);
    const s = await e.cluster.engineApi.getClusterStatus({});
    expect(await e.cli(['cluster'])).toEqual(
      ok(
        `Leader:\t\t32d3a898...\nAddress:\t10.0.0.1:7070\nEpoch:\t\t${s.epoch}\nLog index:\t${s.logIndex}\n` +
          'Snapshot index:\t0\nUnits:\t\t1\nMachines:\t3\n',
      ),
    );
    const json = JSON.parse((await e.cli(['cluster', '--json'])).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      leaderMachineId: M1,
      leaderAddress: '10.0.0.1:7070',
      epoch: s.epoch,
      logIndex: s.logIndex,
    });
  });

  test('cluster: a hold of the mass-loss guard is shown; --resume resumes it', async () => {
    // Two of three machines fall silent at once: more than the guard's third.
    const e = await setup({ agentTtlMs: 1500 });
    await e.cluster.stopAgent(M2);
    await e.cluster.stopAgent(M3);
    let held = '';
    await e.cluster.until(() => {
      void e.cluster.engineApi.getClusterStatus({}).then((s) => (held = s.reschedulingHeld ?? ''));
      return held !== '';
    }, 'rescheduling held');
    // The two silent machines (a loaded machine may count the third as late too).
    expect(held.split(',')).toEqual(expect.arrayContaining([M2, M3]));
    const shown = await e.cli(['cluster']);
    expect(shown.stdout).toContain(
      `Rescheduling:\tHELD (mass-loss guard; silent: ${held}; resume with --resume)\n`,
    );
    const r = await e.cli(['cluster', '--resume']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('Rescheduling resumed\n')).toBe(true);
    expect(r.stdout).not.toContain('HELD');
    expect((await e.cli(['cluster', '--resume'])).stdout).toContain(
      'Rescheduling was not held; nothing to resume\n',
    );
  });

  test('events: from an index, up to the current one; --json; --follow', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service' }, { name: 'b.service', target: 'loaded' }]);
    const { logIndex } = await e.cluster.engineApi.getClusterStatus({});
    const all = await e.cli(['events']);
    expect(all.code).toBe(0);
    const lines = all.stdout.split('\n').filter(Boolean);
    // Every event once, in order, from the first to the current one.
    expect(lines.map((l) => Number(l.split(' ')[0]))).toEqual(
      Array.from({ length: logIndex }, (_, i) => i + 1),
    );
    for (const l of lines) expect(l).toMatch(/^\d+ \d{4}-\d\d-\d\dT[\d:.]+Z [A-Z]\w+/);
    const about = (unit: string) =>
      lines
        .map((l) => l.split(' ').slice(2).join(' '))
        .filter((l) => l.includes(`unit=${unit}`) && !l.startsWith('UnitStateReported'));
    const hash = (await e.unit('a.service')).hash.slice(0, 7);
    expect(about('a.service')).toEqual([
      `UnitSubmitted unit=a.service target=inactive hash=${hash}`,
    ]);
    expect(about('b.service')).toEqual([
      `UnitSubmitted unit=b.service target=loaded hash=${hash}`,
      `UnitScheduled unit=b.service machine=${M1} reason="least loaded (0 units)"`,
      `UnitObserved unit=b.service machine=${M1} state=loaded/inactive/dead`,
    ]);
    const scheduled = lines.find((l) => l.includes('UnitScheduled unit=b.service'))!;
    const at = Number(scheduled.split(' ')[0]);
    expect((await e.cli(['events', `--from=${at}`])).stdout.split('\n')[0]).toMatch(
      new RegExp(`^${at} \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z UnitScheduled unit=b\\.service machine=`),
    );
    const json = (await e.cli(['events', '--json', '--from', String(logIndex)])).stdout;
    expect(JSON.parse(json)).toMatchObject({ index: logIndex });
    expect(await e.cli(['events', `--from=${logIndex + 1000}`])).toEqual(ok(''));

    const p = startCliInProcess(['events', '--follow', `--from=${logIndex}`], {
      endpoint: e.tcp,
    });
    await p.waitForStdout(new RegExp(`^${logIndex} `));
    await e.cluster.engineApi.destroyUnits({ names: ['a.service'] });
    await p.waitForStdout(/UnitDestroyed unit=a\.service/);
    expect((await p.stop()).code).toBe(0);
  });

  test('events --type: only those types, listed and followed; an unknown type is refused', async () => {
    const e = await setup();
    await e.cluster.seed([{ name: 'a.service' }, { name: 'b.service', target: 'loaded' }]);
    const hash = (await e.unit('a.service')).hash.slice(0, 7);
    const listed = await e.cli(['events', '--type=UnitScheduled,UnitSubmitted']);
    expect(listed.code).toBe(0);
    expect(
      listed.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ').slice(2).join(' ')),
    ).toEqual([
      `UnitSubmitted unit=a.service target=inactive hash=${hash}`,
      `UnitSubmitted unit=b.service target=loaded hash=${hash}`,
      `UnitScheduled unit=b.service machine=${M1} reason="least loaded (0 units)"`,
    ]);

    e.api.resetCounts();
    const p = startCliInProcess(['events', '--follow', '--type=UnitDestroyed'], {
      endpoint: e.tcp,
    });
    await eventually(() => e.api.count('watch') >= 1, 'follow watching');
    await e.cluster.engineApi.setTargetStates({ names: ['a.service'], targetState: 'loaded' });
    await e.cluster.engineApi.destroyUnits({ names: ['a.service'] });
    await p.waitForStdout(/UnitDestroyed unit=a\.service/);
    const r = await p.stop();
    expect(r.stdout).not.toMatch(/UnitTargetSet|UnitScheduled/);

    // Refused like every invalid flag value (exit 1, as fleetctl's flag errors).
    const bad = await e.cli(['events', '--type=UnitStarted']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown event type "UnitStarted"');
    expect(bad.stderr).toContain('UnitStateReported');
  });
});
