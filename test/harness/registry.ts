import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every server the harness starts is recorded in a file under this directory
 * until it is stopped. If a jest worker dies before disposing of a server, the
 * global teardown reads these records and removes what is left: the process
 * group, its temp directory and its cgroups.
 */
export const REGISTRY_DIR = path.join(os.tmpdir(), 'flotilla-harness');

export interface Record {
  pid: number;
  /** The process that started the server (a jest worker, a benchmark). */
  owner?: number;
  kind: string;
  dir?: string;
  cgroups?: string[];
}

const live = new Map<number, Record>();
let exitHookInstalled = false;

function recordPath(pid: number): string {
  return path.join(REGISTRY_DIR, `${pid}.json`);
}

export function track(rec: Record): void {
  fs.mkdirSync(REGISTRY_DIR, { recursive: true });
  fs.writeFileSync(recordPath(rec.pid), JSON.stringify({ ...rec, owner: process.pid }));
  live.set(rec.pid, rec);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort when a worker exits without disposing: kill synchronously.
    process.on('exit', () => {
      for (const r of live.values()) killGroup(r.pid, 'SIGKILL');
    });
  }
}

export function untrack(pid: number): void {
  live.delete(pid);
  fs.rmSync(recordPath(pid), { force: true });
}

/** Signals the whole process group (servers are started detached, as group leaders). */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills every process in a cgroup subtree, then removes the directories deepest first. */
export function removeCgroup(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const dirs: string[] = [];
  const walk = (d: string): void => {
    dirs.push(d);
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
    }
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    dirs.length = 0;
    walk(dir);
    let procs = 0;
    for (const d of dirs) {
      let text = '';
      try {
        text = fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        const pid = Number(line);
        if (pid > 0) {
          procs++;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
    if (procs === 0) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  for (const d of dirs.sort((a, b) => b.length - a.length)) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* busy or gone; the next teardown retries */
    }
  }
}

/**
 * Removes what dead owners left behind (used by jest's global teardown, after its workers have
 * exited). Servers whose owner still runs — another test run or a benchmark on the same machine —
 * are left alone, as are those of the calling process unless `includeSelf`.
 */
export function cleanupAll(includeSelf = true): number {
  if (!fs.existsSync(REGISTRY_DIR)) return 0;
  let n = 0;
  for (const f of fs.readdirSync(REGISTRY_DIR)) {
    const file = path.join(REGISTRY_DIR, f);
    let rec: Record;
    try {
      rec = JSON.parse(fs.readFileSync(file, 'utf8')) as Record;
    } catch {
      fs.rmSync(file, { force: true });
      continue;
    }
    const owner = rec.owner;
    if (owner !== undefined && isAlive(owner) && !(includeSelf && owner === process.pid)) continue;
    if (isAlive(rec.pid)) {
      killGroup(rec.pid, 'SIGKILL');
      n++;
    }
    for (const cg of rec.cgroups ?? []) removeCgroup(cg);
    if (rec.dir) fs.rmSync(rec.dir, { recursive: true, force: true });
    fs.rmSync(file, { force: true });
  }
  return n;
}
