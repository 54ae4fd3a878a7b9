import type { FlotillaEvent } from '../events/types';
import type { UnitFailure } from '../engine/state';

/** `failed (exit-code, status 3) on m1 at 2026-…`, or '' when none. */
export function describeFailure(f: UnitFailure | undefined): string {
  if (!f) return '';
  const status = f.exitStatus === undefined ? '' : `, status ${f.exitStatus}`;
  return `${f.result}${status} on ${f.machine} at ${new Date(f.time).toISOString()}`;
}

/** An event's details as `key=value` words (target, machine, reason, observed state…). */
export function eventDetails(e: FlotillaEvent): string[] {
  const x: string[] = [];
  if ('unit' in e) x.push(`unit=${e.unit}`);
  if ('machine' in e) x.push(`machine=${e.machine}`);
  if ('target' in e) x.push(`target=${e.target}`);
  if ('hash' in e) x.push(`hash=${e.hash.slice(0, 7)}`);
  if ('ip' in e && e.ip) x.push(`ip=${e.ip}`);
  if ('address' in e) x.push(`address=${e.address}`);
  if ('metadata' in e) {
    // In an API overlay (MachineMetadataSet) the empty value hides the agent's key.
    const set = Object.entries(e.metadata).filter(([, v]) => v !== '');
    const hidden = Object.keys(e.metadata).filter((k) => e.metadata[k] === '');
    if (set.length > 0) x.push(`metadata=${set.map(([k, v]) => `${k}=${v}`).join(',')}`);
    if (hidden.length > 0) x.push(`hidden=${hidden.join(',')}`);
  }
  if ('state' in e) {
    const s = e.state;
    if (!s) x.push('state=gone');
    else {
      x.push(`state=${s.load}/${s.active}/${s.sub}`);
      if (s.mainPid) x.push(`pid=${s.mainPid}`);
      if (s.result) x.push(`result=${s.result}`);
      if (s.exitStatus !== undefined) x.push(`status=${s.exitStatus}`);
    }
  }
  if ('reason' in e) x.push(`reason="${e.reason}"`);
  return x;
}

/** `12 2026-11-22T02:21:32.123Z epoch=1 UnitScheduled unit=… machine=… reason="…"` */
export function describeEvent(e: FlotillaEvent): string {
  const d = eventDetails(e);
  return `${e.index} ${new Date(e.time).toISOString()} epoch=${e.epoch} ${e.type}${d.length ? ' ' + d.join(' ') : ''}`;
}
