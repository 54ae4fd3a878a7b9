import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, spawnCli } from '../helpers/cli';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

jest.setTimeout(60_000);

let dir: string;
let daemon: DevDaemon | undefined;

afterAll(async () => {
  await daemon?.stop();
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('journal -f ends non-zero with a message when the daemon goes away', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-journal-'));
  daemon = await startDevDaemon({ dir });
  const endpoint = `127.0.0.1:${daemon.port}`;
  const unit = path.join(dir, 'talk.service');
  fs.writeFileSync(unit, '[Service]\nExecStart=/bin/sh -c "echo hello-journal; exec sleep 1000"\n');
  let started = await runCli(['start', '--block-attempts=10', unit], { endpoint, cwd: dir });
  for (let i = 0; i < 50 && started.code !== 0; i++) {
    // The agent may not have joined yet.
    await new Promise((r) => setTimeout(r, 200));
    started = await runCli(['start', '--block-attempts=10', unit], { endpoint, cwd: dir });
  }
  expect(started.code).toBe(0);
  const follow = spawnCli(['journal', '-f', 'talk.service'], { endpoint, timeoutMs: 30_000 });
  await follow.waitForStdout(/hello-journal/);
  await daemon.stop();
  daemon = undefined;
  const r = await follow.result;
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('Error following journal of unit talk.service');
});
