/**
 * systemd's specifiers (systemd.unit(5) "SPECIFIERS") for the process driver: what systemd
 * expands in `ExecStart=`, `Environment=`, `WorkingDirectory=` and `Description=` before it runs
 * a unit, so that a template `web@.service` with `ExecStart=/bin/web %i` runs `web 3` for
 * `web@3.service` under the process driver as it would under systemd.
 *
 * One left-to-right pass, as systemd's `specifier_printf` (fleet's `[X-Fleet]` expansion,
 * src/unit/name.ts, replaces one specifier after the other instead: a different rule for a
 * different section). An unknown specifier is refused, as systemd refuses the setting.
 */
import fs from 'node:fs';
import os from 'node:os';
import { ErrorCode, FlotillaError } from '../errors';
import { splitUnitName } from '../unit';

/** Where the host-dependent specifiers come from (defaults: this host and user). */
export interface SpecifierHost {
  hostname: string;
  machineId: string;
  bootId: string;
  user: string;
  uid: number;
  home: string;
  shell: string;
  runtimeDir: string;
}

function readTrimmed(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().replaceAll('-', '');
  } catch {
    return '';
  }
}

let host: SpecifierHost | undefined;

/** This host's values (read once). */
export function thisHost(): SpecifierHost {
  if (host) return host;
  const info = os.userInfo();
  host = {
    hostname: os.hostname(),
    machineId: readTrimmed('/etc/machine-id'),
    bootId: readTrimmed('/proc/sys/kernel/random/boot_id'),
    user: info.username,
    uid: info.uid,
    home: info.homedir,
    shell: info.shell ?? '/bin/sh',
    runtimeDir: process.env.XDG_RUNTIME_DIR || (info.uid === 0 ? '/run' : `/run/user/${info.uid}`),
  };
  return host;
}

/** systemd's unit-name unescaping (`%I`, `%P`): `-` is `/`, `\xNN` a byte. */
export function unescapeUnitName(s: string): string {
  return s
    .replaceAll('-', '/')
    .replace(/\\x([0-9a-fA-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Expands the specifiers of `value` for `unit`. Throws UNIT_FILE_INVALID on an unknown one. */
export function expandSystemdSpecifiers(
  value: string,
  unit: string,
  h: SpecifierHost = thisHost(),
): string {
  if (!value.includes('%')) return value;
  const info = splitUnitName(unit);
  const prefix = info?.prefix ?? unit;
  const instance = info?.instance ?? '';
  const table: Record<string, () => string> = {
    '%': () => '%',
    n: () => unit,
    N: () => info?.name ?? unit,
    p: () => prefix,
    P: () => unescapeUnitName(prefix),
    i: () => instance,
    I: () => unescapeUnitName(instance),
    f: () => `/${unescapeUnitName(instance || prefix)}`,
    j: () => prefix.split('-').at(-1) ?? prefix,
    H: () => h.hostname,
    l: () => h.hostname.split('.')[0],
    m: () => h.machineId,
    b: () => h.bootId,
    u: () => h.user,
    U: () => String(h.uid),
    h: () => h.home,
    s: () => h.shell,
    t: () => h.runtimeDir,
    T: () => '/tmp',
    V: () => '/var/tmp',
  };
  return value.replace(/%(.?)/gs, (whole, c: string) => {
    const f = table[c];
    if (f) return f();
    throw new FlotillaError(
      ErrorCode.UnitFileInvalid,
      `${unit}: unknown specifier "${whole}" in ${JSON.stringify(value)} (write %% for a literal %)`,
      { details: { unit } },
    );
  });
}
