import { clip, ErrorCode, FlotillaError } from '../errors';
import { jsonNestsDeeper, MAX_JSON_DEPTH } from '../json-depth';
import type {
  AgentRpcReply,
  AgentRpcRequest,
  Heartbeat,
  JournalLines,
  ReportedUnit,
  ResyncRequest,
  ScheduleDelta,
  ScheduledUnit,
  ScheduleFull,
  ScheduleRequest,
  StateReport,
} from './messages';
import { PROTOCOL_VERSION } from './messages';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encode(msg: object): Uint8Array {
  return enc.encode(JSON.stringify(msg));
}

/**
 * A message that failed validation (code PROTOCOL_VIOLATION): logged, counted and dropped by
 * the receiver.
 */
export class ProtocolError extends FlotillaError {
  override name = 'ProtocolError';
  constructor(message: string) {
    super(ErrorCode.ProtocolViolation, message);
  }
}

type Check<T> = (x: Record<string, unknown>) => x is Record<string, unknown> & T;

const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const isStrMap = (x: unknown): x is Record<string, string> =>
  isObj(x) && Object.values(x).every(isStr);
const isArr = <T>(x: unknown, item: (y: unknown) => y is T): x is T[] =>
  Array.isArray(x) && x.every(item);

const isScheduledUnit = (x: unknown): x is ScheduledUnit =>
  isObj(x) &&
  isStr(x.unit) &&
  isStr(x.hash) &&
  isStr(x.contents) &&
  (x.target === 'loaded' || x.target === 'launched');

const isReportedUnit = (x: unknown): x is ReportedUnit =>
  isObj(x) &&
  isStr(x.unit) &&
  isStr(x.load) &&
  isStr(x.active) &&
  isStr(x.sub) &&
  isStr(x.hash) &&
  (x.mainPid === undefined || isNum(x.mainPid)) &&
  (x.result === undefined || isStr(x.result)) &&
  (x.exitStatus === undefined || isNum(x.exitStatus)) &&
  (x.starts === undefined || isNum(x.starts));

function decodeWith<T>(data: Uint8Array, what: string, check: Check<T>): T {
  let x: unknown;
  const text = dec.decode(data);
  if (jsonNestsDeeper(text))
    throw new ProtocolError(`${what}: nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    x = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError(`${what}: not JSON (${clip((err as Error).message, 200)})`);
  }
  if (!isObj(x)) throw new ProtocolError(`${what}: not an object`);
  if (x.v !== PROTOCOL_VERSION)
    throw new ProtocolError(`${what}: unsupported version ${clip(JSON.stringify(x.v) ?? '', 40)}`);
  if (!check(x)) throw new ProtocolError(`${what}: malformed fields`);
  return x as T;
}

export const decodeScheduleDelta = (d: Uint8Array): ScheduleDelta =>
  decodeWith<ScheduleDelta>(
    d,
    'schedule delta',
    (x): x is Record<string, unknown> & ScheduleDelta =>
      x.kind === 'delta' &&
      isNum(x.epoch) &&
      isNum(x.seq) &&
      isArr(x.put, isScheduledUnit) &&
      isArr(x.remove, isStr),
  );

export const decodeScheduleFull = (d: Uint8Array): ScheduleFull =>
  decodeWith<ScheduleFull>(
    d,
    'full schedule',
    (x): x is Record<string, unknown> & ScheduleFull =>
      x.kind === 'full' &&
      isNum(x.epoch) &&
      isNum(x.seq) &&
      isArr(x.units, isScheduledUnit) &&
      (x.next === undefined || isStr(x.next)),
  );

export const decodeScheduleRequest = (d: Uint8Array): ScheduleRequest =>
  decodeWith<ScheduleRequest>(
    d,
    'schedule request',
    (x): x is Record<string, unknown> & ScheduleRequest =>
      isStr(x.machine) &&
      x.machine !== '' &&
      (x.paged === undefined || typeof x.paged === 'boolean') &&
      (x.after === undefined || isStr(x.after)),
  );

export const decodeStateReport = (d: Uint8Array): StateReport =>
  decodeWith<StateReport>(
    d,
    'state report',
    (x): x is Record<string, unknown> & StateReport =>
      isStr(x.machine) &&
      x.machine !== '' &&
      typeof x.full === 'boolean' &&
      isArr(x.units, isReportedUnit) &&
      isArr(x.gone, isStr),
  );

export const decodeHeartbeat = (d: Uint8Array): Heartbeat =>
  decodeWith<Heartbeat>(
    d,
    'heartbeat',
    (x): x is Record<string, unknown> & Heartbeat =>
      isStr(x.machine) &&
      x.machine !== '' &&
      isStr(x.ip) &&
      isStrMap(x.metadata) &&
      isNum(x.epoch) &&
      (x.seq === undefined || isNum(x.seq)),
  );

export const decodeResyncRequest = (d: Uint8Array): ResyncRequest =>
  decodeWith<ResyncRequest>(
    d,
    'resync request',
    // No `kind`: a full schedule (`kind: 'full'`, with an epoch) is not a resync request.
    (x): x is Record<string, unknown> & ResyncRequest => isNum(x.epoch) && x.kind === undefined,
  );

export const decodeAgentRpcRequest = (d: Uint8Array): AgentRpcRequest =>
  decodeWith<AgentRpcRequest>(
    d,
    'agent rpc request',
    (x): x is Record<string, unknown> & AgentRpcRequest =>
      (x.epoch === undefined || isNum(x.epoch)) &&
      ((x.kind === 'status' && isStr(x.unit)) ||
        (x.kind === 'journal' &&
          isStr(x.unit) &&
          isNum(x.lines) &&
          (x.follow === undefined || typeof x.follow === 'boolean') &&
          (x.inbox === undefined || isStr(x.inbox)) &&
          (x.follow !== true || isStr(x.inbox)))),
  );

export const decodeAgentRpcReply = (d: Uint8Array): AgentRpcReply =>
  decodeWith<AgentRpcReply>(
    d,
    'agent rpc reply',
    (x): x is Record<string, unknown> & AgentRpcReply => typeof x.ok === 'boolean' && isStr(x.text),
  );

export const decodeJournalLines = (d: Uint8Array): JournalLines =>
  decodeWith<JournalLines>(
    d,
    'journal lines',
    (x): x is Record<string, unknown> & JournalLines =>
      isStr(x.text) && (x.end === undefined || typeof x.end === 'boolean'),
  );
