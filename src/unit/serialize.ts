/**
 * The canonical form of a unit (go-systemd's `unit.Serialize`) and its hash (fleet's
 * `UnitFile.Hash`: SHA-1 of that form). Two files that parse to the same options have the same
 * hash, whatever their comments, blank lines or whitespace.
 */
import { createHash } from 'node:crypto';
import type { UnitOption } from './types';

/**
 * Sections in the order first seen, a repeated section merged into the first; each section is
 * `[Name]` then one `Name=Value` line per option; one blank line between sections, none at the
 * end. No options: the empty string.
 */
export function serializeUnitFile(options: readonly UnitOption[]): string {
  if (options.length === 0) return '';
  const bySection = new Map<string, UnitOption[]>();
  for (const opt of options) {
    const list = bySection.get(opt.section);
    if (list) list.push(opt);
    else bySection.set(opt.section, [opt]);
  }
  const parts: string[] = [];
  for (const [section, opts] of bySection) {
    let s = `[${section}]\n`;
    for (const o of opts) s += `${o.name}=${o.value}\n`;
    parts.push(s);
  }
  return parts.join('\n');
}

/** SHA-1 (hex) of the canonical serialization, as fleet's unit hash; the CLI shows 7 characters. */
export function unitHash(options: readonly UnitOption[]): string {
  return createHash('sha1').update(serializeUnitFile(options), 'utf8').digest('hex');
}

/** The first `Description=` of the `[Unit]` section, or '' (fleet's `UnitFile.Description`). */
export function unitDescription(options: readonly UnitOption[]): string {
  for (const o of options) if (o.section === 'Unit' && o.name === 'Description') return o.value;
  return '';
}
