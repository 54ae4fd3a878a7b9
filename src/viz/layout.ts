import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api';
import type { VizGraph } from './graph';

/**
 * Automatic layout of a machine's graph with ELK's layered algorithm. Run by `npm run build`
 * (scripts/build-ui.js) for every machine: the page gets positions ready to draw, and neither
 * the browser nor the leader runs ELK (1.5 MB of script, about a second per machine).
 */

export const ANY = '(any state)';

export interface Box {
  id: string;
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
  compound: boolean;
  final: boolean;
  initial: boolean;
  description?: string;
}

export interface Line {
  id: string;
  points: { x: number; y: number }[];
  label: string;
  lx: number;
  ly: number;
  dashed: boolean;
}

export interface Layout {
  width: number;
  height: number;
  boxes: Box[];
  lines: Line[];
}

const CHAR_W = 7;

function edgeLabel(e: VizGraph['edges'][number]): string {
  return [e.event, e.guard ? `[${e.guard}]` : ''].filter(Boolean).join(' ');
}

/** Lays a machine's graph out (positions of states, edge routes and labels). */
export async function layoutGraph(g: VizGraph): Promise<Layout> {
  const elkId = (id: string): string => (id === '' ? ANY : 's:' + id);
  const nodes = new Map<string, ElkNode>();
  const root: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'POLYLINE',
      'elk.layered.spacing.nodeNodeBetweenLayers': '70',
      'elk.spacing.nodeNode': '28',
      'elk.spacing.edgeLabel': '3',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
    },
    children: [],
    edges: [],
  };
  const parents = new Set(g.nodes.map((n) => n.parent));
  for (const n of g.nodes) {
    if (n.id === '') continue;
    const compound = parents.has(n.id);
    const node: ElkNode = {
      id: elkId(n.id),
      width: Math.max(90, n.key.length * CHAR_W + 30),
      height: 46,
      labels: [{ text: n.key }],
      children: compound ? [] : undefined,
      layoutOptions: compound
        ? { 'elk.padding': '[top=28,left=12,bottom=12,right=12]' }
        : undefined,
    };
    nodes.set(n.id, node);
  }
  for (const n of g.nodes) {
    if (n.id === '') continue;
    const parent = n.parent ? nodes.get(n.parent) : root;
    (parent ?? root).children!.push(nodes.get(n.id)!);
  }
  if (g.edges.some((e) => e.source === ''))
    root.children!.push({ id: ANY, width: 100, height: 30, labels: [{ text: ANY }] });
  g.edges.forEach((e, i) => {
    const text = edgeLabel(e);
    const edge: ElkExtendedEdge = {
      id: 'e' + i,
      sources: [elkId(e.source)],
      targets: [elkId(e.target)],
      labels: text ? [{ text, width: text.length * 5.6 + 4, height: 12 }] : [],
    };
    root.edges!.push(edge);
  });
  const out = await new ELK().layout(root);
  const boxes: Box[] = [];
  const offsets = new Map<string, { x: number; y: number }>([['root', { x: 0, y: 0 }]]);
  const byElk = new Map(g.nodes.filter((n) => n.id !== '').map((n) => [elkId(n.id), n]));
  const initials = new Set(g.nodes.map((n) => n.initial).filter(Boolean));
  const walk = (n: ElkNode, ox: number, oy: number): void => {
    for (const c of n.children ?? []) {
      const x = ox + (c.x ?? 0);
      const y = oy + (c.y ?? 0);
      offsets.set(c.id, { x, y });
      const v = byElk.get(c.id);
      boxes.push({
        id: v ? v.id : ANY,
        label: v ? v.key : ANY,
        x,
        y,
        w: c.width ?? 0,
        h: c.height ?? 0,
        compound: (c.children?.length ?? 0) > 0,
        final: v?.type === 'final',
        initial: v ? initials.has(v.id) : false,
        description: v?.description,
      });
      walk(c, x, y);
    }
  };
  walk(out, 0, 0);
  const lines: Line[] = [];
  for (const e of (out.edges ?? []) as (ElkExtendedEdge & { container?: string })[]) {
    const off = offsets.get(e.container ?? 'root') ?? { x: 0, y: 0 };
    const i = Number(e.id.slice(1));
    for (const s of e.sections ?? []) {
      const pts = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint].map((p) => ({
        x: p.x + off.x,
        y: p.y + off.y,
      }));
      const l = e.labels?.[0];
      lines.push({
        id: e.id,
        points: pts,
        label: l?.text ?? '',
        lx: (l?.x ?? 0) + off.x,
        ly: (l?.y ?? 0) + off.y,
        dashed: g.edges[i]?.kind === 'always',
      });
    }
  }
  return { width: out.width ?? 0, height: out.height ?? 0, boxes, lines };
}
