import { LocalHub } from '../../../src/bus/local';
import { requestAgent } from '../../../src/engine/agent-subjects';
import { ErrorCode } from '../../../src/errors';
import { subjects } from '../../../src/protocol';

/** Where the leader asks an agent for a unit's status or journal (docs/protocol.md). */
const S = subjects('c');
const req = { v: 1, kind: 'status', unit: 'a.service', epoch: 3 } as const;

function agentOn(hub: LocalHub, subject: string, seen: string[]): void {
  hub.connect().subscribe(subject, (m) => {
    seen.push(m.subject);
    m.respond?.(new TextEncoder().encode('ok'));
  });
}

describe('requestAgent', () => {
  it("named: under the leader's name only", async () => {
    const hub = new LocalHub();
    const seen: string[] = [];
    agentOn(hub, S.agentRpcFromAny('m1'), seen);
    const opts = { bus: hub.connect(), machineId: 'L1', subjectNames: 'named' as const };
    await requestAgent(opts, S, 'm1', req, 100);
    expect(seen).toEqual([S.agentRpcFrom('m1', 'L1')]);
    // An agent of protocol v1 (unnamed subject only) is not asked.
    await expect(requestAgent(opts, S, 'm2', req, 100)).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
    });
  });

  it('both (rolling upgrade): the named subject first, the unnamed one when no agent listens there', async () => {
    const hub = new LocalHub();
    const seen: string[] = [];
    agentOn(hub, S.agentRpcFromAny('m1'), seen);
    agentOn(hub, S.agentRpc('m2'), seen);
    const opts = { bus: hub.connect(), machineId: 'L1', subjectNames: 'both' as const };
    await requestAgent(opts, S, 'm1', req, 100);
    await requestAgent(opts, S, 'm2', req, 100);
    expect(seen).toEqual([S.agentRpcFrom('m1', 'L1'), S.agentRpc('m2')]);
  });

  it('unnamed (protocol v1): the unnamed subject', async () => {
    const hub = new LocalHub();
    const seen: string[] = [];
    agentOn(hub, S.agentRpc('m1'), seen);
    await requestAgent({ bus: hub.connect(), machineId: 'L1' }, S, 'm1', req, 100);
    expect(seen).toEqual([S.agentRpc('m1')]);
  });
});
