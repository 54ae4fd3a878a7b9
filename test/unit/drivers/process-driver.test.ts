/**
 * The process driver with real child processes (/bin/sleep, /bin/sh): start, stop, failure
 * results, adoption by a new driver instance (same PID, no restart), status and journal.
 * Every process a test starts is killed in afterEach.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DriverOp, DriverUnitState } from '../../../src/drivers/driver';
import { ProcessDriver, pidAlive } from '../../../src/drivers/process';
import { killUnitProcesses } from '../../helpers/unit-processes';
import { waitFor } from '../agent/fake-leader';

const dirs: string[] = [];
const drivers: ProcessDriver[] = [];

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-proc-'));
  dirs.push(d);
  return d;
}

async function driver(
  dir: string,
  bootId?: string,
): Promise<{ d: ProcessDriver; states: DriverUnitState[] }> {
  const d = new ProcessDriver({ unitsDirectory: dir, pollMs: 20, stopTimeoutMs: 2000, bootId });
  const states: DriverUnitState[] = [];
  d.onState((s) => states.push(s));
  await d.open();
  drivers.push(d);
  return { d, states };
}

afterEach(async () => {
  for (const d of drivers.splice(0)) await d.close();
  // No leftover processes: kill whatever a pidfile still names.
  for (const dir of dirs.splice(0)) {
    killUnitProcesses(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const load = (unit: string, body: string, hash = 'h1'): DriverOp => ({
  kind: 'load',
  unit,
  hash,
  contents: `[Unit]\nDescription=Test ${unit}\n\n[Service]\n${body}\n`,
});

async function applyOk(d: ProcessDriver, ops: DriverOp[]) {
  const r = await d.apply(ops);
  expect(r.map((x) => [x.op.kind, x.ok, x.error])).toEqual(
    ops.map((o) => [o.kind, true, undefined]),
  );
  return r;
}

/** A copy of a units directory (to open the same files twice, as two boots). */
function tmpCopy(dir: string): string {
  const copy = tmpDir();
  fs.cpSync(dir, copy, { recursive: true });
  return copy;
}

const stateOf = async (d: ProcessDriver, unit: string) =>
  (await d.list()).find((s) => s.unit === unit);

/** Loads `unit` with the [Service] lines `body` and starts it; resolves with its main PID. */
async function startRunning(d: ProcessDriver, unit: string, body: string): Promise<number> {
  await applyOk(d, [load(unit, body), { kind: 'start', unit }]);
  const pid = (await stateOf(d, unit))?.mainPid;
  if (pid === undefined) throw new Error(`${unit} has no main PID`);
  return pid;
}

describe('process driver', () => {
  it('loads, starts and stops a unit; states are reported as they change', async () => {
    const dir = tmpDir();
    const { d, states } = await driver(dir);
    await applyOk(d, [
      { kind: 'start', unit: 'a.service' },
      load('a.service', 'ExecStart=/bin/sleep 1000'),
    ]);
    const s = await stateOf(d, 'a.service');
    expect(s).toMatchObject({ load: 'loaded', active: 'active', sub: 'running', hash: 'h1' });
    expect(pidAlive(s!.mainPid!)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'a.service.pid'), 'utf8')).toMatch(
      new RegExp(`^${s!.mainPid} \\d+`),
    );
    await applyOk(d, [{ kind: 'stop', unit: 'a.service' }]);
    expect(await stateOf(d, 'a.service')).toMatchObject({
      active: 'inactive',
      sub: 'dead',
      result: 'success',
    });
    expect(pidAlive(s!.mainPid!)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'a.service.pid'))).toBe(false);
    expect(states.map((x) => x.active)).toEqual(['inactive', 'active', 'deactivating', 'inactive']);
  });

  it('a process exiting non-zero is failed with result exit-code; exit 0 is inactive (dead)', async () => {
    const { d, states } = await driver(tmpDir());
    await applyOk(d, [
      load('bad.service', 'ExecStart=/bin/sh -c "exit 3"'),
      load('ok.service', "ExecStart=/bin/sh -c 'exit 0'"),
      { kind: 'start', unit: 'bad.service' },
      { kind: 'start', unit: 'ok.service' },
    ]);
    await waitFor(
      () => states.some((s) => s.unit === 'bad.service' && s.active === 'failed'),
      'bad failed',
    );
    await waitFor(
      () =>
        states.some(
          (s) => s.unit === 'ok.service' && s.active === 'inactive' && s.result === 'success',
        ),
      'ok dead',
    );
    expect(await stateOf(d, 'bad.service')).toMatchObject({
      active: 'failed',
      sub: 'failed',
      result: 'exit-code',
    });
    expect(await stateOf(d, 'bad.service')).not.toHaveProperty('mainPid');
  });

  it('an executable that does not exist fails the unit (like 203/EXEC), not the op', async () => {
    const { d } = await driver(tmpDir());
    await applyOk(d, [
      load('x.service', 'ExecStart=/nonexistent/flotilla-x'),
      { kind: 'start', unit: 'x.service' },
    ]);
    expect(await stateOf(d, 'x.service')).toMatchObject({ active: 'failed', result: 'exit-code' });
  });

  it('a unit without ExecStart= fails the start op; starting an unknown unit fails', async () => {
    const { d } = await driver(tmpDir());
    const r = await d.apply([
      load('n.service', 'Type=simple'),
      { kind: 'start', unit: 'n.service' },
      { kind: 'start', unit: 'zz.service' },
    ]);
    expect(r.map((x) => x.ok)).toEqual([true, false, false]);
    expect(r[1].error).toMatch(/no ExecStart/);
    expect(r[2].error).toMatch(/zz\.service/);
  });

  it('every unit type loads; targets and slices start without a process; other types fail once, saying why', async () => {
    const dir = tmpDir();
    const { d } = await driver(dir);
    const r = await d.apply([
      load('t.target', '[Unit]\nDescription=group'),
      load('s.slice', '[Unit]\nDescription=slice'),
      load('dev.device', '[Unit]\nDescription=disk'),
      load('a.automount', '[Automount]\nWhere=/x'),
      { kind: 'start', unit: 't.target' },
      { kind: 'start', unit: 's.slice' },
      { kind: 'start', unit: 'dev.device' },
    ]);
    expect(r.map((x) => x.ok)).toEqual([true, true, true, true, true, true, true]);
    expect(await stateOf(d, 't.target')).toMatchObject({ active: 'active', sub: 'active' });
    expect(await stateOf(d, 's.slice')).toMatchObject({ active: 'active', sub: 'active' });
    expect(await stateOf(d, 'dev.device')).toMatchObject({ active: 'failed', result: 'resources' });
    expect(fs.readFileSync(path.join(dir, 'dev.device.log'), 'utf8')).toContain(
      'the process driver runs services, targets and slices, not device units',
    );
    await applyOk(d, [{ kind: 'stop', unit: 't.target' }]);
    expect(await stateOf(d, 't.target')).toMatchObject({ active: 'inactive', sub: 'dead' });
    expect(await d.status('s.slice')).toMatch(
      /Active: active \(active\) since (Sun|Mon|Tue|Wed|Thu|Fri|Sat) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; \d+s ago/,
    );
  });

  it('a new driver instance adopts a running unit: same pid, no restart; it can then stop it', async () => {
    const dir = tmpDir();
    const first = await driver(dir);
    const pid = await startRunning(first.d, 'a.service', 'ExecStart=/bin/sleep 1000');
    await first.d.close();
    expect(pidAlive(pid)).toBe(true);

    const second = await driver(dir);
    expect(await second.d.list()).toEqual([
      {
        unit: 'a.service',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        hash: 'h1',
        mainPid: pid,
      },
    ]);
    await applyOk(second.d, [{ kind: 'start', unit: 'a.service' }]); // already running: no-op
    expect((await stateOf(second.d, 'a.service'))!.mainPid).toBe(pid);
    await applyOk(second.d, [{ kind: 'stop', unit: 'a.service' }]);
    expect(pidAlive(pid)).toBe(false);
    expect(await stateOf(second.d, 'a.service')).toMatchObject({ active: 'inactive', sub: 'dead' });
  });

  it('a zombie (exited, not reaped yet) is not alive', async () => {
    // sh starts `sleep 0` in the background and execs `sleep 5`, which never reaps it.
    const child = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const zpid = await new Promise<number>((resolve) =>
        child.stdout!.once('data', (b: Buffer) => resolve(parseInt(b.toString(), 10))),
      );
      await waitFor(
        () => fs.readFileSync(`/proc/${zpid}/stat`, 'utf8').includes(') Z '),
        'a zombie',
      );
      expect(pidAlive(zpid)).toBe(false);
      expect(pidAlive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it.each([
    ['killed', () => 'ExecStart=/bin/sleep 1000', 'SIGKILL'],
    [
      'ending with status 3',
      (dir: string) =>
        `ExecStart=/bin/sh -c 'trap "exit 3" USR1; : > ${dir}/ready; while :; do sleep 0.05; done'`,
      'SIGUSR1',
    ],
  ] as const)(
    'an adopted process %s is noticed by polling and reported with its real result',
    async (_, exec, sig) => {
      const dir = tmpDir();
      const first = await driver(dir);
      const pid = await startRunning(first.d, 'a.service', exec(dir));
      await first.d.close();
      const second = await driver(dir);
      expect((await stateOf(second.d, 'a.service'))!.mainPid).toBe(pid);
      // SIGUSR1: the shell's trap exits 3 (once it is set).
      if (sig === 'SIGUSR1')
        await waitFor(() => fs.existsSync(path.join(dir, 'ready')), 'trap set');
      process.kill(pid, sig);
      await waitFor(() => second.states.some((s) => s.active === 'failed'), 'death noticed');
      expect(await stateOf(second.d, 'a.service')).toEqual({
        unit: 'a.service',
        load: 'loaded',
        active: 'failed',
        sub: 'failed',
        hash: 'h1',
        ...(sig === 'SIGKILL' ? { result: 'signal' } : { result: 'exit-code', exitStatus: 3 }),
      });
      expect((await second.d.status('a.service')).split('\n')[2]).toContain(
        sig === 'SIGKILL' ? 'failed (Result: signal)' : 'failed (Result: exit-code)',
      );
      expect(fs.existsSync(path.join(dir, 'a.service.pid'))).toBe(false);
    },
  );

  it('a process that died while no driver ran is reported with the status its keeper wrote', async () => {
    const dir = tmpDir();
    const first = await driver(dir);
    const pid = await startRunning(first.d, 'a.service', 'ExecStart=/bin/sleep 1000');
    await first.d.close();
    process.kill(pid, 'SIGTERM');
    await waitFor(() => fs.existsSync(path.join(dir, 'a.service.exit')), 'status written');
    const second = await driver(dir);
    // SIGTERM ends a service cleanly for systemd too (status 143 from the shell: a signal).
    expect(await stateOf(second.d, 'a.service')).toMatchObject({
      active: 'failed',
      result: 'signal',
    });
  });

  it('a process whose keeper was killed too dies with result unknown', async () => {
    const dir = tmpDir();
    const first = await driver(dir);
    const pid = await startRunning(first.d, 'a.service', 'ExecStart=/bin/sleep 1000');
    const keeper = Number(
      fs.readFileSync(path.join(dir, 'a.service.pid'), 'utf8').trim().split(' ')[3],
    );
    expect(keeper).toBeGreaterThan(0);
    await first.d.close();
    const second = await driver(dir);
    process.kill(keeper, 'SIGKILL');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => second.states.some((s) => s.active === 'failed'), 'death noticed');
    expect(await stateOf(second.d, 'a.service')).toMatchObject({
      active: 'failed',
      result: 'unknown',
    });
  });

  it.each([
    ['/bin/true', { active: 'inactive', sub: 'dead' }],
    ['/bin/false', { active: 'failed', sub: 'failed', result: 'exit-code', exitStatus: 1 }],
  ])('a process that ends at once (%s) is seen ending, not left running', async (exe, want) => {
    const { d, states } = await driver(tmpDir());
    await applyOk(d, [
      load('once.service', `ExecStart=${exe}`),
      { kind: 'start', unit: 'once.service' },
    ]);
    await waitFor(() => {
      const started = states.findIndex((x) => x.active === 'active');
      return started >= 0 && states.slice(started + 1).some((x) => x.active !== 'active');
    }, 'ended');
    const s = await stateOf(d, 'once.service');
    expect(s).toMatchObject(want);
    expect(s?.mainPid).toBeUndefined();
  });

  it('a failed unit stays failed across a driver restart; a stale pidfile is not adopted', async () => {
    const dir = tmpDir();
    const first = await driver(dir);
    await applyOk(first.d, [
      load('bad.service', 'ExecStart=/bin/false'),
      { kind: 'start', unit: 'bad.service' },
    ]);
    await waitFor(() => first.states.some((s) => s.active === 'failed'), 'failed');
    await first.d.close();
    fs.writeFileSync(path.join(dir, 'gone.service'), '[Service]\nExecStart=/bin/true\n');
    fs.writeFileSync(path.join(dir, 'gone.service.pid'), '999999999 1\n');
    const second = await driver(dir);
    expect(await second.d.list()).toEqual([
      {
        unit: 'bad.service',
        load: 'loaded',
        active: 'failed',
        sub: 'failed',
        hash: 'h1',
        result: 'exit-code',
        // the exit status survives the driver's restart (its state file)
        exitStatus: 1,
      },
      {
        unit: 'gone.service',
        load: 'loaded',
        active: 'failed',
        sub: 'failed',
        hash: '',
        result: 'unknown',
      },
    ]);
  });

  it('after a reboot, units that ran or failed in the last boot come back inactive (dead), not failed', async () => {
    const dir = tmpDir();
    const first = await driver(dir, 'boot-a');
    await applyOk(first.d, [
      load('run.service', 'ExecStart=/bin/sleep 1000'),
      load('bad.service', 'ExecStart=/bin/false'),
      { kind: 'start', unit: 'run.service' },
      { kind: 'start', unit: 'bad.service' },
    ]);
    await waitFor(() => first.states.some((s) => s.active === 'failed'), 'failed');
    const pid = (await stateOf(first.d, 'run.service'))!.mainPid!;
    await first.d.close();
    // The reboot: every process of the last boot is gone, the directory is not.
    process.kill(-pid, 'SIGKILL');
    await waitFor(() => !pidAlive(pid), 'the process gone');
    await waitFor(() => fs.existsSync(path.join(dir, 'run.service.exit')), 'its keeper wrote');

    // In the same boot it died: its keeper says how.
    const same = await driver(tmpCopy(dir), 'boot-a');
    expect((await same.d.list()).map((s) => [s.unit, s.active, s.result])).toEqual([
      ['bad.service', 'failed', 'exit-code'],
      ['run.service', 'failed', 'signal'],
    ]);

    const rebooted = await driver(dir, 'boot-b');
    expect((await rebooted.d.list()).map((s) => [s.unit, s.active, s.sub, s.result])).toEqual([
      ['bad.service', 'inactive', 'dead', undefined],
      ['run.service', 'inactive', 'dead', undefined],
    ]);
    expect(fs.existsSync(path.join(dir, 'run.service.pid'))).toBe(false);
    // What should run is started again, as after any boot.
    await applyOk(rebooted.d, [{ kind: 'start', unit: 'run.service' }]);
    expect(await stateOf(rebooted.d, 'run.service')).toMatchObject({ active: 'active' });
  });

  it('passes Environment= and WorkingDirectory=, logs output, strips prefixes', async () => {
    const dir = tmpDir();
    const wd = tmpDir();
    const { d, states } = await driver(dir);
    await applyOk(d, [
      load(
        'env.service',
        `Environment=FOO=bar "GREETING=hello world"\nWorkingDirectory=${wd}\nExecStart=-/bin/sh -c 'echo "$GREETING ${'$'}{FOO}"; pwd; exit 7'`,
      ),
      { kind: 'start', unit: 'env.service' },
    ]);
    await waitFor(
      () => states.some((s) => s.active === 'inactive' && s.result === 'success'),
      'exited',
    );
    const log = fs.readFileSync(path.join(dir, 'env.service.log'), 'utf8');
    expect(log).toContain('hello world bar');
    expect(log).toContain(wd);
  });

  it('status() looks like systemctl status; journal() tails the log', async () => {
    const dir = tmpDir();
    const { d } = await driver(dir);
    await applyOk(d, [
      load(
        'talk.service',
        `ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo line$i; done; exec sleep 1000'`,
      ),
      { kind: 'start', unit: 'talk.service' },
    ]);
    await waitFor(
      () => fs.readFileSync(path.join(dir, 'talk.service.log'), 'utf8').includes('line5'),
      'output',
    );
    const pid = (await stateOf(d, 'talk.service'))!.mainPid!;
    const status = await d.status('talk.service');
    expect(status).toMatch(/^● talk\.service - Test talk\.service\n/);
    expect(status).toMatch(/Loaded: loaded \(.*talk\.service; static\)/);
    expect(status).toMatch(/Active: active \(running\) since .*; \d+s ago/);
    expect(status).toContain(`Main PID: ${pid}`);
    const lines: string[] = [];
    for await (const l of d.journal('talk.service', 2, false)) lines.push(l);
    expect(lines).toEqual(['line4', 'line5']);
    expect(await d.status('nope.service')).toBe('Unit nope.service could not be found.');
  });

  it('journal with follow yields new lines until aborted', async () => {
    const dir = tmpDir();
    const { d } = await driver(dir);
    await applyOk(d, [load('f.service', 'ExecStart=/bin/sleep 1000')]);
    fs.writeFileSync(path.join(dir, 'f.service.log'), 'old\n');
    const ac = new AbortController();
    const got: string[] = [];
    const reading = (async () => {
      for await (const l of d.journal('f.service', 1, true, ac.signal)) {
        got.push(l);
        if (got.length === 3) ac.abort();
      }
    })();
    await waitFor(() => got.length === 1, 'first line');
    fs.appendFileSync(path.join(dir, 'f.service.log'), 'new1\nnew2\n');
    await reading;
    expect(got).toEqual(['old', 'new1', 'new2']);
  });

  it('unload stops the unit and removes its files', async () => {
    const dir = tmpDir();
    const { d, states } = await driver(dir);
    const pid = await startRunning(d, 'a.service', 'ExecStart=/bin/sleep 1000');
    await applyOk(d, [{ kind: 'unload', unit: 'a.service' }]);
    expect(pidAlive(pid)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(await d.list()).toEqual([]);
    expect(states.at(-1)).toEqual({
      unit: 'a.service',
      load: 'not-found',
      active: 'inactive',
      sub: 'dead',
      hash: '',
    });
  });

  it('a process ignoring SIGTERM is killed after the stop timeout', async () => {
    const dir = tmpDir();
    const d = new ProcessDriver({ unitsDirectory: dir, stopTimeoutMs: 200 });
    drivers.push(d);
    await d.open();
    const pid = await startRunning(
      d,
      'stubborn.service',
      `ExecStart=/bin/sh -c 'trap "" TERM; echo trapped; while true; do sleep 0.05; done'`,
    );
    const log = path.join(dir, 'stubborn.service.log');
    // A line of its own: the driver's "starting …" line also contains the command text.
    await waitFor(
      () => fs.readFileSync(log, 'utf8').split('\n').includes('trapped'),
      'trap installed',
    );
    await applyOk(d, [{ kind: 'stop', unit: 'stubborn.service' }]);
    expect(pidAlive(pid)).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'stubborn.service.log'), 'utf8')).toContain('SIGKILL');
  });
});
