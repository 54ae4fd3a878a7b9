import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ErrorCode, FlotillaError } from '../errors';
import { DEFAULT_MAX_UNIT_BYTES, MAX_UNIT_BYTES_LIMIT } from '../unit/check';
import { applyFleetConfig } from './fleet-compat';

/**
 * flotillad's configuration. Sources in increasing priority: fleetd's own (`/etc/fleet/fleet.conf`
 * and `FLEET_<KEY>`, fleet-compat.ts), the file (`/etc/flotilla/flotilla.conf` or `--config`),
 * the environment (`FLOTILLA_<KEY>`), flags (`--<key-with-dashes>`). fleet's key names are kept
 * where they exist.
 */
export interface DaemonConfig {
  /** Run a one-machine cluster with no external services (embedded store and bus). */
  dev: boolean;
  /** Where dev mode keeps its state (and the default units directory in dev mode). */
  data_dir: string;
  etcd_servers: string[];
  nats_servers: string[];
  cluster: string;
  machine_id: string;
  metadata: Record<string, string>;
  /** How long a silent agent stays alive in the leader's eyes (ms). */
  agent_ttl: number;
  /** How long one etcd request may take (ms; fleet's etcd_request_timeout). */
  etcd_request_timeout: number;
  /**
   * After the leader hears again (its NATS connection back, a new term, its store recovered) every
   * machine gets this long plus a full agent_ttl before it may be declared lost (ms; 0: one
   * agent_ttl). Nomad's HeartbeatGrace / FailoverHeartbeatTTL. See docs/reliability.md.
   */
  agent_ttl_grace: number;
  /** Share of machines (0–1) that may be declared lost within one agent_ttl before the leader holds rescheduling. */
  mass_loss_threshold: number;
  /** The leader's election lease (ms); failover happens within about this long. */
  lease_ttl: number;
  public_ip: string;
  disable_engine: boolean;
  disable_agent: boolean;
  units_directory: string;
  systemd_user: boolean;
  driver: 'systemd' | 'process' | 'simulated';
  grpc_listen: string[];
  /** The gRPC address other daemons forward writes to (default: the first TCP listen address). */
  grpc_advertise: string;
  /** Serve the APIs on non-loopback TCP without client authentication (warned about; docs/security.md). */
  grpc_insecure: boolean;
  /** TLS for the gRPC API's TCP listeners (PEM files); with a CA, clients must present a certificate (mTLS). */
  grpc_tls_cert: string;
  grpc_tls_key: string;
  grpc_tls_ca: string;
  http_listen: string;
  /** etcd client TLS and auth (fleet's key names for the files). */
  etcd_cafile: string;
  etcd_certfile: string;
  etcd_keyfile: string;
  etcd_username: string;
  etcd_password: string;
  /** NATS client TLS and auth. */
  nats_cafile: string;
  nats_certfile: string;
  nats_keyfile: string;
  nats_user: string;
  nats_password: string;
  /** Secrets from files rather than argv or the config file (docs/security.md). */
  etcd_password_file: string;
  nats_password_file: string;
  /** This daemon's NKey seed (written by `flotilla bus-auth`), or a NATS credentials file. */
  nats_nkey_seed_file: string;
  nats_creds_file: string;
  /** Speak protocol v1's shared subjects (rolling upgrade from before per-machine subjects). */
  nats_legacy_subjects: boolean;
  /**
   * Where to serve fleet's HTTP API v1 for the original fleetctl: `unix:///path` and/or
   * `host:port` (empty: off). fleetctl's default endpoint is unix:///var/run/fleet.sock.
   */
  fleet_api_listen: string[];
  /** Items per page of the fleet API's collections (fleet's `token_limit`). */
  token_limit: number;
  /** The largest unit file (bytes, as written out) the API accepts, whatever the store. */
  max_unit_bytes: number;
  snapshot_every: number;
  snapshot_interval: number;
  /** Events kept in the store behind the latest snapshot, for `replay` (older ones are compacted). */
  log_retention: number;
  log_retention_age: number;
  /**
   * Lead a log holding event types or schema versions this daemon does not know (written by a
   * newer Flotilla), skipping them; by default such a log is refused at restore.
   */
  allow_unknown_events: boolean;
  /** fleet unloaded every unit on shutdown; Flotilla leaves them running unless this is set. */
  unload_on_shutdown: boolean;
  log_level: 'debug' | 'info' | 'warn' | 'error';
  /** `text` (time LEVEL msg key=value; no time under journald) or `json` (one object a line). */
  log_format: 'text' | 'json';
}

type Kind =
  | 'bool'
  | 'string'
  | 'list'
  | 'metadata'
  | 'duration'
  | 'int'
  | 'enum'
  | 'fraction'
  | 'ip'
  | 'hostport';

interface KeySpec {
  kind: Kind;
  values?: readonly string[];
  /** For `int`: the largest value accepted. */
  max?: number;
  /** For `duration`: 0 is a value of its own (e.g. "the default"), not an error. */
  zero?: boolean;
  help: string;
}

export const CONFIG_KEYS: Record<keyof DaemonConfig, KeySpec> = {
  dev: { kind: 'bool', help: 'one-machine cluster, no external services' },
  data_dir: { kind: 'string', help: 'state directory for dev mode' },
  etcd_servers: { kind: 'list', help: 'etcd client URLs, comma-separated' },
  nats_servers: { kind: 'list', help: 'NATS URLs, comma-separated' },
  cluster: { kind: 'string', help: 'cluster name (etcd prefix and NATS subject segment)' },
  machine_id: { kind: 'string', help: "this machine's ID (default: /etc/machine-id)" },
  metadata: { kind: 'metadata', help: 'k=v,k2=v2' },
  agent_ttl: { kind: 'duration', help: 'agent liveness TTL, e.g. 30s' },
  agent_ttl_grace: {
    kind: 'duration',
    zero: true,
    help: 'extra time every machine gets after the leader hears again (default: one agent_ttl)',
  },
  mass_loss_threshold: {
    kind: 'fraction',
    help: 'share of machines lost within one agent_ttl that holds rescheduling, e.g. 1/3, 0.5, 50%',
  },
  lease_ttl: { kind: 'duration', help: 'leader election lease, e.g. 5s' },
  etcd_request_timeout: { kind: 'duration', help: 'longest etcd request, e.g. 2s (fleet: 1.0)' },
  public_ip: { kind: 'ip', help: 'IP address shown for this machine' },
  disable_engine: { kind: 'bool', help: 'never campaign for leadership' },
  disable_agent: { kind: 'bool', help: 'run no agent on this machine' },
  units_directory: { kind: 'string', help: 'where unit files are written' },
  systemd_user: { kind: 'bool', help: 'drive the user manager instead of the system one' },
  driver: { kind: 'enum', values: ['systemd', 'process', 'simulated'], help: 'how units are run' },
  grpc_listen: { kind: 'list', help: 'gRPC listen addresses (host:port, unix:///path)' },
  grpc_advertise: { kind: 'string', help: 'gRPC address other daemons use to reach this one' },
  grpc_insecure: {
    kind: 'bool',
    help: 'allow the APIs on non-loopback TCP without mTLS (insecure; warned about)',
  },
  grpc_tls_cert: {
    kind: 'string',
    help: 'PEM certificate for the gRPC API over TCP (TLS; also presented when forwarding)',
  },
  grpc_tls_key: { kind: 'string', help: 'PEM private key of grpc_tls_cert' },
  grpc_tls_ca: {
    kind: 'string',
    help: 'PEM CA bundle: clients must present a certificate it signed (mTLS)',
  },
  http_listen: {
    kind: 'hostport',
    help: 'HTTP host:port for /healthz, /readyz, /metrics and the visualizer (/ui/) ("" = off)',
  },
  etcd_cafile: { kind: 'string', help: 'PEM CA bundle to verify etcd with (TLS)' },
  etcd_certfile: { kind: 'string', help: 'PEM client certificate for etcd (mTLS)' },
  etcd_keyfile: { kind: 'string', help: 'PEM private key of etcd_certfile' },
  etcd_username: { kind: 'string', help: 'etcd user (etcd auth)' },
  etcd_password: { kind: 'string', help: 'password of etcd_username' },
  nats_cafile: { kind: 'string', help: 'PEM CA bundle to verify NATS with (TLS)' },
  nats_certfile: { kind: 'string', help: 'PEM client certificate for NATS (mTLS)' },
  nats_keyfile: { kind: 'string', help: 'PEM private key of nats_certfile' },
  nats_user: { kind: 'string', help: 'NATS user' },
  nats_password: { kind: 'string', help: 'password of nats_user' },
  etcd_password_file: { kind: 'string', help: 'file holding the password of etcd_username' },
  nats_password_file: { kind: 'string', help: 'file holding the password of nats_user' },
  nats_nkey_seed_file: {
    kind: 'string',
    help: "this machine's NKey seed file for NATS (from `flotilla bus-auth`)",
  },
  nats_creds_file: { kind: 'string', help: 'NATS credentials file (JWT and seed)' },
  nats_legacy_subjects: {
    kind: 'bool',
    help: "publish on protocol v1's shared subjects (rolling upgrade; see docs/protocol.md)",
  },
  fleet_api_listen: {
    kind: 'list',
    help: "fleet API v1 listen addresses for fleetctl (unix:///var/run/fleet.sock is fleetctl's default, host:port; empty = off)",
  },
  token_limit: { kind: 'int', help: "fleet API v1 page size (fleet's token_limit)" },
  max_unit_bytes: {
    kind: 'int',
    max: MAX_UNIT_BYTES_LIMIT,
    help: `largest unit file accepted, in bytes (default ${DEFAULT_MAX_UNIT_BYTES}, at most ${MAX_UNIT_BYTES_LIMIT})`,
  },
  snapshot_every: { kind: 'int', help: 'snapshot after this many events' },
  snapshot_interval: { kind: 'duration', help: 'snapshot at least this often when changed' },
  log_retention: { kind: 'int', help: 'events kept behind the latest snapshot for replay' },
  log_retention_age: {
    kind: 'duration',
    help: 'and none older than this (e.g. 168h; default a year)',
  },
  allow_unknown_events: {
    kind: 'bool',
    help: 'lead a log with event types or versions this daemon does not know (skipped); by default refused at restore',
  },
  unload_on_shutdown: {
    kind: 'bool',
    help: "unload every local unit on SIGTERM (fleet's old behaviour)",
  },
  log_level: { kind: 'enum', values: ['debug', 'info', 'warn', 'error'], help: 'log verbosity' },
  log_format: {
    kind: 'enum',
    values: ['text', 'json'],
    help: 'log lines on stderr: text (no timestamp of its own under journald) or json',
  },
};

export const DEFAULT_CONFIG_FILE = '/etc/flotilla/flotilla.conf';
/** Where `flotillad --dev` keeps its state unless told (relative to its working directory). */
export const DEV_DATA_DIR = '.flotilla-dev';

/** The defaults of every key (outside dev mode). */
export function defaultConfig(): DaemonConfig {
  return {
    dev: false,
    data_dir: DEV_DATA_DIR,
    etcd_servers: ['http://127.0.0.1:2379'],
    nats_servers: ['nats://127.0.0.1:4222'],
    cluster: 'default',
    machine_id: '',
    metadata: {},
    agent_ttl: 30_000,
    etcd_request_timeout: 2000,
    agent_ttl_grace: 0,
    mass_loss_threshold: 1 / 3,
    lease_ttl: 5_000,
    public_ip: '',
    disable_engine: false,
    disable_agent: false,
    units_directory: '/run/flotilla/units',
    systemd_user: false,
    driver: 'systemd',
    grpc_listen: ['unix:///run/flotilla/flotilla.sock', '127.0.0.1:7070'],
    grpc_advertise: '',
    grpc_insecure: false,
    grpc_tls_cert: '',
    grpc_tls_key: '',
    grpc_tls_ca: '',
    http_listen: '127.0.0.1:7071',
    etcd_cafile: '',
    etcd_certfile: '',
    etcd_keyfile: '',
    etcd_username: '',
    etcd_password: '',
    nats_cafile: '',
    nats_certfile: '',
    nats_keyfile: '',
    nats_user: '',
    nats_password: '',
    etcd_password_file: '',
    nats_password_file: '',
    nats_nkey_seed_file: '',
    nats_creds_file: '',
    nats_legacy_subjects: false,
    fleet_api_listen: [],
    token_limit: 100,
    max_unit_bytes: DEFAULT_MAX_UNIT_BYTES,
    snapshot_every: 10_000,
    snapshot_interval: 60_000,
    log_retention: 100_000,
    log_retention_age: 365 * 24 * 3_600_000,
    allow_unknown_events: false,
    unload_on_shutdown: false,
    log_level: 'info',
    log_format: 'text',
  };
}

function invalid(key: string, raw: string, want: string, source: string): FlotillaError {
  return new FlotillaError(
    ErrorCode.ConfigInvalid,
    `invalid value for ${key} (${source}): "${raw}" (want ${want})`,
    {
      details: { field: key, source },
    },
  );
}

/** Parses "30s", "500ms", "2m", "1h" or a bare number of seconds (fleet's agent_ttl) into ms. */
export function parseDuration(raw: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit]!);
}

/** Parses "0.5", "1/3" or "50%". */
export function parseFraction(raw: string): number | undefined {
  const t = raw.trim();
  let m = /^(\d+(?:\.\d+)?)%$/.exec(t);
  if (m) return Number(m[1]) / 100;
  m = /^(\d+)\/(\d+)$/.exec(t);
  if (m) return Number(m[2]) === 0 ? undefined : Number(m[1]) / Number(m[2]);
  m = /^\d+(?:\.\d+)?$/.exec(t);
  return m ? Number(t) : undefined;
}

/** Parses `k=v,k2=v2` (fleet's metadata syntax). */
export function parseMetadata(raw: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (raw.trim() === '') return out;
  for (const pair of raw.split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) return undefined;
    const k = pair.slice(0, i).trim();
    const v = pair.slice(i + 1).trim();
    if (!/^[A-Za-z0-9_.-]+$/.test(k) || v === '') return undefined;
    out[k] = v;
  }
  return out;
}

function setValue(cfg: DaemonConfig, key: keyof DaemonConfig, raw: string, source: string): void {
  const spec = CONFIG_KEYS[key];
  const rec = cfg as unknown as Record<string, unknown>;
  const unq = raw.trim().replace(/^"(.*)"$/, '$1');
  switch (spec.kind) {
    case 'bool': {
      const v = unq.toLowerCase();
      if (['1', 'true', 'yes', 'on', 't'].includes(v)) rec[key] = true;
      else if (['0', 'false', 'no', 'off', 'f', ''].includes(v)) rec[key] = false;
      else throw invalid(key, raw, 'true or false', source);
      return;
    }
    case 'string':
      rec[key] = unq;
      return;
    case 'list': {
      // fleet wrote lists as ["a","b"] or a,b; accept both.
      const body = unq.replace(/^\[(.*)\]$/, '$1');
      rec[key] = body
        .split(',')
        .map((s) => s.trim().replace(/^"(.*)"$/, '$1'))
        .filter((s) => s !== '');
      return;
    }
    case 'metadata': {
      const md = parseMetadata(unq);
      if (!md)
        throw invalid(
          key,
          raw,
          'k=v pairs separated by commas, e.g. region=us-east,disk=ssd',
          source,
        );
      rec[key] = md;
      return;
    }
    case 'duration': {
      const ms = parseDuration(unq);
      if (ms === undefined || ms < 0 || (ms === 0 && !spec.zero))
        throw invalid(key, raw, 'a duration such as 30s, 500ms or 2m', source);
      rec[key] = ms;
      return;
    }
    case 'int': {
      if (!/^\d+$/.test(unq) || Number(unq) <= 0)
        throw invalid(key, raw, 'a positive whole number', source);
      if (spec.max !== undefined && Number(unq) > spec.max)
        throw invalid(key, raw, `a whole number from 1 to ${spec.max}`, source);
      rec[key] = Number(unq);
      return;
    }
    case 'ip':
      if (unq !== '' && net.isIP(unq) === 0)
        throw invalid(key, raw, 'an IPv4 or IPv6 address, e.g. 10.0.0.2', source);
      rec[key] = unq;
      return;
    case 'hostport': {
      const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(unq);
      if (unq !== '' && (!m || Number(m[2]) > 65535))
        throw invalid(
          key,
          raw,
          'host:port with a port from 0 to 65535, e.g. 127.0.0.1:9090',
          source,
        );
      rec[key] = unq;
      return;
    }
    case 'fraction': {
      const v = parseFraction(unq);
      if (v === undefined || v <= 0 || v > 1)
        throw invalid(key, raw, 'a share above 0 and at most 1, e.g. 1/3, 0.5 or 50%', source);
      rec[key] = v;
      return;
    }
    case 'enum':
      if (!spec.values!.includes(unq))
        throw invalid(key, raw, `one of ${spec.values!.join(', ')}`, source);
      rec[key] = unq;
      return;
  }
}

function keyOf(name: string, source: string): keyof DaemonConfig {
  const key = name.replace(/-/g, '_').toLowerCase();
  if (!(key in CONFIG_KEYS)) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `unknown configuration key "${name}" (${source})`,
      { details: { field: name, source } },
    );
  }
  return key as keyof DaemonConfig;
}

/** Parses a config file: `key=value` lines, `#` comments, optional quotes (fleet.conf's format). */
export function parseConfigFile(
  text: string,
  file: string,
): [keyof DaemonConfig, string, string][] {
  const out: [keyof DaemonConfig, string, string][] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#') || t.startsWith(';')) return;
    const eq = t.indexOf('=');
    const where = `${file}:${i + 1}`;
    if (eq <= 0)
      throw new FlotillaError(ErrorCode.ConfigInvalid, `${where}: expected key=value, got "${t}"`, {
        details: { file, line: i + 1 },
      });
    out.push([keyOf(t.slice(0, eq).trim(), where), t.slice(eq + 1).trim(), where]);
  });
  return out;
}

export interface LoadedConfig {
  config: DaemonConfig;
  /** The config file read, if any (SIGHUP re-reads it). */
  file?: string;
  /** One line per fleet setting that means nothing in Flotilla (fleet-compat.ts). */
  notices: string[];
}

/**
 * Builds the configuration from file, environment and flags. Throws FlotillaError
 * CONFIG_INVALID naming the key and its source for any bad value.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const first = loadWith(defaultConfig(), argv, env);
  // Dev mode changes the defaults (not what the user set): run again on top of them.
  return first.config.dev ? loadWith(devDefaults(first.config.data_dir), argv, env) : first;
}

/** Dev mode: one machine, embedded store and bus, state under data_dir, TCP endpoint on loopback. */
export function devDefaults(dataDir: string): DaemonConfig {
  return {
    ...defaultConfig(),
    dev: true,
    data_dir: dataDir,
    units_directory: path.join(dataDir, 'units'),
    driver: 'process',
    grpc_listen: ['127.0.0.1:7070', `unix://${path.resolve(dataDir, 'flotilla.sock')}`],
    agent_ttl: 10_000,
    public_ip: '127.0.0.1',
    snapshot_every: 1000,
  };
}

function loadWith(base: DaemonConfig, argv: string[], env: NodeJS.ProcessEnv): LoadedConfig {
  const flags: [keyof DaemonConfig, string][] = [];
  let file: string | undefined;
  let fileRequired = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      throw new FlotillaError(ErrorCode.ConfigInvalid, `unexpected argument "${a}"`, {
        details: { field: a },
      });
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq > 0 ? eq : undefined);
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : undefined;
    if (name === 'config') {
      value ??= argv[++i];
      if (value === undefined)
        throw new FlotillaError(ErrorCode.ConfigInvalid, '--config needs a file path');
      file = value;
      fileRequired = true;
      continue;
    }
    const key = keyOf(name, `flag --${name}`);
    if (value === undefined) {
      if (
        CONFIG_KEYS[key].kind === 'bool' &&
        (argv[i + 1] === undefined || argv[i + 1].startsWith('--'))
      )
        value = 'true';
      else value = argv[++i];
    }
    if (value === undefined)
      throw new FlotillaError(ErrorCode.ConfigInvalid, `flag --${name} needs a value`, {
        details: { field: key },
      });
    flags.push([key, value]);
  }
  const config: DaemonConfig = { ...base };
  // fleetd's fleet.conf and FLEET_* first: Flotilla's own settings below win over them.
  const notices = applyFleetConfig(env, (k, raw, source) =>
    setValue(config, keyOf(k, source), raw, source),
  );
  file ??= env.FLOTILLA_CONFIG ?? DEFAULT_CONFIG_FILE;
  let used: string | undefined;
  if (fs.existsSync(file)) {
    for (const [k, v, where] of parseConfigFile(fs.readFileSync(file, 'utf8'), file))
      setValue(config, k, v, where);
    used = file;
  } else if (fileRequired) {
    throw new FlotillaError(ErrorCode.ConfigInvalid, `config file ${file} does not exist`, {
      details: { file },
    });
  }
  for (const key of Object.keys(CONFIG_KEYS) as (keyof DaemonConfig)[]) {
    const v = env[`FLOTILLA_${key.toUpperCase()}`];
    if (v !== undefined) setValue(config, key, v, `environment FLOTILLA_${key.toUpperCase()}`);
  }
  for (const [k, v] of flags) setValue(config, k, v, `flag --${k.replace(/_/g, '-')}`);
  return { config, file: used, notices };
}
