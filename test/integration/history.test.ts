import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { refusingPort } from '../harness';
import { killGroup } from '../harness/registry';
import { REPO_ROOT, runCli, tableObjects } from '../helpers/cli';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * The cluster's history on a real `flotillad --dev`: what happened on the machine (a unit that
 * fails with exit status 3) is durable, `flotilla events` reads it after a restart, and an
 * exported history replays offline (--unit, --at a time, --diff, --verify); a missing source is
 * refused and nothing is created.
 */
jest.setTimeout(240_000);

let dir: string;
let daemon: DevDaemon | undefined;

// The daemon's port: it picks one at each start and announces it.
const cli = (args: string[]) => runCli(args, { endpoint: `127.0.0.1:${daemon!.port}`, cwd: dir });
const offline = (args: string[]) => runCli(args, { cwd: REPO_ROOT });

async function eventually<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + 30_000;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-history-'));
  fs.writeFileSync(
    path.join(dir, 'bad.service'),
    "[Service]\nExecStart=/bin/sh -c 'sleep 0.3; exit 3'\n",
  );
  fs.writeFileSync(path.join(dir, 'good.service'), '[Service]\nExecStart=/bin/sleep 600\n');
  // Fails before it ever runs (systemd: 203/EXEC), so a blocking start sees the failure.
  fs.writeFileSync(path.join(dir, 'fails.service'), '[Service]\nExecStart=/nonexistent/app\n');
  fs.writeFileSync(
    path.join(dir, 'once.service'),
    `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> ${path.join(dir, 'once.runs')}'\n`,
  );
  fs.writeFileSync(
    path.join(dir, 'picky.service'),
    '[Service]\nExecStart=/bin/sleep 600\n[X-Fleet]\nMachineMetadata=region=mars\n',
  );
});

afterAll(async () => {
  const p = daemon?.proc;
  if (p?.pid && p.exitCode === null) killGroup(p.pid, 'SIGKILL');
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('history', () => {
  it('records a failure durably; events after a restart; export and offline replay', async () => {
    daemon = await startDevDaemon({ dir });
    expect((await cli(['start', '--no-block', 'good.service', 'bad.service'])).code).toBe(0);
    await eventually('bad.service failed', async () => {
      const u = tableObjects((await cli(['list-units'])).stdout).find(
        (x) => x.unit === 'bad.service',
      );
      return u?.active === 'failed' ? u : undefined;
    });
    const before = tableObjects((await cli(['list-units'])).stdout);
    expect(before.find((u) => u.unit === 'good.service')?.active).toBe('active');
    const midTime = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 50));
    expect((await cli(['stop', '--no-block', 'good.service'])).code).toBe(0);

    // A restart: the leader's memory starts over; the older events come from the store.
    expect(await daemon.stop()).toBe(0);
    daemon = await startDevDaemon({ dir });
    const ev = await cli(['events', '--since=1']);
    expect(ev.stderr).toBe('');
    expect(ev.code).toBe(0);
    expect(ev.stdout).toMatch(
      /^\d+ \S+ UnitObserved unit=bad\.service machine=\S+ state=loaded\/failed\/failed result=exit-code status=3$/m,
    );
    expect(ev.stdout).toMatch(/^1 \S+ LeaderElected machine=/);
    expect(ev.stdout).toMatch(/^\d+ \S+ UnitSubmitted unit=good\.service target=\w+ hash=\w+$/m);
    const onlyBad = await cli([
      'events',
      '--since',
      midTime.slice(0, 10) + 'T00:00:00Z',
      '--unit=bad.service',
      '--type=UnitObserved',
    ]);
    expect(onlyBad.code).toBe(0);
    expect(
      onlyBad.stdout
        .trim()
        .split('\n')
        .every((l) => / UnitObserved unit=bad\.service /.test(l)),
    ).toBe(true);

    const file = path.join(dir, 'history.jsonl');
    const exp = await offline(['events', 'export', file, '--data-dir', path.join(dir, 'state')]);
    expect(exp.code).toBe(0);
    expect(exp.stderr).toMatch(/^Exported \d+ events/);
    expect(JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0])).toMatchObject({
      format: 'flotilla-history',
      version: 1,
    });
    // Without --data-dir, through the daemon's API: the same events.
    const viaApi = path.join(dir, 'api.history');
    const fromApi = await cli(['events', 'export', viaApi]);
    expect(fromApi.code).toBe(0);
    expect(fromApi.stderr).toMatch(/^Exported \d+ events/);
    const eventsOf = async (f: string): Promise<string> =>
      (await offline(['replay', f, '--events', '--json'])).stdout;
    expect(await eventsOf(viaApi)).toBe(await eventsOf(file));

    const timeline = await offline(['replay', file, '--unit=bad.service']);
    expect(timeline.code).toBe(0);
    expect(timeline.stdout).toMatch(/UnitObserved .*result=exit-code status=3 → failed/);
    expect(timeline.stdout).toMatch(
      /^Now: failed, target launched on \S+; last failure: exit-code, status 3 on /m,
    );

    // --at a past time: good.service still wanted launched then.
    const at = await offline(['replay', file, '--at', midTime]);
    expect(at.code).toBe(0);
    const rows = tableObjects(at.stdout);
    expect(rows.find((r) => r.unit === 'good.service')).toMatchObject({ dstate: 'launched' });
    const now = tableObjects((await offline(['replay', file])).stdout);
    expect(now.find((r) => r.unit === 'good.service')).toMatchObject({ dstate: 'loaded' });

    const d = await offline(['replay', file, '--diff', `${midTime}..${'9'.repeat(9)}`]);
    expect(d.code).toBe(1);
    // The header names the index range the file holds (its last line is the end marker).
    const last = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]).last as number;
    const d2 = await offline(['replay', file, '--diff', `${midTime}..${last}`]);
    expect(d2.code).toBe(0);
    expect(d2.stdout).toMatch(/^changed unit good\.service: target: launched → loaded/m);
    // An open end, or "now": up to the end of the history.
    for (const open of [`${midTime}..now`, `${midTime}..`])
      expect((await offline(['replay', file, '--diff', open])).stdout).toBe(d2.stdout);

    const v = await offline(['replay', file, '--verify']);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^History verified: \d+ events folded twice to the same state/);

    // A typo in the data directory: an error, and nothing created.
    const typo = path.join(dir, 'stat');
    const bad = await offline(['replay', '--data-dir', typo]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('does not exist');
    expect(fs.existsSync(typo)).toBe(false);
    expect((await offline(['replay', path.join(dir, 'nope.jsonl')])).code).not.toBe(0);
    // An etcd that is not there: the error names it; no file is written.
    const refused = await refusingPort();
    try {
      const never = path.join(dir, 'never.history');
      const etcd = `http://127.0.0.1:${refused.port}`;
      const r = await offline(['events', 'export', never, '--etcd-servers', etcd]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `Error exporting the history: cannot read cluster "default" at ${etcd}: `,
      );
      expect(r.stderr).toMatch(/ECONNREFUSED/);
      // etcd was named: no hint about a dev daemon's data directory.
      expect(r.stderr).not.toContain('--data-dir');
      expect(fs.existsSync(never)).toBe(false);
    } finally {
      await refused.close();
    }
    expect((await offline(['replay', file, '--until=0'])).code).not.toBe(0);
    expect((await offline(['replay', file, '--until=-1'])).code).not.toBe(0);
  });

  it('why not running: a blocking start says why and exits non-zero; status and list-unit-files show it', async () => {
    if (!daemon || daemon.proc.exitCode !== null) daemon = await startDevDaemon({ dir });
    const failed = await cli(['start', 'fails.service']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /^Error waiting for units: unit fails\.service failed on \S+: exit-code(, exit status \d+)?$/m,
    );
    // A oneshot runs and exits (back at loaded): its start is done, not waited on for ever.
    const once = await cli(['start', '--block-attempts=10', 'once.service']);
    expect(once.stderr).toBe('');
    expect(once.code).toBe(0);
    expect(once.stdout).toMatch(/^Unit once\.service launched on \S+$/m);
    const runs = (): number => fs.readFileSync(path.join(dir, 'once.runs'), 'utf8').length / 4;
    expect(runs()).toBe(1);
    // A restart runs it again and is done when it has (not waited on for ever either).
    const again = await cli(['restart', '--block-attempts=10', 'once.service']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Unit\(once\.service\) was restarted\.$/m);
    expect(runs()).toBe(2);
    const unplaced = await cli(['start', 'picky.service']);
    expect(unplaced.code).toBe(1);
    expect(unplaced.stderr).toMatch(
      /^Error waiting for units: unit picky\.service cannot be placed: .*MachineMetadata region=mars/m,
    );

    const st = await cli(['status', 'picky.service']);
    expect(st.code).toBe(1);
    expect(st.stderr).toMatch(/^Not placed: .*MachineMetadata region=mars/m);
    const st2 = await cli(['status', 'fails.service']);
    expect(st2.stdout).toMatch(/^Last failure: exit-code(, exit status \d+)? on \S+ at \d{4}-/m);

    const rows = tableObjects(
      (await cli(['list-unit-files', '--fields=unit,state,reason,failure'])).stdout,
    );
    expect(rows.find((r) => r.unit === 'picky.service')?.reason).toMatch(/region=mars/);
    expect(rows.find((r) => r.unit === 'fails.service')?.failure).toMatch(/^exit-code/);
    expect(rows.find((r) => r.unit === 'picky.service')?.failure).toBe('-');
    expect(rows.find((r) => r.unit === 'fails.service')?.reason).toBe('-');
  });

  it('restart of global units: a oneshot is done once it ran again, a failure says where', async () => {
    if (!daemon || daemon.proc.exitCode !== null) daemon = await startDevDaemon({ dir });
    const runs = path.join(dir, 'gonce.runs');
    fs.writeFileSync(
      path.join(dir, 'gonce.service'),
      `[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran >> ${runs}'\n[X-Fleet]\nGlobal=true\n`,
    );
    fs.writeFileSync(
      path.join(dir, 'gfalse.service'),
      '[Service]\nExecStart=/bin/false\n[X-Fleet]\nGlobal=true\n',
    );
    expect((await cli(['start', 'gonce.service', 'gfalse.service'])).code).toBe(0);
    const count = (): number =>
      fs.existsSync(runs) ? fs.readFileSync(runs, 'utf8').length / 4 : 0;
    await eventually('gonce ran', async () => (count() === 1 ? true : undefined));
    await eventually('gfalse failed', async () => {
      const rows = tableObjects((await cli(['list-units'])).stdout);
      return rows.find((r) => r.unit === 'gfalse.service')?.active === 'failed' ? true : undefined;
    });

    const again = await cli(['restart', '--block-attempts=10', 'gonce.service']);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^Global unit gonce\.service launched on 1 machine$/m);
    expect(count()).toBe(2);

    const failed = await cli(['restart', '--block-attempts=10', 'gfalse.service']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /^Error waiting for units: global unit gfalse\.service failed on [0-9a-f]{32}$/m,
    );
  });
});
