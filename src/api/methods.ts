/**
 * The cluster API's methods, in one table. The generated gRPC service (proto/flotilla/v1, `npm
 * run proto`) says each method's name, messages and whether it streams; the table below adds
 * what the proto cannot say: whether a call changes the cluster. Everything else is derived:
 *
 * - the `ClusterApi` type (src/api/types.ts) — a mapped type over the service;
 * - the gRPC client (src/api/client.ts) and the server's handlers (src/api/server.ts);
 * - access control: a write needs the operator role (src/api/access.ts);
 * - the daemon's routing (src/daemon/router.ts): a unary read is retried through a failover, a
 *   write never is (one that failed in flight may have landed), a stream is forwarded once; the
 *   read-only view of a deposed leader refuses writes;
 * - the metrics' `method` label (src/daemon/metrics.ts).
 *
 * A new method is its rpc in the proto, one entry here, and its implementation in EngineApi
 * (src/engine/api.ts); the compiler refuses a table that misses a method of the service.
 */
import type { MethodDefinition } from '@grpc/grpc-js';
import { FlotillaService } from '../gen/flotilla/v1/flotilla';

type Service = typeof FlotillaService;

/** A ClusterApi method's name: a key of the generated service (`createUnits`). */
export type MethodName = keyof Service & string;
export type Request<M extends MethodName> = ReturnType<Service[M]['requestDeserialize']>;
export type Response<M extends MethodName> = ReturnType<Service[M]['responseDeserialize']>;

/** The methods whose response is a server stream (Watch, UnitJournal). */
export type StreamName = {
  [M in MethodName]: Service[M]['responseStream'] extends true ? M : never;
}[MethodName];
/** The methods that answer once. */
export type UnaryName = Exclude<MethodName, StreamName>;

/** A unary method as a function: the request in, the response promised. */
export type UnaryFn<M extends UnaryName> = (req: Request<M>) => Promise<Response<M>>;
/** A streaming method: responses until the stream ends or `signal` aborts. */
export type StreamFn<M extends StreamName> = (
  req: Request<M>,
  signal: AbortSignal,
) => AsyncIterable<Response<M>>;

/**
 * The cluster API, exactly the gRPC service with its generated message types. Implemented by the
 * engine on the leader (EngineApi), by the gRPC client, and by the daemon's router; the gRPC
 * server is a thin adapter over it. Failures are FlotillaError with a stable code.
 */
export type ClusterApi = {
  [M in MethodName]: M extends StreamName ? StreamFn<M> : M extends UnaryName ? UnaryFn<M> : never;
};

/** The roles a client certificate can carry (docs/security.md; src/api/access.ts). */
export const ROLES = ['read-only', 'agent', 'operator'] as const;
export type Role = (typeof ROLES)[number];

/** Who may change the cluster. */
const WRITE_ROLES: readonly Role[] = ['operator'];

/** What the proto cannot say about a method. */
export interface MethodSpec<M extends MethodName> {
  /**
   * `read`: answered from the leader's state, by every role; a follower retries a unary read
   * through a failover. `write`: changes the cluster, operator only, never retried.
   */
  readonly access: 'read' | 'write';
  /**
   * For a read that changes the cluster with some requests: true when `req` does. Such a call
   * is a write in every respect (operator only, not retried, refused by a read-only view).
   */
  readonly writesWhen?: (req: Request<M>) => boolean;
}

/** A stream is a read: a write answers once, when it is durable. */
interface StreamSpec {
  readonly access: 'read';
}

/** One entry per method of the service: a missing or unknown method does not compile. */
export type MethodTable = {
  readonly [M in MethodName]: M extends StreamName ? StreamSpec : MethodSpec<M>;
};

/** The table. Keep the service's order (the proto's). */
const TABLE: MethodTable = {
  createUnits: { access: 'write' },
  setTargetStates: { access: 'write' },
  destroyUnits: { access: 'write' },
  getUnit: { access: 'read' },
  listUnits: { access: 'read' },
  listUnitStates: { access: 'read' },
  listMachines: { access: 'read' },
  setMachineMetadata: { access: 'write' },
  // The operator's word after a mass-loss hold (`flotilla cluster --resume-rescheduling`).
  getClusterStatus: { access: 'read', writesWhen: (req) => Boolean(req.resumeRescheduling) },
  watch: { access: 'read' },
  unitStatus: { access: 'read' },
  unitJournal: { access: 'read' },
  exportHistory: { access: 'read' },
};

interface InfoBase {
  /** The gRPC method name (`CreateUnits`): the name in logs of handler failures. */
  readonly grpcName: string;
  readonly access: 'read' | 'write';
  /** The roles that may call it (with any request; see `isWrite`). */
  readonly roles: readonly Role[];
}

/** One method with everything known about it. `kind` tells the two shapes apart. */
export type MethodInfo =
  | (InfoBase & { readonly kind: 'unary'; readonly name: UnaryName })
  | (InfoBase & { readonly kind: 'server-stream'; readonly name: StreamName });

function infoOf(name: MethodName): MethodInfo {
  const def = FlotillaService[name];
  const spec: { access: 'read' | 'write' } = TABLE[name];
  const base: InfoBase = {
    grpcName: def.path.slice(def.path.lastIndexOf('/') + 1),
    access: spec.access,
    roles: spec.access === 'write' ? WRITE_ROLES : ROLES,
  };
  return def.responseStream
    ? { ...base, kind: 'server-stream', name: name as StreamName }
    : { ...base, kind: 'unary', name: name as UnaryName };
}

/** Every method, in the service's order. */
export const API_METHODS: readonly MethodInfo[] = (Object.keys(TABLE) as MethodName[]).map(infoOf);

const BY_NAME = new Map<string, MethodInfo>(API_METHODS.map((m) => [m.name, m]));

export function methodInfo(name: MethodName): MethodInfo {
  const info = BY_NAME.get(name);
  if (!info) throw new Error(`unknown ClusterApi method ${name}`);
  return info;
}

/**
 * True when this call changes the cluster: a write method, or a read whose request makes it one
 * (GetClusterStatus resuming rescheduling). `req` comes from the wire or a caller, as it is.
 */
export function isWrite(name: MethodName, req: unknown): boolean {
  const spec: { access: 'read' | 'write'; writesWhen?: (req: never) => boolean } = TABLE[name];
  if (spec.access === 'write') return true;
  if (!spec.writesWhen || typeof req !== 'object' || req === null) return false;
  return spec.writesWhen(req as never);
}

/** The roles that may make this call: the operator alone for a write, every role for a read. */
export function rolesFor(name: MethodName, req: unknown): readonly Role[] {
  return isWrite(name, req) ? WRITE_ROLES : methodInfo(name).roles;
}

/**
 * True when a follower retries this call through a failover: a unary read. Not a write (one that
 * failed in flight may have landed), not a stream (one that has begun cannot be replayed).
 */
export function retriedOnFailover(name: MethodName, req: unknown): boolean {
  return methodInfo(name).kind === 'unary' && !isWrite(name, req);
}

/**
 * The generated definition of `name` (path, serializers), typed by the method. The one cast: the
 * compiler cannot resolve `Service[M]` for a generic `M`, though every entry has these types.
 */
export function definitionOf<M extends MethodName>(
  name: M,
): MethodDefinition<Request<M>, Response<M>> {
  return FlotillaService[name] as unknown as MethodDefinition<Request<M>, Response<M>>;
}

/** Calls `api`'s unary method `name` (bound to `api`). */
export function callUnary<M extends UnaryName>(
  api: ClusterApi,
  name: M,
  req: Request<M>,
): Promise<Response<M>> {
  // `ClusterApi[M]` is this function type for every unary M (see the mapped type).
  const fn = api[name] as unknown as UnaryFn<M>;
  return fn.call(api, req);
}

/** Calls `api`'s streaming method `name` (bound to `api`). */
export function callStream<M extends StreamName>(
  api: ClusterApi,
  name: M,
  req: Request<M>,
  signal: AbortSignal,
): AsyncIterable<Response<M>> {
  const fn = api[name] as unknown as StreamFn<M>;
  return fn.call(api, req, signal);
}

/** How a derived ClusterApi answers: one function per shape, given the method's name. */
export interface Dispatch {
  unary<M extends UnaryName>(name: M, req: Request<M>): Promise<Response<M>>;
  stream<M extends StreamName>(
    name: M,
    req: Request<M>,
    signal: AbortSignal,
  ): AsyncIterable<Response<M>>;
}

/** A ClusterApi whose every method of the table is answered by `d`. */
export function deriveApi(d: Dispatch): ClusterApi {
  const api: Record<string, unknown> = {};
  for (const m of API_METHODS) {
    const name = m.name;
    api[name] =
      m.kind === 'unary'
        ? (req: Request<typeof m.name>) => d.unary(m.name, req)
        : (req: Request<typeof m.name>, signal: AbortSignal) => d.stream(m.name, req, signal);
  }
  // Every method of the table was set just above, each with its shape.
  return api as ClusterApi;
}

/** `api` with every method bound to it, as a plain object (safe to spread and override). */
export function bindAll(api: ClusterApi): ClusterApi {
  return deriveApi({
    unary: (name, req) => callUnary(api, name, req),
    stream: (name, req, signal) => callStream(api, name, req, signal),
  });
}
