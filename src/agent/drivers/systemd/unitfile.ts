import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** Unit types systemd knows; a file in the units directory with another suffix is ignored. */
const UNIT_TYPES = [
  'service',
  'socket',
  'device',
  'mount',
  'automount',
  'swap',
  'target',
  'path',
  'timer',
  'slice',
  'scope',
];
const UNIT_NAME = new RegExp(`^[A-Za-z0-9:_.\\\\@-]+\\.(${UNIT_TYPES.join('|')})$`);

/**
 * True for a name systemd accepts as a unit name that is also safe as a file name in the units
 * directory: no "/", no leading dot (temp files start with one), at most 255 bytes.
 */
export function isValidUnitName(name: string): boolean {
  return name.length <= 255 && !name.startsWith('.') && UNIT_NAME.test(name);
}

/** "web@1.service" → "service". */
export function unitType(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/**
 * systemd's D-Bus object path for a unit (bus_label_escape in systemd's sources, documented in
 * org.freedesktop.systemd1(5)): every byte that is not [A-Za-z0-9], and a leading digit, becomes
 * "_xx" (lower-case hex). Computing it saves a GetUnit/LoadUnit round trip per unit.
 */
export function unitObjectPath(name: string): string {
  let out = '';
  const bytes = Buffer.from(name, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    const alpha = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    const digit = c >= 0x30 && c <= 0x39;
    if (alpha || (digit && i > 0)) out += String.fromCharCode(c);
    else out += `_${c.toString(16).padStart(2, '0')}`;
  }
  return `/org/freedesktop/systemd1/unit/${out || '_'}`;
}

/** SHA-1 hex of a unit file's exact contents: the hash the agent compares with its target. */
export function sha1(contents: string): string {
  return createHash('sha1').update(contents, 'utf8').digest('hex');
}

interface Entry {
  section: string;
  key: string;
  value: string;
}

/** Parses systemd's ini syntax just enough for the driver: sections, keys, continuations. */
function entries(contents: string): Entry[] {
  const out: Entry[] = [];
  let section = '';
  let pending = '';
  for (const raw of contents.split('\n')) {
    let line = raw.replace(/\r$/, '');
    if (pending === '' && /^\s*[#;]/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    line = (pending + line).trim();
    pending = '';
    if (line === '') continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

/** True when the file has an [Install] section with at least one setting (fleet enabled those). */
export function hasInstallSection(contents: string): boolean {
  return entries(contents).some((e) => e.section === 'Install');
}

/**
 * The absolute executables of a service's ExecStart= lines that can be checked before systemd
 * runs them (see missingExecutable). Parsed once per file version, checked at each start.
 */
export function checkableExecutables(contents: string): string[] {
  const service = entries(contents).filter((e) => e.section === 'Service');
  if (service.some((e) => e.key === 'RootDirectory' || e.key === 'RootImage')) return [];
  let commands: string[] = [];
  for (const e of service) {
    if (e.key !== 'ExecStart') continue;
    // An empty assignment resets the list (drop-in semantics, also valid within one file).
    commands = e.value === '' ? [] : [...commands, e.value];
  }
  const paths: string[] = [];
  for (const cmd of commands) {
    const prefix = /^[@\-:+!]*/.exec(cmd)?.[0] ?? '';
    if (prefix.includes('-')) continue;
    const rest = cmd.slice(prefix.length).trimStart();
    const close = rest.indexOf('"', 1);
    const exe = rest.startsWith('"')
      ? rest.slice(1, close > 0 ? close : undefined)
      : rest.split(/\s+/)[0];
    if (exe.startsWith('/') && !/[%$]/.test(exe)) paths.push(exe);
  }
  return paths;
}

/** The first of `paths` that is not an executable file here, if any (no file is opened). */
export function firstMissing(paths: string[]): string | undefined {
  for (const exe of paths) {
    try {
      fs.accessSync(exe, fs.constants.X_OK);
      if (!fs.statSync(exe).isFile()) return exe;
    } catch {
      return exe;
    }
  }
  return undefined;
}

/**
 * For a service whose ExecStart= names an absolute executable that does not exist here, that
 * path; otherwise undefined.
 *
 * Why: for Type=simple services systemd reports the start job "done" as soon as it has forked;
 * the exec failure (status 203/EXEC) only shows up afterwards as a transition to "failed". The
 * driver still starts the unit (systemd's state stays the truth and goes to onState), but it can
 * tell the caller at once that this start cannot work. Commands systemd resolves itself
 * (relative names, specifiers, variables), commands whose failure is ignored ("-" prefix) and
 * services with their own root directory are not checked.
 */
export function missingExecutable(contents: string): string | undefined {
  return firstMissing(checkableExecutables(contents));
}
