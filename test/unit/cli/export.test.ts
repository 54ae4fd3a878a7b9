import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localFiles, runCli } from '../../../src/cli/run';
import type { ClusterApi } from '../../../src/api/types';
import { historyText } from '../../../src/history/export-format';
import { apiWith } from '../../helpers/api-with';

/**
 * `flotilla events export FILE` through the API: the file is written only when the leader sent
 * a whole history file (its header first, its end line last); anything else writes nothing.
 */

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-export-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const WHOLE = historyText(
  {
    tail: [
      {
        type: 'LeaderElected',
        machine: 'm1',
        address: 'a:1',
        index: 1,
        epoch: 1,
        time: 1,
        v: 2,
      },
    ],
  },
  { cluster: 'c', flotilla: 'test' },
);

/** An API whose ExportHistory sends `parts` as its chunks. */
function sending(parts: string[]): ClusterApi {
  return apiWith({
    exportHistory: async function* () {
      for (const p of parts) yield { data: Buffer.from(p) };
    },
  });
}

async function exportWith(api: ClusterApi) {
  let stderr = '';
  const file = path.join(dir, 'out.history');
  const code = await runCli(
    ['events', 'export', file],
    {
      stdout: () => undefined,
      stderr: (s) => (stderr += s),
      stderrIsTTY: false,
      env: {},
      ...localFiles(dir),
    },
    { connect: () => api },
  );
  return { code, stderr, written: fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined };
}

describe('events export through the API', () => {
  test('writes the whole file the leader sends, however it is cut into chunks', async () => {
    const cut = [WHOLE.slice(0, 200), WHOLE.slice(200, 201), WHOLE.slice(201)];
    const r = await exportWith(sending(cut));
    expect(r.stderr).toBe(
      `Exported 1 events to ${path.join(dir, 'out.history')} (${WHOLE.length} bytes)\n`,
    );
    expect(r.code).toBe(0);
    expect(r.written).toBe(WHOLE);
  });

  test.each([
    ['nothing', [] as string[], 'incomplete'],
    ['a history without its end line', [WHOLE.slice(0, WHOLE.lastIndexOf('{"end"'))], 'incomplete'],
    ['something else', ['{"hello":1}\n'], 'not a history file'],
  ])('writes nothing when the leader sends %s', async (_what, parts, message) => {
    const r = await exportWith(sending(parts));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.written).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
