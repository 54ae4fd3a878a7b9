/**
 * The cluster API's type: exactly the gRPC service in proto/flotilla/v1/flotilla.proto with its
 * generated message types, derived from the service and the method table (src/api/methods.ts).
 * Implemented by the engine on the leader, by a forwarding gRPC client on followers, and by
 * fakes in tests; the gRPC server is a thin adapter over it. Failures are FlotillaError with a
 * stable code (src/errors.ts). `watch` streams committed events with index >= from_index (0: only
 * new ones), then live ones, until its signal aborts.
 */
export type { ClusterApi, MethodName } from './methods';
