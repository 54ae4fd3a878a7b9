import type { ClusterApi } from '../../../src/api/types';
import { ApiRouter, readOnlyView } from '../../../src/daemon/router';
import { ErrorCode } from '../../../src/errors';
import { apiWith } from '../../helpers/api-with';

const status = {
  leaderMachineId: 'self',
  leaderAddress: '127.0.0.1:1',
  epoch: 1,
  logIndex: 7,
  units: 3,
  machines: 2,
  snapshotIndex: 0,
};

/** An engine API that answers the cluster status as the leader of epoch 1. */
function leaderApi(): ClusterApi {
  return apiWith({ getClusterStatus: async () => ({ ...status }) });
}

describe('ApiRouter', () => {
  it('a leader whose lease may have lapsed neither answers as leader nor names itself', async () => {
    const router = new ApiRouter({ machine: 'self' }, undefined, { readRetryMs: 0 });
    let leads = true;
    router.setLeader({ machine: 'self', address: '127.0.0.1:1', epoch: 1 });
    router.setLocal(leaderApi(), () => leads);
    expect((await router.getClusterStatus({ resumeRescheduling: false })).leaderMachineId).toBe(
      'self',
    );
    leads = false;
    await expect(router.getClusterStatus({ resumeRescheduling: false })).rejects.toMatchObject({
      code: ErrorCode.NoLeader,
    });
  });

  it('after losing its term, serves its last state read-only and names no leader', async () => {
    const router = new ApiRouter({ machine: 'self' }, undefined, { readRetryMs: 0 });
    // The election key still names this daemon: the watch has not seen the new term yet.
    router.setLeader({ machine: 'self', address: '127.0.0.1:1', epoch: 1 });
    router.setStale(readOnlyView(leaderApi(), 'lost its lease'));
    const s = await router.getClusterStatus({ resumeRescheduling: false });
    expect(s).toMatchObject({ leaderMachineId: '', leaderAddress: '', logIndex: 7, units: 3 });
    await expect(router.createUnits({ units: [], replace: false } as never)).rejects.toMatchObject({
      code: ErrorCode.StoreUnavailable,
    });
    await expect(router.getClusterStatus({ resumeRescheduling: true })).rejects.toMatchObject({
      code: ErrorCode.StoreUnavailable,
    });
  });
});
