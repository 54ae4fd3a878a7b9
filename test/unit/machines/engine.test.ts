import { createActor, initialTransition, transition } from 'xstate';
import { engineMachineMachine } from '../../../src/machines/engine-machine';
import { engineUnitMachine, type EngineUnitEvent } from '../../../src/machines/engine-unit';

const running = { load: 'loaded', active: 'active', sub: 'running', hash: 'h' };
const loadedOnly = { load: 'loaded', active: 'inactive', sub: 'dead', hash: 'h' };

function run(
  events: EngineUnitEvent[],
  input = { name: 'u.service', target: 'inactive' as const, global: false },
) {
  let [s] = initialTransition(engineUnitMachine, input);
  const seen: string[] = [String(s.value)];
  for (const e of events) {
    [s] = transition(engineUnitMachine, s, e);
    seen.push(s.status === 'done' ? 'done' : String(s.value));
  }
  return { seen, last: s };
}

describe('engineUnit machine', () => {
  it('follows a unit from submit to launched and back', () => {
    const { seen, last } = run([
      { type: 'TARGET_SET', target: 'launched' },
      { type: 'SCHEDULED', machine: 'm1' },
      { type: 'REPORTED', machine: 'm1', state: loadedOnly },
      { type: 'REPORTED', machine: 'm1', state: running },
      { type: 'TARGET_SET', target: 'loaded' },
      { type: 'REPORTED', machine: 'm1', state: loadedOnly },
      { type: 'UNSCHEDULED', machine: 'm1', reason: 'machine lost' },
      { type: 'TARGET_SET', target: 'inactive' },
      { type: 'DESTROYED' },
    ]);
    expect(seen).toEqual([
      'inactive',
      'waiting',
      'scheduled',
      'loaded',
      'launched',
      'launched',
      'loaded',
      'waiting',
      'inactive',
      'done',
    ]);
    expect(last.context.lastReason).toBe('machine lost');
  });

  it('ignores reports and unschedules for another machine', () => {
    const { seen } = run([
      { type: 'TARGET_SET', target: 'launched' },
      { type: 'SCHEDULED', machine: 'm1' },
      { type: 'REPORTED', machine: 'm2', state: running },
      { type: 'UNSCHEDULED', machine: 'm2', reason: 'x' },
    ]);
    expect(seen).toEqual(['inactive', 'waiting', 'scheduled', 'scheduled', 'scheduled']);
  });

  it('keeps a global unit in global whatever its target', () => {
    const { seen } = run(
      [
        { type: 'TARGET_SET', target: 'launched' },
        { type: 'TARGET_SET', target: 'inactive' },
      ],
      {
        name: 'g.service',
        target: 'inactive',
        global: true,
      },
    );
    expect(seen).toEqual(['global', 'global', 'global']);
  });

  it('starts in the state its input describes (a restored unit)', () => {
    const [s] = initialTransition(engineUnitMachine, {
      name: 'r.service',
      target: 'launched',
      global: false,
      machine: 'm1',
      reported: running,
    });
    expect(s.value).toBe('launched');
  });
});

describe('engineMachine machine', () => {
  it('goes alive → suspect → expiring (declares lost) → lost → rejoining → alive, by the times in its events', () => {
    const declared: string[] = [];
    const actor = createActor(
      engineMachineMachine.provide({
        actions: {
          declareLost: () => void declared.push('lost'),
          declareJoined: () => void declared.push('joined'),
        },
      }),
      { input: { id: 'm1', ttlMs: 3000, now: 0 } },
    ).start();
    const value = () => String(actor.getSnapshot().value);
    actor.send({ type: 'TICK', now: 1000 });
    expect(value()).toBe('alive');
    actor.send({ type: 'TICK', now: 1600 });
    expect(value()).toBe('suspect');
    actor.send({ type: 'HEARTBEAT', now: 1700 });
    expect(value()).toBe('alive');
    actor.send({ type: 'TICK', now: 4800 });
    expect(value()).toBe('expiring');
    expect(declared).toEqual(['lost']);
    actor.send({ type: 'LOST' });
    expect(value()).toBe('lost');
    actor.send({ type: 'HEARTBEAT', now: 9000 });
    expect(value()).toBe('rejoining');
    expect(declared).toEqual(['lost', 'joined']);
    actor.send({ type: 'JOINED', now: 9001 });
    expect(value()).toBe('alive');
    actor.stop();
  });
});
