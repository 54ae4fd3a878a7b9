import type { VizGraph } from '../../src/viz/graph';
import type { Layout } from '../../src/viz/layout';

const ANY = '(any state)';

export interface ChartProps {
  graph: VizGraph;
  /** Positions computed by ELK when the front-end was built (src/viz/layout.ts). */
  layout: Layout;
  /** Leaf state id → count (undefined: the machine has no cluster-wide counts). */
  counts?: Record<string, number>;
  compare?: Record<string, number>;
  onPick?: (stateId: string) => void;
}

function sumUnder(counts: Record<string, number>, id: string): number {
  let n = 0;
  for (const [k, v] of Object.entries(counts)) if (k === id || k.startsWith(id + '.')) n += v;
  return n;
}

/** A machine drawn from its definition, laid out by ELK, with a count on each state. */
export function Chart({ graph, layout, counts, compare, onPick }: ChartProps) {
  const pad = 12;
  return (
    <svg
      class="chart"
      data-machine={graph.machine}
      viewBox={`${-pad} ${-pad} ${layout.width + 2 * pad} ${layout.height + 2 * pad}`}
      width={layout.width + 2 * pad}
      height={layout.height + 2 * pad}
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="9"
          refY="5"
          markerWidth="7"
          markerHeight="7"
          orient="auto-start-reverse"
        >
          <path d="M 0 0 L 10 5 L 0 10 z" fill="#6b7280" />
        </marker>
      </defs>
      {layout.boxes
        .filter((b) => b.compound)
        .map((b) => (
          <g key={b.id} class="compound">
            <rect x={b.x} y={b.y} width={b.w} height={b.h} rx="10" />
            <text x={b.x + 10} y={b.y + 18}>
              {b.label}
            </text>
          </g>
        ))}
      {layout.lines.map((l) => (
        <g key={l.id + l.points[0].x} class={'edge' + (l.dashed ? ' dashed' : '')}>
          <polyline
            points={l.points.map((p) => `${p.x},${p.y}`).join(' ')}
            marker-end="url(#arrow)"
          />
          {l.label && (
            <text x={l.lx} y={l.ly + 10}>
              {l.label}
            </text>
          )}
        </g>
      ))}
      {layout.boxes
        .filter((b) => !b.compound)
        .map((b) => {
          if (b.id === ANY)
            return (
              <text
                key={b.id}
                class="any"
                x={b.x + b.w / 2}
                y={b.y + b.h / 2 + 4}
                text-anchor="middle"
              >
                {ANY}
              </text>
            );
          const n = counts ? sumUnder(counts, b.id) : undefined;
          const was = compare ? sumUnder(compare, b.id) : undefined;
          const delta = n !== undefined && was !== undefined ? n - was : 0;
          return (
            <g
              key={b.id}
              class={
                'state' +
                (n ? ' occupied' : '') +
                (b.final ? ' final' : '') +
                (onPick ? ' clickable' : '')
              }
              data-state={b.id}
              onClick={() => onPick?.(b.id)}
            >
              <title>{b.description ?? b.label}</title>
              <rect x={b.x} y={b.y} width={b.w} height={b.h} rx="8" />
              {b.initial && <circle cx={b.x - 6} cy={b.y + b.h / 2} r="4" class="initial" />}
              <text
                x={b.x + b.w / 2}
                y={b.y + (n === undefined ? b.h / 2 + 4 : 18)}
                text-anchor="middle"
                class="name"
              >
                {b.label}
              </text>
              {n !== undefined && (
                <text x={b.x + b.w / 2} y={b.y + 36} text-anchor="middle" class="count">
                  {n.toLocaleString('en')}
                  {delta !== 0 ? ` (${delta > 0 ? '+' : ''}${delta})` : ''}
                </text>
              )}
            </g>
          );
        })}
    </svg>
  );
}
