import type { Layout } from './layout';

/**
 * A machine's chart as SVG markup: the layout ELK computed at build time, with a count on each
 * state. One function for both sides: flotillad puts it in the page it serves (the chart and its
 * counts are on screen once the HTML is parsed, before any script runs), and the page's script
 * sets it as the chart's markup when the counts move. Markup parsed by the browser in one go
 * costs a fraction of building the same few hundred elements one by one from script.
 */

const ANY = '(any state)';
const PAD = 12;

/** Leaf state id → count. */
export type StateCounts = Record<string, number>;

export interface ChartOptions {
  /** The machine's name (the svg's `data-machine`). */
  machine: string;
  /** Counts on the states (undefined: the machine has no cluster-wide counts). */
  counts?: StateCounts;
  /** Counts at a pinned point: each state shows its difference from it. */
  compare?: StateCounts;
  /** States are links (the page opens the units in a clicked state). */
  clickable?: boolean;
}

const ESC: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text or an attribute value, escaped for HTML and SVG. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

/** The count of a state: its own and every state under it (a compound state's leaves). */
export function sumUnder(counts: StateCounts, id: string): number {
  let n = 0;
  for (const k in counts) if (k === id || k.startsWith(id + '.')) n += counts[k];
  return n;
}

/** The count shown on a state: `1,234`, with `(+5)` when compared and different. */
export function countText(n: number, was: number | undefined): string {
  const delta = was === undefined ? 0 : n - was;
  return n.toLocaleString('en') + (delta !== 0 ? ` (${delta > 0 ? '+' : ''}${delta})` : '');
}

/** The inside of the chart's `<svg>` (see chartSvg). */
export function chartInner(layout: Layout, o: ChartOptions): string {
  const out: string[] = [
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280"/></marker></defs>',
  ];
  for (const b of layout.boxes)
    if (b.compound)
      out.push(
        `<g class="compound"><rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="10"/><text x="${b.x + 10}" y="${b.y + 18}">${esc(b.label)}</text></g>`,
      );
  for (const l of layout.lines) {
    const points = l.points.map((p) => `${p.x},${p.y}`).join(' ');
    out.push(
      `<g class="edge${l.dashed ? ' dashed' : ''}"><polyline points="${points}" marker-end="url(#arrow)"/>` +
        (l.label ? `<text x="${l.lx}" y="${l.ly + 10}">${esc(l.label)}</text>` : '') +
        '</g>',
    );
  }
  for (const b of layout.boxes) {
    if (b.compound) continue;
    if (b.id === ANY) {
      out.push(
        `<text class="any" x="${b.x + b.w / 2}" y="${b.y + b.h / 2 + 4}" text-anchor="middle">${esc(ANY)}</text>`,
      );
      continue;
    }
    const n = o.counts ? sumUnder(o.counts, b.id) : undefined;
    const was = o.compare ? sumUnder(o.compare, b.id) : undefined;
    const cls =
      'state' +
      (n ? ' occupied' : '') +
      (b.final ? ' final' : '') +
      (o.clickable ? ' clickable' : '');
    out.push(
      `<g class="${cls}" data-state="${esc(b.id)}"><title>${esc(b.description ?? b.label)}</title>` +
        `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>` +
        (b.initial ? `<circle cx="${b.x - 6}" cy="${b.y + b.h / 2}" r="4" class="initial"/>` : '') +
        `<text x="${b.x + b.w / 2}" y="${b.y + (n === undefined ? b.h / 2 + 4 : 18)}" text-anchor="middle" class="name">${esc(b.label)}</text>` +
        (n !== undefined
          ? `<text x="${b.x + b.w / 2}" y="${b.y + 36}" text-anchor="middle" class="count">${countText(n, was)}</text>`
          : '') +
        '</g>',
    );
  }
  return out.join('');
}

/** The `<svg>` element's attributes (see chartSvg). */
export function chartAttributes(layout: Layout, machine: string): Record<string, string> {
  const w = layout.width + 2 * PAD;
  const h = layout.height + 2 * PAD;
  return {
    class: 'chart',
    'data-machine': machine,
    viewBox: `${-PAD} ${-PAD} ${w} ${h}`,
    width: String(w),
    height: String(h),
  };
}

/** A machine drawn from its definition, laid out by ELK, with a count on each state. */
export function chartSvg(layout: Layout, o: ChartOptions): string {
  const attrs = Object.entries(chartAttributes(layout, o.machine))
    .map(([k, v]) => `${k}="${esc(v)}"`)
    .join(' ');
  return `<svg xmlns="http://www.w3.org/2000/svg" ${attrs}>${chartInner(layout, o)}</svg>`;
}

/** The machines whose states the leader counts across the cluster. */
export const COUNTED = new Set(['engine-unit', 'engine-machine']);

/** assets/machines.json, written by npm run build: each machine's graph and its layout. */
export interface MachinesFile {
  machines: { name: string; title: string; graph: { machine: string }; layout: Layout }[];
}

/** The machine a page's path shows as a chart ('' and charts/NAME), else undefined. */
export function chartOfRoute(rel: string): string | undefined {
  const parts = rel.split('/').filter(Boolean);
  if (parts.length === 0) return 'engine-unit';
  if (parts[0] === 'charts') return parts[1] ?? 'engine-unit';
  return undefined;
}

/** The total line of the page's header: `20,000 units · 50 machines`. */
export function totalText(counts: Record<string, StateCounts>): string {
  const sum = (c: StateCounts | undefined): number =>
    Object.values(c ?? {}).reduce((a, b) => a + b, 0);
  return `${sum(counts['engine-unit']).toLocaleString('en')} units · ${sum(counts['engine-machine'])} machines`;
}

/**
 * A chart page as the server sends it, before its script runs: the header, the machines' tabs
 * and the chart with its counts — the elements the script then takes over (same tags, same
 * order), so nothing moves when it does. Links are plain links until then.
 */
export function chartPageHtml(
  file: MachinesFile,
  name: string,
  search: string,
  counts: Record<string, StateCounts>,
  compare?: Record<string, StateCounts>,
): string {
  const m = file.machines.find((x) => x.name === name) ?? file.machines[0];
  const counted = COUNTED.has(m.name);
  const q = esc(search);
  const tabs = file.machines
    .map(
      (x) =>
        `<a href="/ui/charts/${esc(x.name)}${q}" class="${x.name === m.name ? 'tab active' : 'tab'}">${esc(x.name)}</a>`,
    )
    .join('');
  const chart = chartSvg(m.layout, {
    machine: m.graph.machine,
    counts: counted ? (counts[m.name] ?? {}) : undefined,
    compare: counted ? compare?.[m.name] : undefined,
    clickable: counted,
  });
  return (
    `<header><h1><a href="/ui/${q}">flotilla</a></h1><nav><a href="/ui/${q}">lifecycles</a><a href="/ui/machines${q}">machines</a></nav>` +
    `<span class="muted total">${esc(totalText(counts))}</span></header>` +
    `<main><section><nav class="tabs">${tabs}</nav><h2>${esc(m.title)} <span class="muted">(${esc(m.graph.machine)})</span></h2>` +
    `<div class="chart-wrap">${chart}</div></section></main>`
  );
}
