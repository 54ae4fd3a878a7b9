/**
 * fleetd's own configuration, accepted as operators bring it when they migrate: the keys of
 * `/etc/fleet/fleet.conf` and the `FLEET_<KEY>` environment variables cloud-config sets
 * (`FLEET_ETCD_SERVERS`, `FLEET_METADATA`, `FLEET_PUBLIC_IP`, …).
 *
 * Every key fleetd knew is accepted. One Flotilla has under the same or another name is
 * honoured (translated where its values differ: `verbosity` 1 and up is `log_level=debug`); one
 * that means nothing in Flotilla gets one notice line saying why, and is otherwise ignored. A key
 * fleetd did not know is refused, naming its file and line or variable, as Flotilla's own are.
 *
 * Priority, lowest first: fleet.conf, FLEET_* variables, then Flotilla's own file, FLOTILLA_*
 * variables and flags (config.ts): where both name a setting, Flotilla's wins.
 */
import fs from 'node:fs';
import { ErrorCode, FlotillaError } from '../errors';

/** fleetd's configuration file. `FLOTILLA_FLEET_CONFIG` names another ('' reads none). */
export const FLEET_CONFIG_FILE = '/etc/fleet/fleet.conf';

/** A fleet key Flotilla honours: the Flotilla key and, when the values differ, the translation. */
interface Honoured {
  key: string;
  value?: (raw: string, source: string) => string;
}

/** fleetd's `verbosity` (an integer, 0 by default) as Flotilla's `log_level`. */
function verbosity(raw: string, source: string): string {
  const v = raw.trim().replace(/^"(.*)"$/, '$1');
  if (!/^\d+$/.test(v)) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `invalid value for verbosity (${source}): "${raw}" (want a whole number, as fleetd)`,
      { details: { field: 'verbosity', source } },
    );
  }
  return Number(v) >= 1 ? 'debug' : 'info';
}

const HONOURED: Record<string, Honoured> = {
  verbosity: { key: 'log_level', value: verbosity },
  etcd_servers: { key: 'etcd_servers' },
  etcd_keyfile: { key: 'etcd_keyfile' },
  etcd_certfile: { key: 'etcd_certfile' },
  etcd_cafile: { key: 'etcd_cafile' },
  etcd_username: { key: 'etcd_username' },
  etcd_password: { key: 'etcd_password' },
  etcd_request_timeout: { key: 'etcd_request_timeout' },
  public_ip: { key: 'public_ip' },
  metadata: { key: 'metadata' },
  agent_ttl: { key: 'agent_ttl' },
  token_limit: { key: 'token_limit' },
  disable_engine: { key: 'disable_engine' },
};

/** fleet keys without a meaning in Flotilla, and why. */
export const IGNORED: Record<string, string> = {
  etcd_key_prefix:
    'Flotilla keeps its data in etcd under /flotilla/<cluster>/; name the cluster with `cluster`',
  engine_reconcile_interval:
    "Flotilla's engine acts on every event as it is committed; there is no periodic reconciliation to tune",
  disable_watches: 'Flotilla does not watch etcd for units; schedules reach agents over NATS',
  verify_units: 'unit signing was removed from fleet before v1.0 and Flotilla has none',
  authorized_keys_file: 'it only served verify_units (unit signing), which Flotilla does not have',
  enable_grpc:
    'Flotilla always serves gRPC and agents always talk to the engine over NATS; nothing to switch on',
};

export const FLEET_KEYS: readonly string[] = [...Object.keys(HONOURED), ...Object.keys(IGNORED)];

/** How fleet-compat hands a setting to Flotilla's configuration (config.ts's setValue). */
export type SetFlotillaValue = (key: string, raw: string, source: string) => void;

function apply(
  name: string,
  raw: string,
  source: string,
  set: SetFlotillaValue,
  notices: Set<string>,
): void {
  const key = name.trim().toLowerCase().replace(/-/g, '_');
  const honoured = HONOURED[key];
  if (honoured) {
    set(honoured.key, honoured.value ? honoured.value(raw, source) : raw, source);
    return;
  }
  const why = IGNORED[key];
  if (why !== undefined) {
    notices.add(`fleet setting ${key} (${source}) is ignored: ${why}`);
    return;
  }
  throw new FlotillaError(
    ErrorCode.ConfigInvalid,
    `unknown fleet configuration key "${name}" (${source}); fleetd's keys are ${FLEET_KEYS.join(', ')}`,
    { details: { field: name, source } },
  );
}

/**
 * Applies fleet.conf, then the FLEET_* variables, through `set`. Returns the notices (one line
 * per ignored key and source).
 */
export function applyFleetConfig(env: NodeJS.ProcessEnv, set: SetFlotillaValue): string[] {
  const notices = new Set<string>();
  const file = env.FLOTILLA_FLEET_CONFIG ?? FLEET_CONFIG_FILE;
  if (file !== '' && fs.existsSync(file)) {
    fs.readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .forEach((line, i) => {
        const t = line.trim();
        if (t === '' || t.startsWith('#') || t.startsWith(';')) return;
        const where = `${file}:${i + 1}`;
        const eq = t.indexOf('=');
        if (eq <= 0) {
          throw new FlotillaError(
            ErrorCode.ConfigInvalid,
            `${where}: expected key=value, got "${t}"`,
            {
              details: { file, line: i + 1 },
            },
          );
        }
        apply(t.slice(0, eq), t.slice(eq + 1).trim(), where, set, notices);
      });
  }
  for (const key of FLEET_KEYS) {
    const v = env[`FLEET_${key.toUpperCase()}`];
    if (v !== undefined) apply(key, v, `environment FLEET_${key.toUpperCase()}`, set, notices);
  }
  return [...notices];
}
