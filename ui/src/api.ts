import type { VizGraph } from '../../src/viz/graph';
import type { Layout } from '../../src/viz/layout';
import type { CountsReply, MachineRow, Range, TimelineEntry, UnitRow } from '../../src/viz/views';

export type { CountsReply, MachineRow, Range, TimelineEntry, UnitRow };

export type Counts = Record<string, Record<string, number>>;

export interface Point {
  index: number;
  time: number;
  live: boolean;
}

/** assets/machines.json, written by npm run build: each machine's graph and its layout. */
export interface GraphsReply {
  machines: { name: string; title: string; graph: VizGraph; layout: Layout }[];
}

export interface UnitReply extends Point {
  name: string;
  exists: boolean;
  state: string;
  unit?: { target: string; machine: string; global: boolean; description: string; hash: string };
  reported: {
    machine: string;
    load: string;
    active: string;
    sub: string;
    result?: string;
    mainPid?: number;
  }[];
  timeline: TimelineEntry[];
  /** Events of the unit after this point. */
  later: number;
}

/** The query every view carries: the point in time and the filter. */
export interface Query {
  at: string;
  compare: string;
  name: string;
  machine: string;
  meta: string;
}

export const QUERY_KEYS: (keyof Query)[] = ['at', 'compare', 'name', 'machine', 'meta'];

export function readQuery(search: string): Query {
  const p = new URLSearchParams(search);
  const q = {} as Query;
  for (const k of QUERY_KEYS) q[k] = p.get(k) ?? '';
  return q;
}

export function queryString(q: Partial<Query>, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const k of QUERY_KEYS) if (q[k]) p.set(k, q[k]!);
  for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path.startsWith('/') ? path : '/ui/api/' + path);
  const body = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body;
}

export function fmtTime(ms: number): string {
  if (!ms) return '—';
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}
