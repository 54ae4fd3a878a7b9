/**
 * flotillad under systemd: readiness and watchdog notifications (sd_notify) and socket
 * activation (sd_listen_fds).
 *
 * sd_notify is one datagram on the unix socket named by NOTIFY_SOCKET. Node's core has no unix
 * datagram sockets (dgram is UDP only), and a native addon for one call is not worth a compiler
 * in the install path; so flotillad runs systemd's own `systemd-notify` with the assignments.
 * systemd then receives the message from a child of the daemon, not from its main PID, which is
 * why packaging/flotillad.service sets `NotifyAccess=all`. systemd-notify (since systemd 246)
 * waits until the manager has processed the message (a barrier), so the child exiting quickly
 * does not lose the attribution to the service. Without NOTIFY_SOCKET every call is a no-op.
 */
import { execFile } from 'node:child_process';
import type { Logger } from '../log';

/** Runs `systemd-notify ARGS…`; resolves with an error message, or undefined on success. */
export type NotifyExec = (args: string[], env: NodeJS.ProcessEnv) => Promise<string | undefined>;

const runSystemdNotify: NotifyExec = (args, env) =>
  new Promise((resolve) => {
    execFile('systemd-notify', args, { env, timeout: 10_000 }, (err, _out, stderr) =>
      resolve(
        err ? `${err.message.split('\n')[0]}${stderr ? `: ${stderr.trim()}` : ''}` : undefined,
      ),
    );
  });

export class SystemdNotifier {
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly exec: NotifyExec = runSystemdNotify,
  ) {}

  /** Whether the daemon runs under a service manager that listens for notifications. */
  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /**
   * The watchdog interval systemd expects (WatchdogSec=), in ms, when it applies to this
   * process; undefined otherwise.
   */
  watchdogMs(pid = process.pid): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return undefined;
    if (this.env.WATCHDOG_PID && Number(this.env.WATCHDOG_PID) !== pid) return undefined;
    return usec / 1000;
  }

  /** Sends `assignments` (READY=1, STATUS=…); failures are logged, never thrown. */
  async notify(...assignments: string[]): Promise<boolean> {
    if (!this.enabled) return false;
    const err = await this.exec(assignments, this.env);
    if (err) {
      this.log.warn('systemd notification failed', {
        message: assignments.join(' '),
        error: err,
        hint: 'needs systemd-notify on PATH and NotifyAccess=all in the unit',
      });
      return false;
    }
    return true;
  }

  ready(status: string): Promise<boolean> {
    return this.notify('READY=1', `STATUS=${status}`);
  }

  stopping(): Promise<boolean> {
    this.stopWatchdog();
    return this.notify('STOPPING=1', 'STATUS=shutting down; units keep running');
  }

  /**
   * Pings the watchdog at half its interval while the event loop runs (a stuck loop misses the
   * pings and systemd restarts the daemon; its units are not the daemon's to lose: see the
   * unit's KillMode). No-op without WatchdogSec=.
   */
  startWatchdog(): void {
    const ms = this.watchdogMs();
    if (ms === undefined || this.watchdog) return;
    const ping = (): void => void this.notify('WATCHDOG=1');
    ping();
    this.watchdog = setInterval(ping, Math.max(500, ms / 2));
    this.watchdog.unref();
    this.log.info('systemd watchdog on', { interval_ms: Math.max(500, ms / 2) });
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}

/** A listening socket handed over by systemd (socket activation). */
export interface ActivatedSocket {
  fd: number;
  /** FileDescriptorName= of the socket unit (default: the socket unit's name). */
  name: string;
}

/** The first file descriptor systemd passes (SD_LISTEN_FDS_START). */
const LISTEN_FDS_START = 3;

/**
 * The sockets systemd passed to this process (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), as
 * sd_listen_fds(3) reads them; the variables are removed from `env` so children do not inherit
 * them. Empty when not socket-activated or when the sockets are meant for another process.
 */
export function listenFds(
  env: NodeJS.ProcessEnv = process.env,
  pid = process.pid,
): ActivatedSocket[] {
  const count = Number(env.LISTEN_FDS);
  const forUs = env.LISTEN_PID !== undefined && Number(env.LISTEN_PID) === pid;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (!forUs || !Number.isInteger(count) || count <= 0) return [];
  return Array.from({ length: count }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: names[i] || 'unknown',
  }));
}
