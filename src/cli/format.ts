/** Cell formatting shared by the list commands, exactly as fleetctl printed them. */

export interface MachineRef {
  id: string;
  ip?: string;
}

/** `32d3a898...` (fleet's ShortID: the first 8 characters), or the whole ID with --full. */
export function machineIdLegend(id: string, full: boolean): string {
  return full ? id : `${id.slice(0, 8)}...`;
}

/** `32d3a898.../10.0.0.1`: the ID legend plus `/<ip>` when the machine has one. */
export function machineFullLegend(m: MachineRef, full: boolean): string {
  const legend = machineIdLegend(m.id, full);
  return m.ip ? `${legend}/${m.ip}` : legend;
}

/** 7 hex characters, or all 40 with --full; `-` when there is none. */
export function formatHash(hash: string, full: boolean): string {
  if (!hash) return '-';
  return full ? hash : hash.slice(0, 7);
}

/** fleetctl printed `-` for a missing value. */
export function dash(s: string | undefined): string {
  return s ? s : '-';
}

/** `k=v` pairs sorted by key, joined with `,`; `-` when empty. */
export function formatMetadata(md: Readonly<Record<string, string>>): string {
  const keys = Object.keys(md).sort();
  if (keys.length === 0) return '-';
  return keys.map((k) => `${k}=${md[k]}`).join(',');
}

/**
 * Go's %q for the strings fleetctl quoted (`Invalid key in output format: "x"`): backslash
 * escapes for quotes, backslashes and control characters; printable text as is.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}
