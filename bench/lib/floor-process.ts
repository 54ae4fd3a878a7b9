/**
 * The floor of "start N units on a systemd manager": no scheduler, no agent, no driver — the
 * bare D-Bus calls any tool must make. One process per manager (as Flotilla has one agent per
 * manager). Protocol on stdin/stdout, one line each:
 *   argv: <busAddress> <dir> <prefix> <n>
 *   → "ready"            connected to the manager
 *   ← "go"               write N unit files, LinkUnitFiles (runtime), Reload, StartUnit × N,
 *                        then poll ListUnitsByPatterns(active) until all N are active
 *   → {"doneAt": ms}     Date.now() when all N were active
 *   ← "clean"            StopUnit × N, DisableUnitFiles, Reload; then exits
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import dbus from 'dbus-next';

interface Manager {
  LinkUnitFiles(files: string[], runtime: boolean, force: boolean): Promise<unknown>;
  DisableUnitFiles(names: string[], runtime: boolean): Promise<unknown>;
  Reload(): Promise<void>;
  StartUnit(name: string, mode: string): Promise<string>;
  StopUnit(name: string, mode: string): Promise<string>;
  ListUnitsByPatterns(states: string[], patterns: string[]): Promise<unknown[]>;
}

async function main(): Promise<void> {
  const [busAddress, dir, prefix, nRaw] = process.argv.slice(2);
  const n = Number(nRaw);
  const names = Array.from({ length: n }, (_, i) => `${prefix}-${i}.service`);
  const bus = dbus.sessionBus({ busAddress });
  // A lost bus ends the floor process with the reason, not with an unheard 'error' event.
  bus.on('error', (err: Error) => {
    process.stderr.write(`floor: D-Bus connection to ${busAddress} failed: ${err.message}\n`);
    process.exit(1);
  });
  const obj = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
  const mgr = obj.getInterface('org.freedesktop.systemd1.Manager') as unknown as Manager;
  fs.mkdirSync(dir, { recursive: true });
  const out = (s: string): void => void process.stdout.write(s + '\n');
  out('ready');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line === 'go') {
      const files = names.map((name, i) => {
        const f = path.join(dir, name);
        fs.writeFileSync(
          f,
          `[Unit]\nDescription=floor unit ${i}\n\n[Service]\nExecStart=/bin/sleep 100000\n`,
        );
        return f;
      });
      await mgr.LinkUnitFiles(files, true, true);
      await mgr.Reload();
      await Promise.all(names.map((name) => mgr.StartUnit(name, 'replace')));
      for (;;) {
        const active = await mgr.ListUnitsByPatterns(['active'], [`${prefix}-*.service`]);
        if (active.length >= n) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      out(JSON.stringify({ doneAt: Date.now() }));
    } else if (line === 'clean') {
      await Promise.all(names.map((name) => mgr.StopUnit(name, 'replace').catch(() => '')));
      await mgr.DisableUnitFiles(names, true).catch(() => undefined);
      await mgr.Reload();
      bus.disconnect();
      out('cleaned');
      rl.close();
      return;
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`floor: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
