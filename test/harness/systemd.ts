import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dbus from 'dbus-next';
import { HarnessError, HarnessErrorCode } from './errors';
import { removeCgroup } from './registry';
import { requireBinary, ManagedServer } from './server';

export interface SystemdOptions {
  /** Path of the systemd binary (default: $FLOTILLA_SYSTEMD_BIN or /usr/lib/systemd/systemd). */
  binary?: string;
}

export interface SystemdManager extends AsyncDisposable {
  /** D-Bus address of the manager's session bus ("unix:path=…/bus"). */
  readonly busAddress: string;
  /** Environment for systemctl/journalctl --user against this manager. */
  readonly env: NodeJS.ProcessEnv;
  /** The cgroup name under which the manager and its units run. */
  readonly cgroup: string;
  /** A directory for unit files and other test data, removed on dispose. */
  readonly dir: string;
  readonly server: ManagedServer;
  /** PID of the systemd --user process. */
  readonly pid: number;
  /** Stops the manager (and so its units), removes its cgroups and temp dir. */
  dispose(): Promise<void>;
}

const DEFAULT_BIN = '/usr/lib/systemd/systemd';
const CGROUP_ROOT = '/sys/fs/cgroup';
let counter = 0;

/** The hierarchies a new cgroup must be created in: v1 hybrid (name=systemd + unified) or v2 only. */
function cgroupDirs(name: string): string[] {
  if (fs.existsSync(path.join(CGROUP_ROOT, 'systemd'))) {
    const dirs = [path.join(CGROUP_ROOT, 'systemd', name)];
    if (fs.existsSync(path.join(CGROUP_ROOT, 'unified')))
      dirs.push(path.join(CGROUP_ROOT, 'unified', name));
    return dirs;
  }
  if (fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers')))
    return [path.join(CGROUP_ROOT, name)];
  throw new HarnessError(
    HarnessErrorCode.Unsupported,
    `no usable cgroup hierarchy under ${CGROUP_ROOT}`,
  );
}

/**
 * Whether the manager answers on its bus yet. Not yet is false, whatever the way: the socket
 * file can exist before the bus daemon listens on it (ECONNREFUSED, emitted as an 'error'
 * event that, unheard, would crash the process), or the call can go unanswered for a while.
 */
export async function managerAnswers(busAddress: string): Promise<boolean> {
  const bus = dbus.sessionBus({ busAddress });
  let timer: NodeJS.Timeout | undefined;
  const notYet = new Promise<boolean>((resolve) => {
    bus.on('error', () => resolve(false));
    timer = setTimeout(() => resolve(false), 2000);
  });
  const answer = (async () => {
    const obj = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
    const props = obj.getInterface('org.freedesktop.DBus.Properties');
    const state = await props.Get('org.freedesktop.systemd1.Manager', 'SystemState');
    // "starting" is fine for loading units; "running"/"degraded" once default.target is reached.
    return typeof state.value === 'string' && state.value.length > 0;
  })().catch(() => false);
  try {
    return await Promise.race([answer, notYet]);
  } finally {
    clearTimeout(timer);
    bus.disconnect();
  }
}

/**
 * Starts a systemd user manager with its own mount namespace, its own cgroup,
 * its own HOME and its own session bus, following ARCHITECTURE.md's recipe.
 * The cgroup is what keeps the manager from taking over the root cgroup (and
 * moving every process on the machine into its scope); it is created before
 * the manager starts and the manager is moved into it before `exec`.
 */
export async function startSystemd(opts: SystemdOptions = {}): Promise<SystemdManager> {
  const binary = opts.binary ?? process.env.FLOTILLA_SYSTEMD_BIN ?? DEFAULT_BIN;
  requireBinary('systemd', binary, 'systemd');
  requireBinary('unshare', '/usr/bin/unshare', 'util-linux');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-systemd-'));
  const name = `flotilla-test-${process.pid}-${++counter}`;
  const home = path.join(dir, 'home');
  const xdg = path.join(dir, 'xdg');
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(xdg, { recursive: true, mode: 0o700 });
  fs.chmodSync(xdg, 0o700);
  const cgroups = cgroupDirs(name);
  for (const cg of cgroups) fs.mkdirSync(cg, { recursive: true });
  const busAddress = `unix:path=${xdg}/bus`;
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: xdg,
    DBUS_SESSION_BUS_ADDRESS: busAddress,
  };
  const joinCgroups = cgroups.map((cg) => `echo $$ > ${cg}/cgroup.procs`).join('; ');
  const script =
    `${joinCgroups}; mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && ` +
    `exec ${binary} --user`;
  const server = new ManagedServer({
    name: 'systemd --user',
    binary,
    debianPackage: 'systemd',
    command: '/usr/bin/unshare',
    args: ['--mount', '--propagation', 'private', 'sh', '-c', script],
    env,
    dir,
    cgroups,
    ready: async () => fs.existsSync(path.join(xdg, 'bus')) && (await managerAnswers(busAddress)),
    readyTimeoutMs: 30000,
  });
  try {
    await server.start();
  } catch (err) {
    for (const cg of cgroups) removeCgroup(cg);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const dispose = async (): Promise<void> => {
    // SIGTERM makes the manager stop its units; give it time, then clean the cgroups.
    await server.stop('SIGTERM', 10000);
    for (const cg of cgroups) removeCgroup(cg);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return {
    busAddress,
    env,
    cgroup: name,
    dir,
    server,
    pid: server.pid ?? -1,
    dispose,
    [Symbol.asyncDispose]: dispose,
  };
}
