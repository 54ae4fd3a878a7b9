import type { ClusterApi } from '../../../src/api/types';
import { MachineCache } from '../../../src/cli/cluster-data';
import { startGaveUp, UNPLACEABLE_MS, waitForUnitStates } from '../../../src/cli/wait';
import { Unit, type UnitFailure } from '../../../src/gen/flotilla/v1/flotilla';

const M = 'a'.repeat(32);
const machines = new MachineCache({
  listMachines: () => Promise.resolve({ machines: [{ id: M, ip: '10.0.0.1', metadata: {} }] }),
} as unknown as ClusterApi);
const failure = (timeMs: number): UnitFailure => ({
  machineId: M,
  result: 'exit-code',
  exitStatus: 3,
  hasExitStatus: true,
  timeMs,
});

describe('a blocking start gives up, saying why', () => {
  it('on a failure after the wait began, not on the one the unit had before', async () => {
    const why = startGaveUp(new Map([['x.service', failure(1)]]), machines);
    const old = Unit.fromPartial({ name: 'x.service', phase: 'failed', lastFailure: failure(1) });
    expect(await why('x.service', old)).toBeUndefined();
    const again = Unit.fromPartial({ name: 'x.service', phase: 'failed', lastFailure: failure(2) });
    expect(await why('x.service', again)).toBe(
      'unit x.service failed on aaaaaaaa.../10.0.0.1: exit-code, exit status 3',
    );
    // Failed once, running again: nothing to give up on.
    const up = Unit.fromPartial({ name: 'x.service', phase: 'launched', lastFailure: failure(2) });
    expect(await why('x.service', up)).toBeUndefined();
  });

  it('when the scheduler says for UNPLACEABLE_MS why it cannot place the unit', async () => {
    let now = 1000;
    const why = startGaveUp(new Map(), machines, () => now);
    const waiting = Unit.fromPartial({
      name: 'p.service',
      phase: 'waiting',
      reason: 'no machine satisfies MachineMetadata region=mars',
    });
    expect(await why('p.service', waiting)).toBeUndefined();
    now += UNPLACEABLE_MS - 1;
    expect(await why('p.service', waiting)).toBeUndefined();
    // Placed in between: the clock starts again.
    expect(await why('p.service', Unit.fromPartial({ phase: 'scheduled' }))).toBeUndefined();
    now += 10;
    expect(await why('p.service', waiting)).toBeUndefined();
    now += UNPLACEABLE_MS;
    expect(await why('p.service', waiting)).toBe(
      'unit p.service cannot be placed: no machine satisfies MachineMetadata region=mars',
    );
    // Waiting without a reason (nothing said yet) is not unplaceable.
    expect(await why('q.service', Unit.fromPartial({ phase: 'waiting' }))).toBeUndefined();
  });

  it('load and stop (no failures to compare) give up on an unplaceable unit only', async () => {
    let now = 0;
    const why = startGaveUp(undefined, machines, () => now);
    const failed = Unit.fromPartial({
      name: 'x.service',
      phase: 'failed',
      lastFailure: failure(2),
    });
    expect(await why('x.service', failed)).toBeUndefined();
    const waiting = Unit.fromPartial({ name: 'p.service', phase: 'waiting', reason: 'r' });
    expect(await why('p.service', waiting)).toBeUndefined();
    now += UNPLACEABLE_MS;
    expect(await why('p.service', waiting)).toBe('unit p.service cannot be placed: r');
  });
});

describe('a blocking start of a unit that runs and exits (a oneshot)', () => {
  /** A cluster API whose unit and start count follow `steps`, one step per GetUnit. */
  function cluster(steps: { state: string; starts: number }[]) {
    let i = 0;
    const now = () => steps[Math.min(i, steps.length - 1)];
    const api = {
      getUnit: () => {
        i++;
        return Promise.resolve(
          Unit.fromPartial({
            name: 'once.service',
            targetState: 'launched',
            targetMachine: M,
            currentState: now().state,
          }),
        );
      },
      listUnitStates: () =>
        Promise.resolve({
          states: [{ name: 'once.service', machineId: M, starts: now().starts }],
          nextPageToken: '',
        }),
      listMachines: () => Promise.resolve({ machines: [{ id: M, ip: '10.0.0.1', metadata: {} }] }),
      watch: () => ({
        [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('no watch')) }),
      }),
    } as unknown as ClusterApi;
    return api;
  }
  const run = (api: ClusterApi, startsBefore: Map<string, number>) => {
    const lines: string[] = [];
    const errors = waitForUnitStates({
      api,
      names: ['once.service'],
      target: 'launched',
      attempts: 2,
      attemptMs: 500,
      machines: new MachineCache(api),
      io: { out: (l) => lines.push(l), err: () => undefined, stderrIsTTY: false },
      startsBefore,
    });
    return errors.then((e) => ({ errors: e, lines }));
  };

  it('is launched once its agent started it again and it is back at loaded', async () => {
    const api = cluster([
      { state: 'loaded', starts: 1 },
      { state: 'loaded', starts: 1 },
      { state: 'loaded', starts: 2 },
    ]);
    expect(await run(api, new Map([['once.service', 1]]))).toEqual({
      errors: [],
      lines: ['Unit once.service launched on aaaaaaaa.../10.0.0.1'],
    });
  });

  it('is not launched while loaded with the start count it had before (not started yet)', async () => {
    const api = cluster([{ state: 'loaded', starts: 1 }]);
    expect(await run(api, new Map([['once.service', 1]]))).toEqual({
      errors: ['timed out waiting for unit once.service to report state launched'],
      lines: [],
    });
  });
});
