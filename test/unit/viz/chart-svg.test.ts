import {
  chartOfRoute,
  chartPageHtml,
  chartSvg,
  type MachinesFile,
} from '../../../src/viz/chart-svg';
import type { Layout } from '../../../src/viz/layout';

const box = (id: string, over: Partial<Layout['boxes'][number]> = {}) => ({
  id,
  label: id.split('.').pop()!,
  x: 0,
  y: 0,
  w: 80,
  h: 40,
  compound: false,
  final: false,
  initial: false,
  ...over,
});

const layout: Layout = {
  width: 300,
  height: 100,
  boxes: [
    box('waiting', { initial: true }),
    box('global', { compound: true }),
    box('global.launched'),
    box('global.failed', { description: 'a <failed> unit' }),
  ],
  lines: [
    {
      id: 'e1',
      points: [
        { x: 0, y: 0 },
        { x: 10, y: 10 },
      ],
      label: 'OBSERVED [observesRunning]',
      lx: 5,
      ly: 5,
      dashed: false,
    },
  ],
};

/** The count drawn on a state, read back from the markup. */
function countOf(svg: string, state: string): string | undefined {
  const at = svg.indexOf(`data-state="${state}"`);
  if (at < 0) return undefined;
  return /<text[^>]*class="count">([^<]*)<\/text>/.exec(svg.slice(at).split('</g>')[0])?.[1];
}

describe('the chart as markup (server and page)', () => {
  test('each state shows its count, and its difference from a pinned point', () => {
    const svg = chartSvg(layout, {
      machine: 'engine-unit',
      counts: { waiting: 1234, 'global.launched': 3 },
      compare: { waiting: 1200, 'global.launched': 3 },
      clickable: true,
    });
    expect(countOf(svg, 'waiting')).toBe('1,234 (+34)');
    expect(countOf(svg, 'global.launched')).toBe('3');
    expect(countOf(svg, 'global.failed')).toBe('0');
    expect(svg).toContain('class="state occupied clickable" data-state="waiting"');
    expect(svg).toContain('class="state clickable" data-state="global.failed"');
    // Labels and descriptions are text, never markup.
    expect(svg).toContain('<title>a &lt;failed&gt; unit</title>');
    expect(svg).toContain('>OBSERVED [observesRunning]</text>');
  });

  test('a machine without cluster-wide counts draws its states with no count', () => {
    const svg = chartSvg(layout, { machine: 'agent' });
    expect(countOf(svg, 'waiting')).toBeUndefined();
    expect(svg).not.toContain('clickable');
  });

  test("a chart's URL names its machine; other views are not charts", () => {
    expect(chartOfRoute('')).toBe('engine-unit');
    expect(chartOfRoute('charts/agent')).toBe('agent');
    expect(chartOfRoute('units/a.service')).toBeUndefined();
    expect(chartOfRoute('machines')).toBeUndefined();
  });

  test('the page the server sends: header total, tabs keeping the query, the chart', () => {
    const file: MachinesFile = {
      machines: [
        { name: 'engine-unit', title: "A unit's lifecycle", graph: { machine: 'unit' }, layout },
        { name: 'agent', title: 'The agent', graph: { machine: 'agent' }, layout },
      ],
    };
    const html = chartPageHtml(file, 'engine-unit', '?name=a*&at=7', {
      'engine-unit': { waiting: 2, 'global.failed': 1 },
      'engine-machine': { alive: 4 },
    });
    expect(html).toContain('<span class="muted total">3 units · 4 machines</span>');
    expect(html).toContain('href="/ui/charts/agent?name=a*&amp;at=7" class="tab"');
    expect(html).toContain('A unit&#39;s lifecycle');
    expect(countOf(html, 'global.failed')).toBe('1');
  });
});
