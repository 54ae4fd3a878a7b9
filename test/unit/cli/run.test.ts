import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localFiles, runCli } from '../../../src/cli/run';
import { startEngineCluster, type EngineCluster } from '../../helpers/engine-cluster';

/**
 * The CLI in-process against the real engine's API in-process (no gRPC): checks of request
 * counts and exit codes. test/integration/cli-api.test.ts runs it over gRPC, and the binary.
 */

let dir: string;
let cluster: EngineCluster;
beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-'));
  cluster = await startEngineCluster();
});
afterEach(async () => {
  await cluster.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(c: EngineCluster, argv: string[], env: Record<string, string> = {}) {
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
    { connect: () => c.api },
  );
  return { code, stdout, stderr };
}

function write(name: string, text: string): void {
  fs.writeFileSync(path.join(dir, name), text);
}

describe('request counts do not grow with the number of units', () => {
  test('start of 3,000 units: one CreateUnits, one SetTargetStates, paged lookups', async () => {
    const c = cluster;
    await c.pauseAgents();
    const names: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = `u${String(i).padStart(4, '0')}.service`;
      names.push(n);
      write(n, `[Service]\nExecStart=/bin/sleep ${i}\n`);
    }
    const r = await run(c, ['start', '--no-block', ...names]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(c.api.count('createUnits')).toBe(1);
    expect(c.api.count('setTargetStates')).toBe(1);
    expect(c.api.count('getUnit')).toBe(0);
    // before: one page (empty cluster); after creation: three pages of 1000
    expect(c.api.count('listUnits')).toBeLessThanOrEqual(4);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6000);
    expect(lines[0]).toBe('Unit u0000.service inactive');
    expect(lines[3000]).toBe('Triggered unit u0000.service start');
    expect(lines.filter((l) => l.startsWith('Triggered unit ')).length).toBe(3000);
  });

  test('waiting on 3,000 units polls with paged listings, not one call per unit', async () => {
    const c = cluster;
    const names = Array.from({ length: 3000 }, (_, i) => `w${String(i).padStart(4, '0')}.service`);
    await c.seed(names.map((name) => ({ name })));
    c.api.resetCounts();
    const r = await run(c, ['start', ...names]);
    expect(r.code).toBe(0);
    expect(c.api.count('createUnits')).toBe(0);
    expect(c.api.count('setTargetStates')).toBe(1);
    expect(c.api.count('getUnit')).toBe(0);
    expect(c.api.count('listMachines')).toBe(1);
    const launched = r.stdout.split('\n').filter((l) => / launched on /.test(l));
    expect(launched).toHaveLength(3000);
    // progress lines (many units, not a terminal), nothing else on stderr
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('waiting: '))).toEqual([]);
    // each check lists three pages; a handful of checks at most
    expect(c.api.count('listUnits') % 3).toBe(0);
    expect(c.api.count('listUnits')).toBeLessThan(3 * 20);
  });

  test('list-units and list-unit-files page through 1000 at a time', async () => {
    const c = cluster;
    await c.seed(
      Array.from({ length: 2500 }, (_, i) => ({
        name: `p${i}.service`,
        target: 'launched' as const,
      })),
    );
    c.api.resetCounts();
    const units = await run(c, ['list-units', '--no-legend']);
    expect(units.stdout.trimEnd().split('\n')).toHaveLength(2500);
    expect(c.api.count('listUnitStates')).toBe(3);
    const files = await run(c, ['list-unit-files', '--no-legend']);
    expect(files.stdout.trimEnd().split('\n')).toHaveLength(2500);
    expect(c.api.count('listUnits')).toBe(3);
    expect(c.api.count('listMachines')).toBe(1);
  });
});

describe('in-process basics', () => {
  test('errors thrown by the API surface as one line, exit 1', async () => {
    const c = cluster;
    c.api.failNext('listMachines', new Error('boom\nsecond line'));
    const r = await run(c, ['list-machines']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error retrieving list of active machines: boom second line\n',
    });
  });

  test('help and version need no server', async () => {
    const c = cluster;
    const h = await run(c, ['help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('list-unit-files');
    const v = await run(c, ['--version']);
    expect(v.stdout).toMatch(/^flotilla version \d+\.\d+\.\d+\n$/);
    expect(c.api.total()).toBe(0);
  });
});
