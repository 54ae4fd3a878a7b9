import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DriverOp, DriverUnitState } from '../../src/drivers/driver';
import { SystemdDriver, orderOps, sha1, unitObjectPath } from '../../src/drivers/systemd';
import { missingExecutable } from '../../src/drivers/systemd/unitfile';
import { ErrorCode, FlotillaError } from '../../src/errors';
import { journalLines } from '../../src/drivers/systemd/journal';
import { startSystemd, type SystemdManager } from '../harness';
import { isAlive } from '../harness/registry';

// Every unit here is trivial and really runs under a `systemd --user` of its own (test/harness).

function service(description: string, execStart = '/bin/sleep 1000', extra = ''): string {
  return `[Unit]\nDescription=${description}\n\n[Service]\nExecStart=${execStart}\n${extra}`;
}

function load(unit: string, contents: string): DriverOp {
  return { kind: 'load', unit, contents, hash: sha1(contents) };
}

/** What systemd itself says about a unit (systemctl --user show against the test manager). */
function show(manager: SystemdManager, unit: string): Record<string, string> {
  const props =
    'LoadState,ActiveState,SubState,MainPID,Result,UnitFileState,FragmentPath,NeedDaemonReload,Description';
  const out = execFileSync('systemctl', ['--user', 'show', unit, `--property=${props}`], {
    env: manager.env,
    encoding: 'utf8',
  });
  const entries = out
    .trim()
    .split('\n')
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Records every state the driver emits and lets a test wait for one. */
class StateLog {
  readonly states: DriverUnitState[] = [];
  private waiters: {
    pred: (s: DriverUnitState) => boolean;
    resolve: (s: DriverUnitState) => void;
  }[] = [];

  constructor(driver: SystemdDriver) {
    driver.onState((s) => {
      this.states.push(s);
      this.waiters = this.waiters.filter((w) => (w.pred(s) ? (w.resolve(s), false) : true));
    });
  }

  /** The first state (already seen or still to come) matching `pred`; rejects after 15 s. */
  waitFor(pred: (s: DriverUnitState) => boolean): Promise<DriverUnitState> {
    const seen = this.states.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('state not observed')), 15000);
      this.waiters.push({
        pred,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      });
    });
  }
}

async function openDriver(manager: SystemdManager): Promise<SystemdDriver> {
  const driver = new SystemdDriver({
    busAddress: manager.busAddress,
    unitsDirectory: path.join(manager.dir, 'units'),
  });
  await driver.open();
  return driver;
}

describe('SystemdDriver against a real systemd --user', () => {
  it('loads, starts, stops and unloads a real unit, as systemd itself reports it', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      const contents = service('Flotilla test hello');
      const results = await driver.apply([load('hello.service', contents)]);
      expect(results).toEqual([{ op: expect.objectContaining({ kind: 'load' }), ok: true }]);
      const file = path.join(driver.unitsDirectory, 'hello.service');
      expect(fs.readFileSync(file, 'utf8')).toBe(contents);
      // Linked into the manager's runtime unit directory, pointing at the driver's file.
      const link = path.join(manager.env.XDG_RUNTIME_DIR!, 'systemd/user/hello.service');
      expect(fs.readlinkSync(link)).toBe(file);
      expect(show(manager, 'hello.service')).toMatchObject({
        LoadState: 'loaded',
        ActiveState: 'inactive',
        FragmentPath: link,
        UnitFileState: 'linked-runtime',
      });

      expect(await driver.apply([{ kind: 'start', unit: 'hello.service' }])).toEqual([
        { op: { kind: 'start', unit: 'hello.service' }, ok: true },
      ]);
      const running = show(manager, 'hello.service');
      expect(running).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      const pid = Number(running.MainPID);
      expect(pid).toBeGreaterThan(0);
      // Observed through signals, with the hash of the file and the main PID.
      expect(await log.waitFor((s) => s.unit === 'hello.service' && s.sub === 'running')).toEqual({
        unit: 'hello.service',
        load: 'loaded',
        active: 'active',
        sub: 'running',
        hash: sha1(contents),
        mainPid: pid,
      });

      expect((await driver.apply([{ kind: 'stop', unit: 'hello.service' }]))[0].ok).toBe(true);
      expect(show(manager, 'hello.service')).toMatchObject({ ActiveState: 'inactive' });
      expect(isAlive(pid)).toBe(false);
      await log.waitFor((s) => s.unit === 'hello.service' && s.active === 'inactive');

      expect((await driver.apply([{ kind: 'unload', unit: 'hello.service' }]))[0].ok).toBe(true);
      expect(fs.existsSync(file)).toBe(false);
      expect(show(manager, 'hello.service').LoadState).toBe('not-found');
      expect(await driver.list()).toEqual([]);
    } finally {
      await driver.close();
    }
  });

  it('unloads a running unit: stops it, removes it and forgets it', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      await driver.apply([
        load('busy.service', service('busy')),
        { kind: 'start', unit: 'busy.service' },
      ]);
      const pid = Number(show(manager, 'busy.service').MainPID);
      expect(pid).toBeGreaterThan(0);
      expect((await driver.apply([{ kind: 'unload', unit: 'busy.service' }]))[0]).toEqual({
        op: { kind: 'unload', unit: 'busy.service' },
        ok: true,
      });
      expect(isAlive(pid)).toBe(false);
      expect(show(manager, 'busy.service')).toMatchObject({
        LoadState: 'not-found',
        ActiveState: 'inactive',
      });
    } finally {
      await driver.close();
    }
  });

  it("reports a unit whose process exits non-zero as failed with result 'exit-code'", async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      const contents = service('exits 3', "/bin/sh -c 'exit 3'");
      await driver.apply([
        load('exit3.service', contents),
        { kind: 'start', unit: 'exit3.service' },
      ]);
      const failed = await log.waitFor((s) => s.unit === 'exit3.service' && s.active === 'failed');
      expect(failed).toEqual({
        unit: 'exit3.service',
        load: 'loaded',
        active: 'failed',
        sub: 'failed',
        hash: sha1(contents),
        result: 'exit-code',
        // systemd's ExecMainStatus: the main process's own exit status.
        exitStatus: 3,
      });
      expect(show(manager, 'exit3.service')).toMatchObject({
        ActiveState: 'failed',
        Result: 'exit-code',
      });
      // A failed unit unloads cleanly (reset-failed): systemd forgets it.
      expect((await driver.apply([{ kind: 'unload', unit: 'exit3.service' }]))[0].ok).toBe(true);
      expect(show(manager, 'exit3.service')).toMatchObject({
        LoadState: 'not-found',
        ActiveState: 'inactive',
      });
    } finally {
      await driver.close();
    }
  });

  it('enables (runtime) a unit with an [Install] section and disables it on unload', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      const contents = service(
        'wanted',
        '/bin/sleep 1000',
        '\n[Install]\nWantedBy=default.target\n',
      );
      expect((await driver.apply([load('wanted.service', contents)]))[0].ok).toBe(true);
      expect(show(manager, 'wanted.service').UnitFileState).toBe('enabled-runtime');
      const wants = path.join(
        manager.env.XDG_RUNTIME_DIR!,
        'systemd/user/default.target.wants/wanted.service',
      );
      expect(fs.readlinkSync(wants)).toBe(path.join(driver.unitsDirectory, 'wanted.service'));

      expect((await driver.apply([{ kind: 'unload', unit: 'wanted.service' }]))[0].ok).toBe(true);
      expect(fs.existsSync(wants)).toBe(false);
      expect(show(manager, 'wanted.service').LoadState).toBe('not-found');
    } finally {
      await driver.close();
    }
  });

  it('orders a batch: a start listed before its load still works, results keep the given order', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      const ops: DriverOp[] = [
        { kind: 'start', unit: 'b.service' },
        { kind: 'start', unit: 'a.service' },
        load('b.service', service('b')),
        load('a.service', service('a')),
      ];
      const results = await driver.apply(ops);
      expect(results.map((r) => [r.op, r.ok])).toEqual(ops.map((op) => [op, true]));
      for (const unit of ['a.service', 'b.service']) {
        expect(show(manager, unit)).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      }
    } finally {
      await driver.close();
    }
  });

  it('reloads only for units systemd already holds: none for new or identical files, one per batch of changes', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      const units = ['r1', 'r2', 'r3', 'r4', 'r5'].map((n) => `${n}.service`);
      const batch = units.flatMap((u): DriverOp[] => [
        load(u, service(u)),
        { kind: 'start', unit: u },
      ]);
      const reloads = () => driver.stats.callsByMethod.Reload ?? 0;
      const before = reloads();
      // New unit files: systemd loads them on first use, no daemon reload needed.
      expect((await driver.apply(batch)).every((r) => r.ok)).toBe(true);
      expect(reloads() - before).toBe(0);
      expect(driver.stats.callsByMethod.LinkUnitFiles).toBe(1);
      expect(driver.stats.callsByMethod.EnableUnitFiles).toBeUndefined();
      expect(driver.stats.callsByMethod.StartUnit).toBe(5);
      for (const u of units) expect(show(manager, u).ActiveState).toBe('active');

      // The same batch again: identical files, already linked, already running: no reload.
      expect((await driver.apply(batch)).every((r) => r.ok)).toBe(true);
      expect(reloads() - before).toBe(0);

      // Changed files of loaded units: exactly one reload for the whole batch.
      const changed = units.map((u): DriverOp => load(u, service(`${u} v2`)));
      expect((await driver.apply(changed)).every((r) => r.ok)).toBe(true);
      expect(reloads() - before).toBe(1);
      expect(show(manager, units[0]).NeedDaemonReload).toBe('no');

      // Unloading several units is one reload too.
      const unloads = units.map((u): DriverOp => ({ kind: 'unload', unit: u }));
      expect((await driver.apply(unloads)).every((r) => r.ok)).toBe(true);
      expect(reloads() - before).toBe(2);
      expect(driver.stats.callsByMethod.DisableUnitFiles).toBe(1);

      // Loading a unit again after its unload (systemd may still hold it): it runs the new file.
      const again = [
        load(units[0], service('again')),
        { kind: 'start', unit: units[0] } as DriverOp,
      ];
      expect((await driver.apply(again)).every((r) => r.ok)).toBe(true);
      expect(show(manager, units[0])).toMatchObject({
        ActiveState: 'active',
        Description: 'again',
        NeedDaemonReload: 'no',
      });
    } finally {
      await driver.close();
    }
  });

  it("a unit killed after adoption is reported with systemd's Result, as its status says", async () => {
    await using manager = await startSystemd();
    const contents = service('adopted then killed');
    const first = await openDriver(manager);
    expect(
      (
        await first.apply([
          load('killed.service', contents),
          { kind: 'start', unit: 'killed.service' },
        ])
      ).every((r) => r.ok),
    ).toBe(true);
    const pid = Number(show(manager, 'killed.service').MainPID);
    await first.close();

    const second = await openDriver(manager);
    const log = new StateLog(second);
    try {
      expect((await second.list())[0]).toMatchObject({ active: 'active', mainPid: pid });
      process.kill(pid, 'SIGKILL');
      const failed = await log.waitFor((s) => s.unit === 'killed.service' && s.active === 'failed');
      expect(failed).toMatchObject({ result: 'signal' });
      expect(show(manager, 'killed.service').Result).toBe('signal');
      expect(await second.status('killed.service')).toContain('failed (Result: signal)');
    } finally {
      await second.close();
    }
  });

  it('adopts running units after a restart: same MainPID, no reload, no restart', async () => {
    await using manager = await startSystemd();
    const contents = service('adopted');
    const batch: DriverOp[] = [
      load('adopt.service', contents),
      { kind: 'start', unit: 'adopt.service' },
    ];

    const first = await openDriver(manager);
    expect((await first.apply(batch)).every((r) => r.ok)).toBe(true);
    const pid = Number(show(manager, 'adopt.service').MainPID);
    expect(pid).toBeGreaterThan(0);
    await first.close();
    // Closing the driver leaves the unit running.
    expect(show(manager, 'adopt.service')).toMatchObject({
      SubState: 'running',
      MainPID: `${pid}`,
    });

    const second = await openDriver(manager);
    try {
      expect(await second.list()).toEqual([
        {
          unit: 'adopt.service',
          load: 'loaded',
          active: 'active',
          sub: 'running',
          hash: sha1(contents),
          mainPid: pid,
        },
      ]);
      const results = await second.apply(batch);
      expect(results.every((r) => r.ok)).toBe(true);
      expect(second.stats.callsByMethod.Reload ?? 0).toBe(0);
      expect(show(manager, 'adopt.service')).toMatchObject({
        ActiveState: 'active',
        MainPID: `${pid}`,
      });
      expect(isAlive(pid)).toBe(true);
    } finally {
      await second.close();
    }

    // A third instance that never listed anything still knows the unit may run: unload stops it.
    const third = await openDriver(manager);
    try {
      expect((await third.apply([{ kind: 'unload', unit: 'adopt.service' }]))[0].ok).toBe(true);
      expect(isAlive(pid)).toBe(false);
      expect(show(manager, 'adopt.service').LoadState).toBe('not-found');
    } finally {
      await third.close();
    }
  });

  it('reloads a changed file once and leaves its running unit running', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      await driver.apply([
        load('changing.service', service('v1')),
        { kind: 'start', unit: 'changing.service' },
      ]);
      const pid = Number(show(manager, 'changing.service').MainPID);
      const reloads = driver.stats.reloads;
      const v2 = service('v2');
      expect((await driver.apply([load('changing.service', v2)]))[0].ok).toBe(true);
      expect(driver.stats.reloads - reloads).toBe(1);
      expect(show(manager, 'changing.service')).toMatchObject({
        MainPID: `${pid}`,
        SubState: 'running',
      });
      const [state] = await driver.list();
      expect(state).toMatchObject({ unit: 'changing.service', hash: sha1(v2), mainPid: pid });
    } finally {
      await driver.close();
    }
  });

  it('fails ops that wait on systemd when the D-Bus connection is lost, instead of hanging', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      // A oneshot's start job lasts as long as its process: the driver is waiting for it.
      const contents = '[Service]\nType=oneshot\nExecStart=/bin/sleep 1000\n';
      const applied = driver.apply([
        load('slow.service', contents),
        { kind: 'start', unit: 'slow.service' },
      ]);
      await new Promise<void>((resolve) => {
        const off = driver.onState((s) => {
          if (s.unit === 'slow.service' && s.active === 'activating') {
            off();
            resolve();
          }
        });
      });
      // The bus daemon dies; systemd and its job live on, but no JobRemoved can reach us.
      process.kill(Number(show(manager, 'dbus.service').MainPID), 'SIGKILL');
      const [loaded, started] = await applied;
      expect(loaded.ok).toBe(true);
      expect(started.ok).toBe(false);
      expect(started.error).toMatch(
        /^start slow\.service: job \/org\/freedesktop\/systemd1\/job\/\d+: systemd driver: D-Bus connection to unix:path=.* lost: /,
      );
      const err = await driver.list().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: ErrorCode.DriverFailed, retryable: true });
    } finally {
      await driver.close();
    }
  });

  it('can be closed and opened again, and follows states after reopening', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      await driver.apply([load('again.service', service('again'))]);
      await driver.close();
      await driver.open();
      expect((await driver.apply([{ kind: 'start', unit: 'again.service' }]))[0].ok).toBe(true);
      await log.waitFor((s) => s.unit === 'again.service' && s.sub === 'running');
    } finally {
      await driver.close();
    }
  });

  it('fails open() with a retryable DriverFailed error when the bus is not there', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-nobus-'));
    try {
      const driver = new SystemdDriver({
        busAddress: `unix:path=${dir}/no-such-bus`,
        unitsDirectory: path.join(dir, 'units'),
      });
      const err = await driver.open().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(FlotillaError);
      expect(err).toMatchObject({ code: ErrorCode.DriverFailed, retryable: true });
      expect((err as Error).message).toContain(
        `D-Bus connection to unix:path=${dir}/no-such-bus lost`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives a clear error result, not an exception, for a unit file systemd refuses', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      // A service without ExecStart= is refused ("bad-setting").
      const results = await driver.apply([
        load('refused.service', '[Service]\nType=simple\n'),
        { kind: 'start', unit: 'refused.service' },
      ]);
      expect(results[0].ok).toBe(false);
      expect(results[0].error).toBe(
        'load refused.service: systemd refused the unit file (load state "bad-setting"): ' +
          'Unit refused.service has a bad unit file setting. (org.freedesktop.systemd1.BadUnitSetting)',
      );
      expect(results[1]).toMatchObject({ ok: false });
      expect(results[1].error).toBe(
        'start refused.service: not started because its load in this batch failed',
      );
      expect(show(manager, 'refused.service').LoadState).toBe('bad-setting');
    } finally {
      await driver.close();
    }
  });

  it('gives a clear error result for a start whose ExecStart= does not exist', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      const results = await driver.apply([
        load('noexec.service', service('no such binary', '/nonexistent/flotilla-test-binary')),
        { kind: 'start', unit: 'noexec.service' },
      ]);
      expect(results[0].ok).toBe(true);
      expect(results[1].ok).toBe(false);
      expect(results[1].error).toMatch(
        /^start noexec\.service: ExecStart= executable \/nonexistent\/flotilla-test-binary does not exist/,
      );
      // systemd's own view follows through onState: the exec fails with 203/EXEC.
      const failed = await log.waitFor((s) => s.unit === 'noexec.service' && s.active === 'failed');
      expect(failed.result).toBe('exit-code');
    } finally {
      await driver.close();
    }
  });

  it("gives an error result naming the unit and systemd's error for a start of an unknown unit", async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      const [start, stop] = await driver.apply([
        { kind: 'start', unit: 'ghost.service' },
        { kind: 'stop', unit: 'ghost.service' },
      ]);
      expect(start).toEqual({
        op: { kind: 'start', unit: 'ghost.service' },
        ok: false,
        error:
          'start ghost.service: Unit ghost.service not found. (org.freedesktop.systemd1.NoSuchUnit)',
      });
      // Stopping what systemd has not loaded is not an error: it is stopped.
      expect(stop.ok).toBe(true);

      const [bad] = await driver.apply([
        { kind: 'load', unit: 'x.service', contents: 'a', hash: 'b' },
      ]);
      expect(bad.error).toBe(
        `load x.service: hash b is not the SHA-1 of the contents (${sha1('a')})`,
      );
      const [traversal] = await driver.apply([load('../evil.service', service('evil'))]);
      expect(traversal.error).toBe('load ../evil.service: invalid unit name');
    } finally {
      await driver.close();
    }
  });

  it('status() reads like systemctl status', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    try {
      await driver.apply([
        load('shown.service', service('Shown unit')),
        { kind: 'start', unit: 'shown.service' },
      ]);
      const pid = Number(show(manager, 'shown.service').MainPID);
      const text = await driver.status('shown.service');
      const lines = text.split('\n');
      expect(lines[0]).toBe('● shown.service - Shown unit');
      expect(lines[1]).toBe(
        `     Loaded: loaded (${manager.env.XDG_RUNTIME_DIR}/systemd/user/shown.service; linked-runtime; preset: enabled)`,
      );
      expect(text).toMatch(
        /\n {5}Active: active \(running\) since \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d /,
      );
      expect(text).toContain(`\n   Main PID: ${pid} (sleep)`);
      expect(text).toContain(`CGroup: /${manager.cgroup}/app.slice/shown.service`);
    } finally {
      await driver.close();
    }
  });

  it("follows load states after someone else's daemon reload", async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      await driver.apply([
        load('edited.service', service('edited')),
        { kind: 'start', unit: 'edited.service' },
      ]);
      await log.waitFor((s) => s.unit === 'edited.service' && s.sub === 'running');
      // An operator breaks the file by hand and reloads systemd behind the driver's back.
      fs.writeFileSync(
        path.join(driver.unitsDirectory, 'edited.service'),
        '[Service]\nType=simple\n',
      );
      execFileSync('systemctl', ['--user', 'daemon-reload'], { env: manager.env });
      const state = await log.waitFor((s) => s.unit === 'edited.service' && s.load !== 'loaded');
      expect(state).toMatchObject({
        load: 'bad-setting',
        active: 'active',
        sub: 'running',
        hash: sha1('[Service]\nType=simple\n'),
      });
    } finally {
      await driver.close();
    }
  });

  it('emits states only for the units it manages', async () => {
    await using manager = await startSystemd();
    const driver = await openDriver(manager);
    const log = new StateLog(driver);
    try {
      // A unit started behind the driver's back, outside its units directory.
      const other = path.join(manager.dir, 'other.service');
      fs.writeFileSync(other, service('not managed'));
      const systemctl = (...args: string[]): string =>
        execFileSync('systemctl', ['--user', ...args], {
          env: manager.env,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      systemctl('link', other);
      systemctl('start', 'other.service');
      await driver.apply([
        load('mine.service', service('mine')),
        { kind: 'start', unit: 'mine.service' },
      ]);
      await log.waitFor((s) => s.unit === 'mine.service' && s.sub === 'running');
      systemctl('stop', 'other.service');
      await driver.apply([{ kind: 'stop', unit: 'mine.service' }]);
      await log.waitFor((s) => s.unit === 'mine.service' && s.active === 'inactive');
      expect(new Set(log.states.map((s) => s.unit))).toEqual(new Set(['mine.service']));
      expect(driver.stats.signalsHandled).toBeLessThan(driver.stats.signalsReceived);
    } finally {
      await driver.close();
    }
  });
});

describe('journal', () => {
  /** A stand-in for journalctl (this machine has no journald), and a directory with a journal file. */
  function fakeJournal(script: string): { dir: string; bin: string; journals: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-journal-'));
    const bin = path.join(dir, 'journalctl');
    fs.writeFileSync(bin, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    const journals = path.join(dir, 'log');
    fs.mkdirSync(path.join(journals, 'machine-id'), { recursive: true });
    fs.writeFileSync(path.join(journals, 'machine-id', 'system.journal'), '');
    return { dir, bin, journals };
  }

  it('runs journalctl for the unit and follows until the signal aborts', async () => {
    const fake = fakeJournal(
      'echo "args: $*"; echo "line 1"; while true; do sleep 0.05; echo tick; done',
    );
    try {
      const abort = new AbortController();
      const lines: string[] = [];
      for await (const l of journalLines('a.service', 5, true, abort.signal, {
        user: true,
        journalDirs: [fake.journals],
        journalctl: fake.bin,
      })) {
        lines.push(l);
        if (l === 'line 1') abort.abort();
      }
      expect(lines[0]).toBe(
        'args: --user-unit a.service --lines 5 --no-pager --output short --quiet --follow',
      );
      expect(lines[1]).toBe('line 1');
    } finally {
      fs.rmSync(fake.dir, { recursive: true, force: true });
    }
  });

  it('reports a journalctl failure as one line naming the unit', async () => {
    const fake = fakeJournal('echo "Failed to open journal: Permission denied" >&2; exit 1');
    try {
      const lines: string[] = [];
      for await (const l of journalLines('b.service', 10, false, undefined, {
        user: false,
        journalDirs: [fake.journals],
        journalctl: fake.bin,
      })) {
        lines.push(l);
      }
      expect(lines).toEqual([
        'journalctl failed for b.service: Failed to open journal: Permission denied',
      ]);
    } finally {
      fs.rmSync(fake.dir, { recursive: true, force: true });
    }
  });

  it('says so, in one line, when the machine has no journal', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-nojournal-'));
    try {
      const lines: string[] = [];
      for await (const l of journalLines('a.service', 10, true, undefined, {
        user: true,
        journalDirs: [empty],
      })) {
        lines.push(l);
      }
      expect(lines).toEqual(['no journal available for a.service on this machine']);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('pure helpers of the systemd driver', () => {
  it("computes systemd's object paths (bus_label_escape)", () => {
    expect(unitObjectPath('a.service')).toBe('/org/freedesktop/systemd1/unit/a_2eservice');
    expect(unitObjectPath('-.mount')).toBe('/org/freedesktop/systemd1/unit/_2d_2emount');
    expect(unitObjectPath('web@1.service')).toBe(
      '/org/freedesktop/systemd1/unit/web_401_2eservice',
    );
    expect(unitObjectPath('1x.service')).toBe('/org/freedesktop/systemd1/unit/_31x_2eservice');
  });

  it('orders ops unload < load < stop < start, then by unit, whatever the input order', () => {
    const ops: DriverOp[] = [
      { kind: 'start', unit: 'b.service' },
      { kind: 'stop', unit: 'c.service' },
      { kind: 'start', unit: 'a.service' },
      load('b.service', 'x'),
      { kind: 'unload', unit: 'z.service' },
    ];
    expect(orderOps(ops.map((op, index) => ({ op, index }))).map((e) => e.index)).toEqual([
      4, 3, 1, 2, 0,
    ]);
  });

  it('finds a missing ExecStart= executable, and leaves alone what systemd resolves itself', () => {
    expect(missingExecutable('[Service]\nExecStart=/nonexistent/x --flag\n')).toBe(
      '/nonexistent/x',
    );
    expect(missingExecutable('[Service]\nExecStart=/bin/sleep 1\n')).toBeUndefined();
    expect(missingExecutable('[Service]\nExecStart=-/nonexistent/x\n')).toBeUndefined();
    expect(missingExecutable('[Service]\nExecStart=sleep 1\n')).toBeUndefined();
    expect(missingExecutable('[Service]\nExecStart=/nonexistent/%i\n')).toBeUndefined();
    expect(
      missingExecutable('[Service]\nRootDirectory=/srv\nExecStart=/nonexistent/x\n'),
    ).toBeUndefined();
    expect(
      missingExecutable('[Service]\nExecStart=/nonexistent/x\nExecStart=\nExecStart=/bin/true\n'),
    ).toBeUndefined();
    expect(missingExecutable('[Service]\nExecStart=@/nonexistent/x name\n')).toBe('/nonexistent/x');
    expect(missingExecutable('[Service]\nExecStart=/bin/sh \\\n  -c true\n')).toBeUndefined();
  });
});
