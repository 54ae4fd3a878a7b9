import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localFiles, runCli } from '../../../src/cli/run';
import { FakeCluster } from '../../helpers/fake-cluster';

/**
 * The CLI in-process against the FakeCluster (no gRPC): fast checks of request counts and
 * exit codes. test/integration/cli-api.test.ts runs the real binary over gRPC.
 */

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(fake: FakeCluster, argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(
    argv,
    {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
      stderrIsTTY: false,
      env,
      ...localFiles(dir),
    },
    { connect: () => fake },
  );
  return { code, stdout, stderr };
}

function write(name: string, text: string): void {
  fs.writeFileSync(path.join(dir, name), text);
}

describe('request counts do not grow with the number of units', () => {
  test('start of 3,000 units: one CreateUnits, one SetTargetStates, paged lookups', async () => {
    const fake = new FakeCluster({ agents: 'manual' });
    const names: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = `u${String(i).padStart(4, '0')}.service`;
      names.push(n);
      write(n, `[Service]\nExecStart=/bin/sleep ${i}\n`);
    }
    const r = await run(fake, ['start', '--no-block', ...names]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fake.count('createUnits')).toBe(1);
    expect(fake.count('setTargetStates')).toBe(1);
    expect(fake.count('getUnit')).toBe(0);
    // before: one page (empty cluster); after creation: three pages of 1000
    expect(fake.count('listUnits')).toBeLessThanOrEqual(4);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6000);
    expect(lines[0]).toBe('Unit u0000.service inactive');
    expect(lines[3000]).toBe('Triggered unit u0000.service start');
    expect(lines.filter((l) => l.startsWith('Triggered unit ')).length).toBe(3000);
    fake.close();
  });

  test('waiting on 3,000 units polls with paged listings, not one call per unit', async () => {
    const fake = new FakeCluster({ agents: 'auto', tickMs: 5 });
    fake.seed(
      Array.from({ length: 3000 }, (_, i) => ({ name: `w${String(i).padStart(4, '0')}.service` })),
    );
    fake.resetCounts();
    const names = [...fake.units.keys()];
    const r = await run(fake, ['start', ...names]);
    expect(r.code).toBe(0);
    expect(fake.count('createUnits')).toBe(0);
    expect(fake.count('setTargetStates')).toBe(1);
    expect(fake.count('getUnit')).toBe(0);
    expect(fake.count('listMachines')).toBe(1);
    const launched = r.stdout.split('\n').filter((l) => / launched on /.test(l));
    expect(launched).toHaveLength(3000);
    // progress lines (many units, not a terminal), nothing else on stderr
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('waiting: '))).toEqual([]);
    // each check lists three pages; a handful of checks at most
    expect(fake.count('listUnits') % 3).toBe(0);
    expect(fake.count('listUnits')).toBeLessThan(3 * 20);
    fake.close();
  });

  test('list-units and list-unit-files page through 1000 at a time', async () => {
    const fake = new FakeCluster({ agents: 'manual' });
    fake.seed(
      Array.from({ length: 2500 }, (_, i) => ({
        name: `p${i}.service`,
        target: 'launched' as const,
      })),
    );
    fake.resetCounts();
    const units = await run(fake, ['list-units', '--no-legend']);
    expect(units.stdout.trimEnd().split('\n')).toHaveLength(2500);
    expect(fake.count('listUnitStates')).toBe(3);
    const files = await run(fake, ['list-unit-files', '--no-legend']);
    expect(files.stdout.trimEnd().split('\n')).toHaveLength(2500);
    expect(fake.count('listUnits')).toBe(3);
    expect(fake.count('listMachines')).toBe(1);
    fake.close();
  });
});

describe('in-process basics', () => {
  test('errors thrown by the API surface as one line, exit 1', async () => {
    const fake = new FakeCluster();
    fake.failNext('listMachines', new Error('boom\nsecond line'));
    const r = await run(fake, ['list-machines']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error retrieving list of active machines: boom second line\n',
    });
    fake.close();
  });

  test('help and version need no server', async () => {
    const fake = new FakeCluster();
    const h = await run(fake, ['help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('list-unit-files');
    const v = await run(fake, ['--version']);
    expect(v.stdout).toMatch(/^flotilla version \d+\.\d+\.\d+\n$/);
    expect(fake.calls.size).toBe(0);
    fake.close();
  });
});
