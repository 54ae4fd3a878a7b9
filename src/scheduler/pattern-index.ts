/**
 * A multiset of glob patterns that answers "which patterns match this name?" without testing
 * every pattern: patterns are grouped by their literal prefix, so a name is only tested against
 * patterns whose prefix it starts with. Used for "which Conflicts=/Replaces= patterns in the
 * cluster target this unit?".
 */
import type { Glob } from '../unit/glob';
import { globOf } from '../unit/glob';

const NONE: readonly string[] = Object.freeze([]);

interface Entry {
  glob: Glob;
  refs: number;
}

export class PatternIndex {
  private readonly byPrefix = new Map<string, Map<string, Entry>>();
  /** Distinct prefix lengths present, ascending, with how many prefixes have each. */
  private lengths: number[] = [];
  private readonly lengthRefs = new Map<number, number>();

  /** Adds one reference to `pattern`. Malformed patterns match nothing and are not kept. */
  add(pattern: string): void {
    const glob = globOf(pattern);
    if (glob.bad) return;
    let group = this.byPrefix.get(glob.prefix);
    if (!group) {
      group = new Map();
      this.byPrefix.set(glob.prefix, group);
      const n = glob.prefix.length;
      const refs = this.lengthRefs.get(n) ?? 0;
      this.lengthRefs.set(n, refs + 1);
      if (refs === 0) this.lengths = [...this.lengths, n].sort((a, b) => a - b);
    }
    const e = group.get(pattern);
    if (e) e.refs++;
    else group.set(pattern, { glob, refs: 1 });
  }

  /** Drops one reference to `pattern`. */
  remove(pattern: string): void {
    const glob = globOf(pattern);
    if (glob.bad) return;
    const group = this.byPrefix.get(glob.prefix);
    const e = group?.get(pattern);
    if (!group || !e) return;
    if (--e.refs > 0) return;
    group.delete(pattern);
    if (group.size > 0) return;
    this.byPrefix.delete(glob.prefix);
    const n = glob.prefix.length;
    const refs = (this.lengthRefs.get(n) ?? 1) - 1;
    if (refs > 0) this.lengthRefs.set(n, refs);
    else {
      this.lengthRefs.delete(n);
      this.lengths = this.lengths.filter((l) => l !== n);
    }
  }

  /** The patterns that match `name`, in no particular order. */
  matching(name: string): readonly string[] {
    let out: string[] | undefined;
    for (const n of this.lengths) {
      if (n > name.length) break;
      const group = this.byPrefix.get(n === name.length ? name : name.slice(0, n));
      if (!group) continue;
      for (const [pattern, e] of group) if (e.glob.match(name)) (out ??= []).push(pattern);
    }
    return out ?? NONE;
  }
}
