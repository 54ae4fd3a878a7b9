import { useMemo } from 'preact/hooks';
import type { VizGraph } from '../../src/viz/graph';
import type { Layout } from '../../src/viz/layout';
import { chartAttributes, chartInner } from '../../src/viz/chart-svg';

export interface ChartProps {
  graph: VizGraph;
  /** Positions computed by ELK when the front-end was built (src/viz/layout.ts). */
  layout: Layout;
  /** Leaf state id → count (undefined: the machine has no cluster-wide counts). */
  counts?: Record<string, number>;
  compare?: Record<string, number>;
  onPick?: (stateId: string) => void;
}

/**
 * A machine drawn from its definition, laid out by ELK, with a count on each state: the markup
 * the server draws too (src/viz/chart-svg.ts), set in one go when the counts change. A click on
 * a state is found from the element clicked.
 */
export function Chart({ graph, layout, counts, compare, onPick }: ChartProps) {
  const html = useMemo(
    () => chartInner(layout, { machine: graph.machine, counts, compare, clickable: !!onPick }),
    [layout, graph.machine, counts, compare, !!onPick],
  );
  return (
    <svg
      {...chartAttributes(layout, graph.machine)}
      dangerouslySetInnerHTML={{ __html: html }}
      onClick={(e) => {
        const state = (e.target as Element).closest('[data-state]')?.getAttribute('data-state');
        if (state && onPick) onPick(state);
      }}
    />
  );
}
