import os from 'node:os';

/** The D-Bus properties status text is built from (Unit and type-specific interfaces merged). */
export type UnitProperties = Record<string, unknown>;

/** systemd's "unset" for 64-bit counters (TasksCurrent, MemoryCurrent, …). */
const UINT64_MAX = 2n ** 64n - 1n;

const EXIT_STATUS: Record<number, string> = {
  0: 'SUCCESS',
  1: 'FAILURE',
  2: 'INVALIDARGUMENT',
  3: 'NOTIMPLEMENTED',
  4: 'NOPERMISSION',
  5: 'NOTINSTALLED',
  6: 'NOTCONFIGURED',
  7: 'NOTRUNNING',
  200: 'CHDIR',
  203: 'EXEC',
  204: 'MEMORY',
  209: 'STDOUT',
  216: 'GROUP',
  217: 'USER',
  226: 'NAMESPACE',
};

/** A D-Bus integer (u, t, i…) as a number; undefined for systemd's "unset" (UINT64_MAX). */
export function num(v: unknown): number | undefined {
  if (typeof v === 'bigint') return v === UINT64_MAX ? undefined : Number(v);
  if (typeof v === 'number') return v;
  return undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** "Thu 2025-01-02 10:00:00 UTC", in the local time zone, as systemctl prints it. */
export function formatTimestamp(usec: number): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(new Date(usec / 1000));
  const p = (t: Intl.DateTimeFormatPartTypes): string =>
    parts.find((x) => x.type === t)?.value ?? '';
  return `${p('weekday')} ${p('year')}-${p('month')}-${p('day')} ${p('hour')}:${p('minute')}:${p('second')} ${p('timeZoneName')}`;
}

/** "5s", "3min 2s", "2h 5min", "4 days": systemd's relative timestamp, coarsened. */
export function formatAgo(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}min ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}min`;
  return `${Math.floor(h / 24)} days`;
}

function formatBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}B` : `${v.toFixed(1)}${units[i]}`;
}

function exitDescription(code: number | undefined, status: number | undefined): string {
  if (code === undefined || status === undefined || code === 0) return '';
  if (code === 1) {
    const name = EXIT_STATUS[status];
    return `code=exited, status=${status}${name ? `/${name}` : ''}`;
  }
  const sig = Object.entries(os.constants.signals).find(([, n]) => n === status)?.[0];
  const how = code === 3 ? 'dumped' : 'killed';
  return `code=${how}, signal=${sig ? sig.replace(/^SIG/, '') : status}`;
}

/** Which timestamp systemctl shows after "since" for an ActiveState. */
function sinceProperty(active: string): string {
  switch (active) {
    case 'active':
    case 'reloading':
      return 'ActiveEnterTimestamp';
    case 'activating':
      return 'InactiveExitTimestamp';
    case 'deactivating':
      return 'ActiveExitTimestamp';
    default:
      return 'InactiveEnterTimestamp';
  }
}

/**
 * `systemctl status`-like text from D-Bus properties (no systemctl involved):
 *
 *   ● hello.service - Hello
 *        Loaded: loaded (/run/fleet/units/hello.service; linked-runtime; preset: enabled)
 *        Active: active (running) since Thu 2025-01-02 10:00:00 UTC; 5s ago
 *      Main PID: 1234 (sleep)
 *         Tasks: 1 (limit: 4915)
 *        Memory: 180.0K
 *        CGroup: /system.slice/hello.service
 *
 * `comm` names a process by PID (the agent runs on the unit's machine: /proc/<pid>/comm).
 */
export function formatStatus(
  unit: string,
  p: UnitProperties,
  nowMs: number,
  comm: (pid: number) => string | undefined,
): string {
  const load = str(p.LoadState);
  const active = str(p.ActiveState) || 'inactive';
  const sub = str(p.SubState) || 'dead';
  if (load === 'not-found' && active === 'inactive') return `Unit ${unit} could not be found.`;

  const bullet = active === 'failed' ? '×' : active === 'inactive' ? '○' : '●';
  const description = str(p.Description);
  const lines = [
    `${bullet} ${unit}${description && description !== unit ? ` - ${description}` : ''}`,
  ];

  const extra = [str(p.FragmentPath), str(p.UnitFileState)].filter(Boolean);
  if (str(p.UnitFilePreset)) extra.push(`preset: ${str(p.UnitFilePreset)}`);
  lines.push(`     Loaded: ${load}${extra.length ? ` (${extra.join('; ')})` : ''}`);
  const loadError = p.LoadError as [string, string] | undefined;
  if (load !== 'loaded' && loadError?.[1]) lines.push(`     Reason: ${loadError[1]}`);

  const result = str(p.Result);
  const state = active === 'failed' && result ? `failed (Result: ${result})` : `${active} (${sub})`;
  const since = num(p[sinceProperty(active)]);
  lines.push(
    `     Active: ${state}` +
      (since ? ` since ${formatTimestamp(since)}; ${formatAgo(nowMs - since / 1000)} ago` : ''),
  );

  const mainPid = num(p.MainPID) ?? 0;
  const execPid = num(p.ExecMainPID) ?? 0;
  if (mainPid > 0) {
    const name = comm(mainPid);
    lines.push(`   Main PID: ${mainPid}${name ? ` (${name})` : ''}`);
  } else if (execPid > 0) {
    const how = exitDescription(num(p.ExecMainCode), num(p.ExecMainStatus));
    lines.push(`   Main PID: ${execPid}${how ? ` (${how})` : ''}`);
  }
  const tasks = num(p.TasksCurrent);
  if (tasks !== undefined) {
    const max = num(p.TasksMax);
    lines.push(`      Tasks: ${tasks}${max !== undefined ? ` (limit: ${max})` : ''}`);
  }
  const memory = num(p.MemoryCurrent);
  if (memory !== undefined) lines.push(`     Memory: ${formatBytes(memory)}`);
  if (str(p.ControlGroup)) lines.push(`     CGroup: ${str(p.ControlGroup)}`);
  return lines.join('\n');
}
