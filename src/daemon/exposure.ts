/**
 * What flotillad refuses to expose (docs/security.md): its APIs run commands as root on every
 * machine, so a TCP listener that other hosts can reach must authenticate its clients (gRPC
 * with mTLS: grpc_tls_cert, grpc_tls_key and grpc_tls_ca; fleet's HTTP API with HTTPS and client
 * certificates from the same settings), unless `grpc_insecure=true` says
 * the operator knows (then it warns, at start and in /healthz). And an advertise address on
 * loopback in a cluster that spans hosts would make followers forward to themselves.
 */
import { parseListenAddress } from '../api/server';
import { ErrorCode, FlotillaError } from '../errors';
import type { DaemonConfig } from './config';

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const tcpHosts = (listen: string[]): string[] =>
  listen.map(parseListenAddress).flatMap((l) => (l.kind === 'tcp' ? [`${l.host}:${l.port}`] : []));

const hostOf = (hostPort: string): string => hostPort.replace(/:\d+$/, '');

/**
 * The insecure listeners allowed by grpc_insecure, as warnings; CONFIG_INVALID naming the
 * listener and what to set when one is not allowed.
 */
export function checkApiExposure(cfg: DaemonConfig): string[] {
  const warnings: string[] = [];
  const refuse = (what: string, fix: string): void => {
    if (!cfg.grpc_insecure)
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        `refusing to serve ${what}: anyone who reaches it could run commands as root on every machine; ${fix}, listen on loopback only, or set grpc_insecure=true (--grpc-insecure) to accept the risk`,
        { details: { field: 'grpc_insecure' } },
      );
    warnings.push(`INSECURE (grpc_insecure=true): serving ${what}`);
  };
  const mtls = Boolean(cfg.grpc_tls_cert && cfg.grpc_tls_key && cfg.grpc_tls_ca);
  for (const addr of tcpHosts(cfg.grpc_listen)) {
    if (isLoopbackHost(hostOf(addr)) || mtls) continue;
    if (cfg.grpc_tls_cert)
      refuse(
        `the gRPC API on ${addr} with TLS but without client certificates`,
        'set grpc_tls_ca so clients must present a certificate it signed (mTLS)',
      );
    else
      refuse(
        `the gRPC API in plaintext on ${addr}`,
        'set grpc_tls_cert, grpc_tls_key and grpc_tls_ca (mTLS)',
      );
  }
  // fleet's HTTP API: HTTPS with the same certificate and CA on its TCP listeners, same rule.
  for (const addr of tcpHosts(cfg.fleet_api_listen)) {
    if (isLoopbackHost(hostOf(addr)) || mtls) continue;
    if (cfg.grpc_tls_cert)
      refuse(
        `fleet's HTTP API on ${addr} with TLS but without client certificates`,
        'set grpc_tls_ca so clients must present a certificate it signed (mTLS)',
      );
    else
      refuse(
        `fleet's HTTP API in plaintext and without authentication on ${addr}`,
        'set grpc_tls_cert, grpc_tls_key and grpc_tls_ca (HTTPS with client certificates), serve it on a unix socket (fleet_api_listen=unix:///var/run/fleet.sock)',
      );
  }
  return warnings;
}

function urlHost(u: string): string {
  try {
    return new URL(/^[a-z]+:\/\//i.test(u) ? u : `nats://${u}`).hostname;
  } catch {
    return u;
  }
}

/**
 * Refuses a loopback advertise address when etcd or NATS is on another host (so other
 * daemons are too): they would reach themselves at it, not this daemon.
 */
export function checkAdvertise(cfg: DaemonConfig, advertise: string): void {
  if (cfg.dev || advertise.startsWith('unix:')) return;
  const host = hostOf(advertise.replace(/^[a-z]+:\/\//i, ''));
  if (!isLoopbackHost(host)) return;
  const remote = [...cfg.etcd_servers, ...cfg.nats_servers].find(
    (s) => !isLoopbackHost(urlHost(s)),
  );
  if (remote === undefined) return;
  throw new FlotillaError(
    ErrorCode.ConfigInvalid,
    `the gRPC advertise address ${advertise} is on loopback, but the cluster spans hosts (${remote}): other daemons would forward calls to themselves; set grpc_advertise to an address they reach (e.g. ${cfg.public_ip || '10.0.0.2'}:7070) and listen on it`,
    { details: { field: 'grpc_advertise' } },
  );
}

/**
 * The warning for an `http_listen` on a non-loopback address, or undefined. Not refused: a
 * Prometheus on another host scrapes `/metrics` there. But the endpoint has no authentication,
 * and besides counters its visualizer (`/ui/`) shows what the API shows a `read-only`
 * certificate: unit names, states and histories, machines with their IPs and metadata (never
 * unit files).
 */
export function httpExposureWarning(cfg: DaemonConfig): string | undefined {
  if (!cfg.http_listen || isLoopbackHost(hostOf(cfg.http_listen))) return undefined;
  return `http_listen ${cfg.http_listen} serves /metrics and the visualizer (/ui/: unit names, states and histories, machines, their IPs and metadata) without authentication to anyone who reaches it; firewall it, or listen on loopback`;
}
