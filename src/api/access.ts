/**
 * Who may call what on the gRPC API (docs/security.md). A client's role comes from its TLS
 * client certificate: a URI SAN `flotilla:role:<role>`, or else an OU `flotilla-<role>` in the
 * subject. Roles:
 *
 * - `read-only`: every read (units, states, machines, cluster status, watch, status, journal,
 *   history export);
 * - `agent`: the same reads, for a machine's daemon that forwards its local users' calls but
 *   must not change the cluster (agent-only machines): it cannot create units or change them;
 * - `operator`: everything.
 *
 * A certificate signed by the CA without a role is `read-only`. A caller without a certificate
 * reached a listener that needs none (the unix socket, guarded by its file mode, or a loopback
 * or explicitly insecure TCP listener): `operator`. A follower checks the caller's role before
 * it forwards; the leader then checks the follower's own certificate.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { PeerCertificate } from 'node:tls';
import { ErrorCode, FlotillaError } from '../errors';
import {
  callStream,
  callUnary,
  type ClusterApi,
  deriveApi,
  type MethodName,
  ROLES,
  type Role,
  rolesFor,
} from './methods';

export { ROLES, type Role };

/** Metadata a daemon adds when it forwards a call to the leader: its machine ID. */
export const FORWARDED_BY_HEADER = 'flotilla-forwarded-by';

export interface CallContext {
  role: Role;
  /** Where the role came from, for error messages ("certificate CN=ops", "no certificate"). */
  who: string;
  /** The machine that forwarded this call, when a daemon did. */
  forwardedBy?: string;
}

const calls = new AsyncLocalStorage<CallContext>();

/** Runs `fn` with `ctx` as the current call (read back by currentCall() in its async flow). */
export function withCall<T>(ctx: CallContext, fn: () => T): T {
  return calls.run(ctx, fn);
}

export function currentCall(): CallContext | undefined {
  return calls.getStore();
}

const isRole = (s: string): s is Role => (ROLES as readonly string[]).includes(s);

/** The role a client certificate grants (see the file comment); undefined cert → operator. */
export function roleOfCertificate(cert: PeerCertificate | undefined): Role {
  if (!cert || Object.keys(cert).length === 0) return 'operator';
  const sans = (cert.subjectaltname ?? '').split(',').map((s) => s.trim());
  for (const san of sans) {
    const m = /^URI:flotilla:role:(.+)$/.exec(san);
    if (m && isRole(m[1])) return m[1];
  }
  const ou = cert.subject?.OU;
  for (const unit of Array.isArray(ou) ? ou : ou ? [ou] : []) {
    const m = /^flotilla-(.+)$/.exec(unit);
    if (m && isRole(m[1])) return m[1];
  }
  return 'read-only';
}

export function describeCertificate(cert: PeerCertificate | undefined): string {
  if (!cert || Object.keys(cert).length === 0) return 'a caller without a certificate';
  const cn = cert.subject?.CN;
  return `the certificate CN=${Array.isArray(cn) ? cn.join(',') : (cn ?? '?')}`;
}

/**
 * Throws PERMISSION_DENIED when `ctx`'s role may not call `method` with `req`: the method table
 * (src/api/methods.ts) says who may: the operator alone for a write.
 */
export function authorize(method: MethodName, ctx: CallContext, req?: unknown): void {
  const allowed = rolesFor(method, req);
  if (!allowed.includes(ctx.role))
    throw new FlotillaError(
      ErrorCode.PermissionDenied,
      `${method} needs the ${allowed.join(' or ')} role; ${ctx.who} has the ${ctx.role} role`,
      { details: { method, role: ctx.role } },
    );
}

/** The context of a call that came with no certificate (see the file comment): operator. */
export function contextOfCertificate(cert: PeerCertificate | undefined): CallContext {
  return { role: roleOfCertificate(cert), who: describeCertificate(cert) };
}

/**
 * `api` with every method checked against the current call's role (withCall) before it runs,
 * as the gRPC server checks its calls: for fleet's HTTP API, whose requests map to several
 * ClusterApi calls. A call outside withCall is not checked (the daemon's own calls).
 */
export function authorizedApi(api: ClusterApi): ClusterApi {
  const check = (method: MethodName, req: unknown): void => {
    const ctx = currentCall();
    if (ctx) authorize(method, ctx, req);
  };
  return deriveApi({
    unary: (name, req) => {
      check(name, req);
      return callUnary(api, name, req);
    },
    stream: (name, req, signal) => {
      check(name, req);
      return callStream(api, name, req, signal);
    },
  });
}
