import fs from 'node:fs';
import path from 'node:path';
import { createMachine } from 'xstate';
import { agentUnitMachine } from '../../../src/machines/agent-unit';
import { guardLabel, leafStates, machineGraph, stateIds } from '../../../src/viz/graph';
import { toDot, toMermaid } from '../../../src/viz/render';
import { renderDiagrams } from '../../../src/cli/commands/viz';
import { generatedDiagrams, regenerateDiagrams } from '../../../src/viz/docs';
import { VIZ_MACHINE_NAMES } from '../../../src/viz/machines';

const nested = createMachine({
  id: 'door',
  initial: 'closed',
  on: { BREAK: '.broken' },
  states: {
    closed: {
      initial: 'unlocked',
      on: { OPEN: { target: 'open', guard: { type: 'may', params: { who: 'me' } } } },
      states: {
        unlocked: { on: { LOCK: 'locked', KNOCK: {} } },
        locked: { on: { UNLOCK: 'unlocked' }, after: { 500: 'unlocked' } },
      },
    },
    open: { always: [{ guard: 'windy', target: 'closed' }], description: 'Wide open.' },
    broken: { type: 'final' },
  },
});

describe('machineGraph', () => {
  test('the agent-unit machine: every state and the transitions its definition has', () => {
    const g = machineGraph(agentUnitMachine);
    const leaves = leafStates(g);
    expect(leaves).toHaveLength(11);
    expect(leaves).toEqual(expect.arrayContaining(['adopting', 'loading', 'active', 'retrying']));
    expect(g.nodes.find((n) => n.id === '')!.initial).toBe('adopting');
    expect(g.edges).toContainEqual({
      source: 'loading',
      target: 'loaded',
      kind: 'on',
      event: 'OP_SUCCEEDED',
      guard: 'isLoadResult',
    });
    expect(g.edges).toContainEqual({
      source: 'adopting',
      target: 'absent',
      kind: 'always',
      event: '',
      guard: 'foundNothing',
    });
    // Every edge joins two states of the machine.
    const ids = new Set(g.nodes.map((n) => n.id));
    for (const e of g.edges) expect(ids.has(e.source) && ids.has(e.target)).toBe(true);
    expect(g.edges.length).toBeGreaterThanOrEqual(34);
  });

  test('nested states, root transitions, delays, eventless and targetless transitions', () => {
    const g = machineGraph(nested);
    expect(g.machine).toBe('door');
    expect(leafStates(g).sort()).toEqual(['broken', 'closed.locked', 'closed.unlocked', 'open']);
    expect(g.nodes.find((n) => n.id === 'closed')).toMatchObject({
      type: 'compound',
      initial: 'closed.unlocked',
      parent: '',
    });
    expect(g.nodes.find((n) => n.id === 'closed.unlocked')!.internal).toEqual(['KNOCK']);
    expect(g.nodes.find((n) => n.id === 'open')!.description).toBe('Wide open.');
    expect(g.edges).toEqual(
      expect.arrayContaining([
        { source: '', target: 'broken', kind: 'on', event: 'BREAK' },
        { source: 'closed', target: 'open', kind: 'on', event: 'OPEN', guard: 'may(who=me)' },
        { source: 'closed.locked', target: 'closed.unlocked', kind: 'after', event: 'after 500ms' },
        { source: 'open', target: 'closed', kind: 'always', event: '', guard: 'windy' },
      ]),
    );
    expect(g.edges).toHaveLength(6);
  });

  test('mermaid: composite states in blocks, dotted ids mapped, root transitions from "any"', () => {
    const m = toMermaid(machineGraph(nested));
    expect(m).toContain('state closed {\n    [*] --> closed__unlocked\n');
    expect(m).toContain('state "locked" as closed__locked');
    expect(m).toContain('closed__locked --> closed__unlocked: after 500ms');
    expect(m).toContain('any_state --> broken: BREAK');
    expect(m).toContain('open --> closed: [windy]');
    expect(m).toContain('broken --> [*]');
  });

  test('dot: clusters for composite states, edges clipped at them', () => {
    const d = toDot(machineGraph(nested));
    expect(d).toContain('subgraph "cluster_closed"');
    expect(d).toContain(
      '"closed.__start" -> "open" [label="OPEN [may(who=me)]", ltail="cluster_closed"]',
    );
    expect(d).toContain(
      '"open" -> "closed.__start" [label="[windy]", lhead="cluster_closed", style=dashed]',
    );
    expect(d).toContain('"broken" [label="broken", peripheries=2]');
  });

  test('stateIds flattens snapshot values', () => {
    expect(stateIds('launched')).toEqual(['launched']);
    expect(stateIds({ placed: 'loaded' })).toEqual(['placed.loaded']);
    expect(stateIds({ a: { b: 'c' }, d: {} })).toEqual(['a.b.c', 'd']);
    expect(guardLabel(undefined)).toBeUndefined();
    expect(guardLabel(function named() {})).toBe('named');
  });
});

describe('flotilla viz --format and the docs', () => {
  test('an unknown machine is refused, naming the known ones', () => {
    expect(() => renderDiagrams('mermaid', ['nope'])).toThrow(/unknown machine nope .*agent-unit/);
  });

  test('the diagrams in docs/ are the ones the code draws', () => {
    const dir = path.join(__dirname, '../../../docs');
    const seen = new Set<string>();
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.md'))) {
      const doc = fs.readFileSync(path.join(dir, f), 'utf8');
      for (const m of generatedDiagrams(doc)) seen.add(m);
      // If this fails: npm run diagrams
      expect({ file: f, text: regenerateDiagrams(doc) }).toEqual({ file: f, text: doc });
    }
    expect([...seen].sort()).toEqual([...VIZ_MACHINE_NAMES].sort());
  });
});
