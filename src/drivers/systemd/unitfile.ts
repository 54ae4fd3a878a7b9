import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { optionValues, parseUnitFile } from '../../unit';
import type { UnitOption } from '../../unit';

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

/**
 * The options of a unit file the agent wrote (Flotilla's one parser). A file it cannot read
 * (only possible for one stored before the API checked options) gives none: systemd then
 * judges the file itself.
 */
function entries(contents: string): UnitOption[] {
  try {
    return parseUnitFile(contents);
  } catch {
    return [];
  }
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
  const options = entries(contents);
  if (options.some((e) => e.section === 'Service' && /^Root(Directory|Image)$/.test(e.name))) {
    return [];
  }
  // An empty assignment resets the list (drop-in semantics, also valid within one file).
  const commands = optionValues(options, 'Service', 'ExecStart');
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
