import { createActor, initialTransition, transition } from 'xstate';
import { engineMachineMachine } from '../../../src/machines/engine-machine';
import {
  engineUnitMachine,
  type EngineUnitEvent,
  type EngineUnitInput,
} from '../../../src/machines/engine-unit';

function run(
  events: EngineUnitEvent[],
  input: Partial<EngineUnitInput> & { name: string } = { name: 'u.service' },
) {
  let [s] = initialTransition(engineUnitMachine, {
    target: 'inactive',
    global: false,
    placed: false,
    lost: false,
    observed: 'none',
    ...input,
  });
  const seen: string[] = [JSON.stringify(s.value).replace(/"/g, '')];
  for (const e of events) {
    [s] = transition(engineUnitMachine, s, e);
    seen.push(s.status === 'done' ? 'done' : JSON.stringify(s.value).replace(/"/g, ''));
  }
  return { seen, last: s };
}

describe('engineUnit machine', () => {
  it('follows a unit from submit to launched, a failure, a lost machine and back', () => {
    const { seen, last } = run([
      { type: 'TARGET_SET', target: 'launched' },
      { type: 'UNPLACEABLE' },
      { type: 'SCHEDULED', observed: 'none' },
      { type: 'OBSERVED', observed: 'loaded' },
      { type: 'OBSERVED', observed: 'running' },
      { type: 'OBSERVED', observed: 'failed' },
      { type: 'OBSERVED', observed: 'running' },
      { type: 'UNSCHEDULED', lost: true, observed: 'none' },
      { type: 'SCHEDULED', observed: 'none' },
      { type: 'OBSERVED', observed: 'running' },
      { type: 'TARGET_SET', target: 'inactive' },
      { type: 'UNSCHEDULED', lost: false, observed: 'running' },
      { type: 'OBSERVED', observed: 'none' },
      { type: 'DESTROYED' },
    ]);
    expect(seen).toEqual([
      'inactive',
      'waiting',
      'waiting',
      'scheduled',
      'loaded',
      'launched',
      'failed',
      'launched',
      'rescheduling',
      'scheduled',
      'launched',
      'launched',
      // still running on the machine it left, until its agent reports it stopped
      'launched',
      'inactive',
      'done',
    ]);
    expect(last.status).toBe('done');
  });

  it('goes back to waiting when unscheduled for another reason while it still wants to run', () => {
    const { seen } = run(
      [
        { type: 'UNSCHEDULED', lost: false, observed: 'none' },
        { type: 'OBSERVED', observed: 'none' },
      ],
      { name: 'u.service', target: 'launched', placed: true },
    );
    expect(seen).toEqual(['scheduled', 'waiting', 'waiting']);
  });

  it('keeps a global unit in global; its substate follows what its machines observe', () => {
    const { seen } = run(
      [
        { type: 'TARGET_SET', target: 'launched' },
        { type: 'OBSERVED', observed: 'running' },
        { type: 'OBSERVED', observed: 'failed' },
        { type: 'TARGET_SET', target: 'inactive' },
        { type: 'OBSERVED', observed: 'none' },
      ],
      { name: 'g.service', global: true },
    );
    expect(seen).toEqual([
      '{global:inactive}',
      '{global:inactive}',
      '{global:launched}',
      '{global:failed}',
      '{global:failed}',
      '{global:inactive}',
    ]);
  });

  it('starts in the state its input describes (a restored unit)', () => {
    expect(
      run([], { name: 'r', target: 'launched', placed: true, observed: 'running' }).seen,
    ).toEqual(['launched']);
    expect(run([], { name: 'r', target: 'launched', lost: true }).seen).toEqual(['rescheduling']);
    expect(run([], { name: 'r', target: 'launched', placed: true }).seen).toEqual(['scheduled']);
  });

  it('every state but the final one says which events it accepts (a lifecycle, not a star)', () => {
    const states = engineUnitMachine.root.states;
    for (const [name, node] of Object.entries(states)) {
      if (name === 'destroyed') continue;
      const own = node.config.on ?? node.config.always;
      expect(own ?? node.config.states).toBeDefined();
    }
    // The root accepts only DESTROYED: everything else is decided inside the states.
    expect(Object.keys(engineUnitMachine.config.on ?? {})).toEqual(['DESTROYED']);
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
