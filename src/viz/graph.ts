import type { AnyStateMachine } from 'xstate';

/**
 * A state machine as a graph, read from its XState definition (the state nodes of
 * `machine.root`): states (nested ones inside their parents), and every transition that leads
 * somewhere — `on` events, eventless `always`, delayed `after` — with its guard. Nothing here is
 * drawn by hand: change a machine and its graph changes.
 */
export interface VizNode {
  /** Path from the root, joined with '.' ('' is the root itself, the machine). */
  id: string;
  key: string;
  parent?: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The child entered first (compound states). */
  initial?: string;
  description?: string;
  /** Events handled without leaving the state (transitions with no target). */
  internal: string[];
}

export interface VizEdge {
  /** Source state id; '' for transitions defined on the root (taken from any state). */
  source: string;
  target: string;
  kind: 'on' | 'always' | 'after';
  /** The event name; for `after`, the delay ("after 500ms"); '' for `always`. */
  event: string;
  guard?: string;
}

export interface VizGraph {
  machine: string;
  nodes: VizNode[];
  edges: VizEdge[];
}

interface StateNodeLike {
  id: string;
  key: string;
  path: string[];
  type: VizNode['type'];
  description?: string;
  states: Record<string, StateNodeLike>;
  initial?: { target: StateNodeLike[] };
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
  after: TransitionLike[];
}

interface TransitionLike {
  eventType: string;
  target?: readonly StateNodeLike[];
  guard?: unknown;
  delay?: number | string;
}

const AFTER = /^xstate\.after\.([^.]+)\./;

/** The graph of a machine's definition. */
export function machineGraph(machine: AnyStateMachine): VizGraph {
  const root = machine.root as unknown as StateNodeLike;
  const nodes: VizNode[] = [];
  const edges: VizEdge[] = [];
  const idOf = (n: StateNodeLike): string => n.path.join('.');
  const visit = (n: StateNodeLike): void => {
    const id = idOf(n);
    const internal = new Set<string>();
    const add = (t: TransitionLike, kind: VizEdge['kind']): void => {
      const event = kind === 'always' ? '' : kind === 'after' ? afterLabel(t) : String(t.eventType);
      if (!t.target || t.target.length === 0) {
        if (event) internal.add(event);
        return;
      }
      for (const target of t.target) {
        const e: VizEdge = { source: id, target: idOf(target), kind, event };
        const guard = guardLabel(t.guard);
        if (guard) e.guard = guard;
        edges.push(e);
      }
    };
    for (const [eventType, list] of n.transitions) {
      const kind = AFTER.test(eventType) ? 'after' : 'on';
      for (const t of list) add(t, kind);
    }
    for (const t of n.always ?? []) add(t, 'always');
    const node: VizNode = {
      id,
      key: id === '' ? machine.id : n.key,
      type: n.type,
      internal: [...internal],
    };
    if (n.path.length > 0) node.parent = n.path.slice(0, -1).join('.');
    const first = n.initial?.target[0];
    if (first) node.initial = idOf(first);
    if (n.description) node.description = n.description;
    nodes.push(node);
    for (const child of Object.values(n.states)) visit(child);
  };
  visit(root);
  return { machine: machine.id, nodes, edges };
}

function afterLabel(t: TransitionLike): string {
  const delay = t.delay ?? AFTER.exec(t.eventType)?.[1] ?? '?';
  return typeof delay === 'number' || /^\d+$/.test(String(delay))
    ? `after ${delay}ms`
    : `after ${delay}`;
}

/** A guard's name, with its parameters ("becomes(phase=launched)"); inline functions by name. */
export function guardLabel(guard: unknown): string | undefined {
  if (guard === undefined || guard === null) return undefined;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || 'guard';
  if (typeof guard === 'object') {
    const g = guard as { type?: unknown; params?: unknown };
    const name = typeof g.type === 'string' ? g.type : 'guard';
    if (g.params && typeof g.params === 'object') {
      const args = Object.entries(g.params as Record<string, unknown>)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(', ');
      return `${name}(${args})`;
    }
    return name;
  }
  return String(guard);
}

/** The leaf states (those a snapshot can be in), by id. */
export function leafStates(g: VizGraph): string[] {
  const parents = new Set(g.nodes.map((n) => n.parent).filter((p) => p !== undefined));
  return g.nodes.filter((n) => n.id !== '' && !parents.has(n.id)).map((n) => n.id);
}

/**
 * The leaf state ids of an XState snapshot value: 'launched' → ['launched'],
 * { placed: 'loaded' } → ['placed.loaded'] (several for parallel states).
 */
export function stateIds(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (value && typeof value === 'object') {
    const out: string[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v && typeof v === 'object' && Object.keys(v).length === 0) out.push(prefix + k);
      else out.push(...stateIds(v, `${prefix}${k}.`));
    }
    return out;
  }
  return [];
}
