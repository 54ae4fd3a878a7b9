import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCK_FILE, lockDirectory } from '../../../src/daemon/dir-lock';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-lock-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('lockDirectory', () => {
  it('refuses while another live process holds the directory, naming its PID', () => {
    // The test runner's parent stands for another flotillad: alive, and not us.
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${process.ppid}\n`);
    expect(() => lockDirectory(dir, 'data directory')).toThrow(
      `data directory ${dir} is in use by another flotillad (PID ${process.ppid})`,
    );
  });

  it('takes over the lock of a process that died, and releases it', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid;
    fs.writeFileSync(path.join(dir, LOCK_FILE), `${dead} 12345\n`);
    const release = lockDirectory(dir, 'data directory');
    expect(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).toMatch(
      new RegExp(`^${process.pid} `),
    );
    release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });
});
