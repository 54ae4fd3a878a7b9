import type { VizEdge, VizGraph, VizNode } from './graph';

/** How an edge is labelled in every drawing: "EVENT [guard]", "after 5ms", "[guard]". */
export function edgeLabel(e: VizEdge): string {
  const guard = e.guard ? `[${e.guard}]` : '';
  return [e.event, guard].filter(Boolean).join(' ');
}

/** Root-level transitions (taken from any state) are drawn from this pseudo-state. */
export const ANY_STATE = '(any state)';

function childrenOf(g: VizGraph): Map<string, VizNode[]> {
  const out = new Map<string, VizNode[]>();
  for (const n of g.nodes) {
    if (n.parent === undefined) continue;
    const list = out.get(n.parent) ?? [];
    list.push(n);
    out.set(n.parent, list);
  }
  return out;
}

/** A mermaid `stateDiagram-v2` of the graph. */
export function toMermaid(g: VizGraph): string {
  const kids = childrenOf(g);
  const mid = (id: string): string => (id === '' ? 'any_state' : id.replace(/\./g, '__'));
  const lines = ['stateDiagram-v2'];
  const block = (parent: VizNode, indent: string): void => {
    if (parent.initial) lines.push(`${indent}[*] --> ${mid(parent.initial)}`);
    for (const n of kids.get(parent.id) ?? []) {
      if (n.id.includes('.')) lines.push(`${indent}state "${n.key}" as ${mid(n.id)}`);
      if (kids.has(n.id)) {
        lines.push(`${indent}state ${mid(n.id)} {`);
        block(n, indent + '  ');
        lines.push(`${indent}}`);
      }
      if (n.type === 'final') lines.push(`${indent}${mid(n.id)} --> [*]`);
    }
  };
  const root = g.nodes.find((n) => n.id === '')!;
  block(root, '  ');
  if (g.edges.some((e) => e.source === '')) lines.push(`  state "${ANY_STATE}" as any_state`);
  for (const e of g.edges) {
    const label = edgeLabel(e);
    lines.push(`  ${mid(e.source)} --> ${mid(e.target)}${label ? ': ' + label : ''}`);
  }
  return lines.join('\n') + '\n';
}

const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** A Graphviz `digraph` of the graph; compound states are clusters. */
export function toDot(g: VizGraph): string {
  const kids = childrenOf(g);
  const start = (id: string): string => (id === '' ? '__start' : `${id}.__start`);
  // An edge to or from a compound state attaches to its start point, clipped at the cluster.
  const anchor = (id: string): string => (kids.has(id) && id !== '' ? start(id) : id);
  const lines = [
    `digraph ${q(g.machine)} {`,
    '  rankdir=LR; compound=true;',
    '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const block = (parent: VizNode, indent: string): void => {
    if (parent.initial) {
      lines.push(`${indent}${q(start(parent.id))} [shape=point, label=""];`);
      lines.push(`${indent}${q(start(parent.id))} -> ${q(anchor(parent.initial))};`);
    }
    for (const n of kids.get(parent.id) ?? []) {
      if (kids.has(n.id)) {
        lines.push(`${indent}subgraph ${q('cluster_' + n.id)} {`, `${indent}  label=${q(n.key)};`);
        block(n, indent + '  ');
        lines.push(`${indent}}`);
      } else {
        const shape = n.type === 'final' ? ', peripheries=2' : '';
        lines.push(`${indent}${q(n.id)} [label=${q(n.key)}${shape}];`);
      }
    }
  };
  block(
    g.nodes.find((n) => n.id === '')!,
    '  ',
  );
  if (g.edges.some((e) => e.source === ''))
    lines.push(`  ${q(ANY_STATE)} [shape=plaintext, fontcolor=gray40];`);
  for (const e of g.edges) {
    const attrs = [`label=${q(edgeLabel(e))}`];
    if (kids.has(e.source) && e.source !== '') attrs.push(`ltail=${q('cluster_' + e.source)}`);
    if (kids.has(e.target) && e.target !== '') attrs.push(`lhead=${q('cluster_' + e.target)}`);
    if (e.kind === 'always') attrs.push('style=dashed');
    const from = e.source === '' ? ANY_STATE : anchor(e.source);
    lines.push(`  ${q(from)} -> ${q(anchor(e.target))} [${attrs.join(', ')}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
