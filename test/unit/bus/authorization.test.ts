import { permissionsOf, renderAuthorization } from '../../../src/bus/authorization';
import { subjects } from '../../../src/protocol';

/** What `flotilla bus-auth` grants (docs/security.md); enforced by nats-server (bus-identity.test.ts). */
const S = subjects('prod');

describe('bus permissions', () => {
  it('an engine publishes schedules and resyncs only under its own name, and reads only its own requests', () => {
    const p = permissionsOf('prod', { machine: 'e1', publicKey: 'U', engine: true });
    expect(p.publish).toEqual(
      expect.arrayContaining([
        S.scheduleFrom('*', 'e1'),
        S.resyncFrom('e1'),
        S.agentRpcFrom('*', 'e1'),
      ]),
    );
    expect(p.publish).not.toContain(S.schedule('*'));
    expect(p.publish).not.toContain(S.agentRpc('*'));
    expect(p.publish).not.toContain(S.resync);
    expect(p.subscribe).toContain(S.scheduleGetOfAll('e1'));
    expect(p.subscribe.some((x) => x.includes('.leader.*') || x.includes('leader.>'))).toBe(false);
  });

  it('an agent reads its schedule from any sender and asks only through leader-addressed requests', () => {
    const p = permissionsOf('prod', { machine: 'm1', publicKey: 'U', engine: false });
    expect(p.subscribe).toEqual(
      expect.arrayContaining([S.scheduleFromAny('m1'), S.resyncFromAny, S.agentRpcFromAny('m1')]),
    );
    expect(p.subscribe).not.toContain(S.agentRpc('m1'));
    expect(p.publish.some((x) => x.includes('.rpc'))).toBe(false);
    expect(p.publish).toContain(S.scheduleGetOf('*', 'm1'));
    expect(p.publish).not.toContain(S.scheduleGet('m1'));
    expect(p.publish.some((x) => x.includes('.schedule.') && x.includes('agent.'))).toBe(false);
    expect(
      renderAuthorization('prod', [{ machine: 'm1', publicKey: 'UKEY', engine: false }]),
    ).toContain(`"${S.scheduleFromAny('m1')}"`);
  });
});
