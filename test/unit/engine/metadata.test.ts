import { ErrorCode } from '../../../src/errors';
import { foldAll } from '../../../src/engine/fold';
import { effectiveMetadata, patchOverlay } from '../../../src/engine/metadata';
import { METADATA_MAX_KEYS } from '../../../src/engine/requests';
import { decodeState, encodeState } from '../../../src/engine/snapshot';
import { emptyState, machineMetadata } from '../../../src/engine/state';
import type { FlotillaEvent } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';

const reported = { region: 'us-east', disk: 'ssd' };

describe('a machine metadata overlay', () => {
  it('sets, forgets and hides key by key; keys not named and the agent keys are left alone', () => {
    let o = patchOverlay({}, reported, { role: 'db', tier: 'gold' });
    expect(o).toEqual({ role: 'db', tier: 'gold' });
    o = patchOverlay(o, reported, { tier: '', disk: '', nothing: '' });
    // tier: only the API set it, forgotten; disk: the agent's, hidden; nothing: no-op.
    expect(o).toEqual({ disk: '', role: 'db' });
    expect(effectiveMetadata(reported, o)).toEqual({ region: 'us-east', role: 'db' });
    // The agent's configuration changes: its region shows, its disk stays hidden.
    expect(effectiveMetadata({ region: 'eu', disk: 'nvme' }, o)).toEqual({
      region: 'eu',
      role: 'db',
    });
    o = patchOverlay(o, reported, { disk: 'hdd' });
    expect(effectiveMetadata(reported, o)).toEqual({ disk: 'hdd', region: 'us-east', role: 'db' });
  });

  it('refuses a bad key or value, and more keys than the limit, naming them', () => {
    expect(() => patchOverlay({}, reported, { 'a b': '' })).toThrow(/invalid metadata key "a b"/);
    expect(() => patchOverlay({}, reported, { a: 'x,y' })).toThrow(/invalid metadata value/);
    const full = Object.fromEntries(
      Array.from({ length: METADATA_MAX_KEYS }, (_, i) => [`k${i}`, 'v']),
    );
    let err: unknown;
    try {
      patchOverlay(full, reported, { disk: '' });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect((err as Error).message).toContain(`the limit is ${METADATA_MAX_KEYS}`);
  });

  it('is folded from the log and kept through a snapshot: a removal stays a removal', () => {
    let index = 0;
    const ev = (b: object): FlotillaEvent =>
      ({ ...b, index: ++index, epoch: 1, time: 1000 + index, v: SCHEMA_VERSION }) as FlotillaEvent;
    const state = emptyState();
    foldAll(
      [
        ev({ type: 'MachineJoined', machine: 'm1', ip: '10.0.0.1', metadata: reported }),
        ev({ type: 'MachineMetadataSet', machine: 'm1', metadata: { disk: '', role: 'db' } }),
      ],
      state,
    );
    expect(machineMetadata(state.machines.get('m1')!)).toEqual({ region: 'us-east', role: 'db' });
    const restored = decodeState(encodeState(state));
    expect(machineMetadata(restored.machines.get('m1')!)).toEqual({
      region: 'us-east',
      role: 'db',
    });
  });
});
