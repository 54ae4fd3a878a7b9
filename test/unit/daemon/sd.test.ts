import { silentLogger } from '../../../src/log';
import { SystemdNotifier, listenFds } from '../../../src/daemon/sd';

describe('SystemdNotifier', () => {
  it('does nothing without NOTIFY_SOCKET', async () => {
    const sent: string[][] = [];
    const n = new SystemdNotifier(silentLogger, {}, async (a) => void sent.push(a));
    expect(await n.ready('x')).toBe(false);
    n.startWatchdog();
    expect(sent).toEqual([]);
  });

  it('sends READY=1 with a status, and reports a failed systemd-notify without throwing', async () => {
    const sent: string[][] = [];
    const env = { NOTIFY_SOCKET: '/run/x' };
    const n = new SystemdNotifier(silentLogger, env, async (a) => void sent.push(a));
    expect(await n.ready('serving')).toBe(true);
    expect(sent).toEqual([['READY=1', 'STATUS=serving']]);
    const failing = new SystemdNotifier(silentLogger, env, async () => 'ENOENT');
    expect(await failing.ready('x')).toBe(false);
  });

  it('pings the watchdog at half of WATCHDOG_USEC, only for its own PID', async () => {
    const sent: string[][] = [];
    const env = {
      NOTIFY_SOCKET: '/run/x',
      WATCHDOG_USEC: '1000000',
      WATCHDOG_PID: String(process.pid),
    };
    const n = new SystemdNotifier(silentLogger, env, async (a) => void sent.push(a));
    expect(n.watchdogMs()).toBe(1000);
    expect(n.watchdogMs(process.pid + 1)).toBeUndefined();
    n.startWatchdog();
    await new Promise((r) => setTimeout(r, 1150));
    await n.stopping();
    const pings = sent.filter((a) => a[0] === 'WATCHDOG=1').length;
    // One at once, then one every 500 ms.
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(pings).toBeLessThanOrEqual(4);
    expect(sent.at(-1)?.[0]).toBe('STOPPING=1');
    const after = sent.length;
    await new Promise((r) => setTimeout(r, 600));
    expect(sent.length).toBe(after);
  });
});

describe('listenFds', () => {
  it('returns the passed sockets from fd 3 with their names, and clears the variables', () => {
    const env: NodeJS.ProcessEnv = {
      LISTEN_PID: '42',
      LISTEN_FDS: '2',
      LISTEN_FDNAMES: 'fleet:other',
    };
    expect(listenFds(env, 42)).toEqual([
      { fd: 3, name: 'fleet' },
      { fd: 4, name: 'other' },
    ]);
    expect(env).toEqual({});
  });

  it('ignores sockets meant for another process or malformed counts', () => {
    expect(listenFds({ LISTEN_PID: '41', LISTEN_FDS: '1' }, 42)).toEqual([]);
    expect(listenFds({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42)).toEqual([]);
    expect(listenFds({}, 42)).toEqual([]);
  });
});
