import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

jest.setTimeout(60_000);

let dir: string;
let first: DevDaemon | undefined;

afterAll(async () => {
  await first?.stop();
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a second flotillad on the same data directory refuses to start, naming the first one', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-lock-'));
  first = await startDevDaemon({ dir });
  await expect(startDevDaemon({ dir, kind: 'second' })).rejects.toThrow(
    `is in use by another flotillad (PID ${first.proc.pid})`,
  );
  // The first one is untouched and serves; once it stopped, the directory is free again.
  expect(first.proc.exitCode).toBeNull();
  expect(await first.stop()).toBe(0);
  first = await startDevDaemon({ dir });
});
