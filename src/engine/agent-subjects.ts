/**
 * Where the leader speaks to agents (docs/protocol.md, "Only the leader of the current epoch
 * commands"): on subjects that name it (`agent.<m>.schedule.<me>`, `agents.resync.<me>`), which
 * the bus lets only this engine use, so an agent can tell the leader of the current epoch from
 * any other engine; on protocol v1's unnamed subjects; or on both during a rolling upgrade.
 * Status and journal requests (request/reply, so one subject at a time) follow the same choice.
 */
import { ErrorCode, isFlotillaError } from '../errors';
import { encode, PROTOCOL_VERSION, type AgentRpcRequest, type Subjects } from '../protocol';
import type { EngineOptions } from './types';

type Speaker = Pick<EngineOptions, 'bus' | 'machineId' | 'subjectNames'>;

/** Publishes `data` to `machine`'s agent on the subjects `subjectNames` says. */
export function publishSchedule(
  opts: Speaker,
  subj: Subjects,
  machine: string,
  data: Uint8Array,
): void {
  const names = opts.subjectNames ?? 'unnamed';
  if (names !== 'unnamed') opts.bus.publish(subj.scheduleFrom(machine, opts.machineId), data);
  if (names !== 'named') opts.bus.publish(subj.schedule(machine), data);
}

/** Asks every agent for a full report and its full schedule (once per term, and on reconnect). */
export function publishResync(opts: Speaker, subj: Subjects, epoch: number): void {
  const names = opts.subjectNames ?? 'unnamed';
  const data = encode({ v: PROTOCOL_VERSION, epoch });
  if (names !== 'unnamed') opts.bus.publish(subj.resyncFrom(opts.machineId), data);
  if (names !== 'named') opts.bus.publish(subj.resync, data);
}

/**
 * Asks `machine`'s agent for a unit's status or journal, under this engine's name when
 * `subjectNames` says so (an agent that checks its sender answers only the leader of the current
 * epoch). During a rolling upgrade (`both`) an agent that does not listen there yet (no
 * responders) is asked on protocol v1's unnamed subject.
 */
export async function requestAgent(
  opts: Speaker,
  subj: Subjects,
  machine: string,
  req: AgentRpcRequest,
  timeoutMs: number,
): Promise<Uint8Array> {
  const names = opts.subjectNames ?? 'unnamed';
  const data = encode(req);
  if (names === 'unnamed') return opts.bus.request(subj.agentRpc(machine), data, timeoutMs);
  try {
    return await opts.bus.request(subj.agentRpcFrom(machine, opts.machineId), data, timeoutMs);
  } catch (err) {
    if (names === 'named' || !isFlotillaError(err, ErrorCode.Unavailable)) throw err;
    return opts.bus.request(subj.agentRpc(machine), data, timeoutMs);
  }
}
