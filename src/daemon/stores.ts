import path from 'node:path';
import { readPem } from '../api/tls';
import { readSecretFile } from './secrets';
import { ErrorCode, FlotillaError } from '../errors';
import { openLogStore } from '../store';
import type { LogStore } from '../store/types';
import type { DaemonConfig } from './config';

/** The durable store for this daemon: etcd, or in dev mode a log file in the data directory. */
export function openStore(cfg: DaemonConfig): LogStore {
  if (cfg.dev) return openLogStore({ kind: 'file', dir: path.join(cfg.data_dir, 'store') });
  return openLogStore({
    kind: 'etcd',
    endpoints: cfg.etcd_servers,
    cluster: cfg.cluster,
    leaseTtlSeconds: Math.max(1, Math.round(cfg.lease_ttl / 1000)),
    callTimeoutMs: Math.max(100, cfg.etcd_request_timeout),
    ...etcdSecurity(cfg),
  });
}

function requirePair(cert: string, key: string, names: [string, string]): void {
  if (Boolean(cert) !== Boolean(key)) {
    const [missing, given] = cert ? [names[1], names[0]] : [names[0], names[1]];
    throw new FlotillaError(ErrorCode.ConfigInvalid, `${missing} is required with ${given}`, {
      details: { field: missing },
    });
  }
}

/** The etcd client's TLS and auth from `etcd_cafile`, `etcd_certfile`, … (fleet's key names). */
export function etcdSecurity(cfg: DaemonConfig): EtcdSecurity {
  return etcdSecurityOf(cfg, (k) => k);
}

/**
 * TLS and auth for an etcd client from the `etcd_*` settings; `name` says how a setting is
 * called where it came from (a config key, a command-line flag) for error messages.
 */
export function etcdSecurityOf(
  s: Pick<
    DaemonConfig,
    'etcd_cafile' | 'etcd_certfile' | 'etcd_keyfile' | 'etcd_username' | 'etcd_password'
  > &
    Partial<Pick<DaemonConfig, 'etcd_password_file'>>,
  name: (key: string) => string,
): EtcdSecurity {
  requirePair(s.etcd_certfile, s.etcd_keyfile, [name('etcd_certfile'), name('etcd_keyfile')]);
  const out: EtcdSecurity = {};
  if (s.etcd_cafile) {
    out.credentials = { rootCertificate: readPem(s.etcd_cafile, name('etcd_cafile')) };
    if (s.etcd_certfile) {
      out.credentials.certChain = readPem(s.etcd_certfile, name('etcd_certfile'));
      out.credentials.privateKey = readPem(s.etcd_keyfile, name('etcd_keyfile'));
    }
  } else if (s.etcd_certfile) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `${name('etcd_cafile')} is required with ${name('etcd_certfile')}`,
      { details: { field: name('etcd_cafile') } },
    );
  }
  if (s.etcd_username)
    out.auth = {
      username: s.etcd_username,
      password: s.etcd_password_file
        ? readSecretFile(s.etcd_password_file, name('etcd_password_file'))
        : s.etcd_password,
    };
  return out;
}

export interface EtcdSecurity {
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  auth?: { username: string; password: string };
}

/** The NATS connection's TLS and auth from `nats_cafile`, `nats_certfile`, …. */
export function natsSecurity(cfg: DaemonConfig): {
  tls?: { ca?: string; cert?: string; key?: string };
  user?: string;
  pass?: string;
  nkeySeed?: string;
  creds?: string;
} {
  requirePair(cfg.nats_certfile, cfg.nats_keyfile, ['nats_certfile', 'nats_keyfile']);
  const out: ReturnType<typeof natsSecurity> = {};
  // Read here, once: an unreadable file is a configuration error naming its key.
  const pem = (file: string, key: string): string => readPem(file, key).toString('utf8');
  if (cfg.nats_cafile || cfg.nats_certfile) {
    out.tls = {
      ...(cfg.nats_cafile ? { ca: pem(cfg.nats_cafile, 'nats_cafile') } : {}),
      ...(cfg.nats_certfile
        ? {
            cert: pem(cfg.nats_certfile, 'nats_certfile'),
            key: pem(cfg.nats_keyfile, 'nats_keyfile'),
          }
        : {}),
    };
  }
  if (cfg.nats_user) {
    out.user = cfg.nats_user;
    out.pass = cfg.nats_password_file
      ? readSecretFile(cfg.nats_password_file, 'nats_password_file')
      : cfg.nats_password;
  }
  if (cfg.nats_nkey_seed_file) {
    const seed = readSecretFile(cfg.nats_nkey_seed_file, 'nats_nkey_seed_file').trim();
    if (!/^SU[A-Z2-7]{56}$/.test(seed))
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        `nats_nkey_seed_file: ${cfg.nats_nkey_seed_file} does not hold a NATS user seed (SU…, as \`flotilla bus-auth\` writes)`,
        { details: { field: 'nats_nkey_seed_file', file: cfg.nats_nkey_seed_file } },
      );
    out.nkeySeed = seed;
  } else if (cfg.nats_creds_file) {
    out.creds = readSecretFile(cfg.nats_creds_file, 'nats_creds_file');
  }
  return out;
}
