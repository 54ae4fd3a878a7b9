import { createActor } from 'xstate';
import { LivenessJudge, type MachinePhase } from '../../../src/engine/liveness';
import { engineMachineMachine } from '../../../src/machines/engine-machine';

const TTL = 3000;
const phases = (o: Record<string, MachinePhase>) => new Map(Object.entries(o));
const none = new Set<string>();

describe('LivenessJudge', () => {
  it('declares a single silent machine lost at once (three machines, default threshold)', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    const v = j.judge(0, phases({ a: 'alive', b: 'alive', c: 'expiring' }), none);
    expect(v).toEqual({ declare: ['c'] });
    expect(j.held).toBeUndefined();
  });

  it('declares the only machine of a one-machine cluster lost', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    expect(j.judge(0, phases({ a: 'expiring' }), none).declare).toEqual(['a']);
  });

  it('holds when more than the threshold go silent within one TTL, counting late machines', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    // One expired, two others late: the leader itself is the likely cause.
    const v = j.judge(0, phases({ a: 'suspect', b: 'suspect', c: 'expiring' }), none);
    expect(v.declare).toEqual([]);
    expect(v.held).toEqual({ machines: ['c'], atRisk: 3, population: 3 });
    // Said once; still held while they stay silent, whatever the time.
    const v2 = j.judge(10 * TTL, phases({ a: 'expiring', b: 'expiring', c: 'expiring' }), none);
    expect(v2).toEqual({ declare: [] });
    expect(j.held?.machines).toEqual(['a', 'b', 'c']);
  });

  it('counts machines declared lost within the last TTL', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    const p = { a: 'alive', b: 'alive', c: 'alive', d: 'alive', e: 'alive', f: 'alive' };
    expect(j.judge(0, phases({ ...p, f: 'expiring' }), none).declare).toEqual(['f']);
    expect(j.judge(100, phases({ ...p, f: 'lost', e: 'expiring' }), none).declare).toEqual(['e']);
    // A third within one TTL: 3 of 6 > 1/3.
    const v = j.judge(200, phases({ ...p, f: 'lost', e: 'lost', d: 'expiring' }), none);
    expect(v.declare).toEqual([]);
    expect(v.held?.atRisk).toBe(3);
    // Machines heard again: the one still silent is declared, and the hold ends by itself.
    const v2 = j.judge(TTL + 150, phases({ ...p, f: 'lost', e: 'lost', d: 'expiring' }), none);
    expect(v2).toEqual({ declare: ['d'], resumed: 'machines-back' });
    expect(j.held).toBeUndefined();
  });

  it('resumes on the operator’s word: every held machine is declared', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    expect(j.resume()).toBe(false);
    const silent = phases({ a: 'alive', b: 'expiring', c: 'expiring' });
    expect(j.judge(0, silent, none).held).toBeDefined();
    expect(j.resume()).toBe(true);
    expect(j.judge(1, silent, none)).toEqual({ declare: ['b', 'c'], resumed: 'operator' });
    expect(j.held).toBeUndefined();
  });

  it('never declares a machine twice while its MachineLost is being committed', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 / 3 });
    const p = phases({ a: 'alive', b: 'alive', c: 'expiring' });
    expect(j.judge(0, p, new Set(['c']))).toEqual({ declare: [] });
  });

  it('threshold 1 turns the guard off', () => {
    const j = new LivenessJudge({ ttlMs: TTL, threshold: 1 });
    expect(j.judge(0, phases({ a: 'expiring', b: 'expiring' }), none).declare).toEqual(['a', 'b']);
  });
});

describe('engineMachine GRACE', () => {
  const start = () => {
    const declared: string[] = [];
    const actor = createActor(
      engineMachineMachine.provide({ actions: { declareLost: () => void declared.push('lost') } }),
      { input: { id: 'm1', ttlMs: TTL, now: 0 } },
    ).start();
    return { actor, declared, value: () => String(actor.getSnapshot().value) };
  };

  it('counts the TTL from the grace’s end, and cancels an expiry not yet committed', () => {
    const { actor, declared, value } = start();
    actor.send({ type: 'TICK', now: TTL + 1 });
    expect(value()).toBe('expiring');
    actor.send({ type: 'GRACE', until: 5000 });
    expect(value()).toBe('alive');
    actor.send({ type: 'TICK', now: 5000 + TTL });
    expect(value()).toBe('suspect');
    actor.send({ type: 'TICK', now: 5000 + TTL + 1 });
    expect(value()).toBe('expiring');
    expect(declared).toEqual(['lost', 'lost']);
  });

  it('never shortens a TTL and leaves a lost machine lost', () => {
    const { actor, value } = start();
    actor.send({ type: 'HEARTBEAT', now: 2000 });
    actor.send({ type: 'GRACE', until: 1000 });
    actor.send({ type: 'TICK', now: 2000 + TTL });
    expect(value()).toBe('suspect');
    actor.send({ type: 'TICK', now: 2000 + TTL + 1 });
    actor.send({ type: 'LOST' });
    actor.send({ type: 'GRACE', until: 99_999 });
    expect(value()).toBe('lost');
  });
});
