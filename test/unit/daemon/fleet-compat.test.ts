import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../src/daemon/config';
import { FLEET_KEYS, IGNORED } from '../../../src/daemon/fleet-compat';
import { ErrorCode, FlotillaError } from '../../../src/errors';

/** A fleetd fleet.conf as CoreOS shipped it, every key set. */
const FLEET_CONF = `# /etc/fleet/fleet.conf
verbosity=1
etcd_servers=["http://10.0.0.1:2379","http://10.0.0.2:2379"]
etcd_keyfile=/etc/fleet/etcd.key
etcd_certfile=/etc/fleet/etcd.crt
etcd_cafile=/etc/fleet/ca.crt
etcd_username=fleet
etcd_password=secret
etcd_key_prefix=/_coreos.com/fleet/
etcd_request_timeout=1.5
engine_reconcile_interval=10
public_ip="10.0.0.5"
metadata="region=us-west,disk=ssd"
agent_ttl="45s"
token_limit=50
disable_engine=true
disable_watches=false
verify_units=false
authorized_keys_file=~/.ssh/authorized_keys
enable_grpc=true
`;

function files(fleet: string, flotilla?: string): { fleet: string; flotilla: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetconf-'));
  const f = path.join(dir, 'fleet.conf');
  fs.writeFileSync(f, fleet);
  const own = path.join(dir, 'flotilla.conf');
  if (flotilla !== undefined) fs.writeFileSync(own, flotilla);
  return { fleet: f, flotilla: own };
}

describe("fleetd's configuration", () => {
  it('accepts every fleetd key in fleet.conf: honours those with a Flotilla meaning, one notice for each other', () => {
    const f = files(FLEET_CONF);
    const { config, notices } = loadConfig([], {
      FLOTILLA_FLEET_CONFIG: f.fleet,
      FLOTILLA_CONFIG: f.flotilla,
    });
    expect(config.log_level).toBe('debug');
    expect(config.etcd_servers).toEqual(['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
    expect(config.etcd_keyfile).toBe('/etc/fleet/etcd.key');
    expect(config.etcd_certfile).toBe('/etc/fleet/etcd.crt');
    expect(config.etcd_cafile).toBe('/etc/fleet/ca.crt');
    expect(config.etcd_username).toBe('fleet');
    expect(config.etcd_password).toBe('secret');
    expect(config.etcd_request_timeout).toBe(1500);
    expect(config.public_ip).toBe('10.0.0.5');
    expect(config.metadata).toEqual({ region: 'us-west', disk: 'ssd' });
    expect(config.agent_ttl).toBe(45_000);
    expect(config.token_limit).toBe(50);
    expect(config.disable_engine).toBe(true);
    expect(notices).toHaveLength(Object.keys(IGNORED).length);
    for (const key of Object.keys(IGNORED)) {
      const line = notices.find((n) => n.startsWith(`fleet setting ${key} (`));
      expect(line).toContain(`${f.fleet}:`);
      expect(line).toContain(`is ignored: ${IGNORED[key]}`);
    }
    expect(notices.every((n) => !n.includes('\n'))).toBe(true);
  });

  it('takes FLEET_* variables over fleet.conf; Flotilla file, FLOTILLA_* and flags win over both', () => {
    const f = files(
      'public_ip=10.0.0.5\nagent_ttl=45s\nmetadata=region=a\nverbosity=0\n',
      'agent_ttl=20s\n',
    );
    const { config, notices } = loadConfig(['--metadata', 'region=c'], {
      FLOTILLA_FLEET_CONFIG: f.fleet,
      FLOTILLA_CONFIG: f.flotilla,
      FLEET_PUBLIC_IP: '10.0.0.6',
      FLEET_AGENT_TTL: '50s',
      FLEET_METADATA: 'region=b',
      FLEET_ETCD_SERVERS: 'http://10.0.0.9:2379',
      FLEET_ENGINE_RECONCILE_INTERVAL: '5',
      FLOTILLA_PUBLIC_IP: '10.0.0.7',
    });
    expect(config.public_ip).toBe('10.0.0.7');
    expect(config.agent_ttl).toBe(20_000);
    expect(config.metadata).toEqual({ region: 'c' });
    expect(config.etcd_servers).toEqual(['http://10.0.0.9:2379']);
    expect(config.log_level).toBe('info');
    expect(notices).toEqual([
      expect.stringMatching(
        /^fleet setting engine_reconcile_interval \(environment FLEET_ENGINE_RECONCILE_INTERVAL\) is ignored: /,
      ),
    ]);
  });

  it.each([
    [
      'an unknown key',
      'no_such_key=1\n',
      /unknown fleet configuration key "no_such_key" \(.*fleet\.conf:1\)/,
    ],
    [
      'a bad value, naming file and line',
      '\nagent_ttl=soon\n',
      /invalid value for agent_ttl \(.*fleet\.conf:2\)/,
    ],
    ['a bad verbosity', 'verbosity=loud\n', /invalid value for verbosity \(.*fleet\.conf:1\)/],
  ])('refuses %s', (_what, text, message) => {
    const f = files(text);
    let err: unknown;
    try {
      loadConfig([], { FLOTILLA_FLEET_CONFIG: f.fleet, FLOTILLA_CONFIG: f.flotilla });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe(ErrorCode.ConfigInvalid);
    expect((err as Error).message).toMatch(message);
  });

  it('lists all of fleetd v1.0 keys', () => {
    expect([...FLEET_KEYS].sort()).toEqual(
      [
        'verbosity',
        'etcd_servers',
        'etcd_keyfile',
        'etcd_certfile',
        'etcd_cafile',
        'etcd_username',
        'etcd_password',
        'etcd_key_prefix',
        'etcd_request_timeout',
        'engine_reconcile_interval',
        'public_ip',
        'metadata',
        'agent_ttl',
        'token_limit',
        'disable_engine',
        'disable_watches',
        'verify_units',
        'authorized_keys_file',
        'enable_grpc',
      ].sort(),
    );
  });
});

describe('addresses are checked when the configuration is read, naming the flag', () => {
  const env = { FLOTILLA_CONFIG: '/nonexistent/flotilla.conf', FLOTILLA_FLEET_CONFIG: '' };
  it.each([
    [['--public-ip', 'notanip'], 'invalid value for public_ip (flag --public-ip): "notanip"'],
    [['--public-ip', '10.0.0.300'], 'invalid value for public_ip (flag --public-ip)'],
    [
      ['--http-listen', '127.0.0.1:abc'],
      'invalid value for http_listen (flag --http-listen): "127.0.0.1:abc"',
    ],
    [['--http-listen', '127.0.0.1:70000'], 'invalid value for http_listen (flag --http-listen)'],
    [['--http-listen', 'nohost'], 'invalid value for http_listen (flag --http-listen)'],
  ])('refuses %j', (argv, message) => {
    expect(() => loadConfig(argv, env)).toThrow(message);
  });

  it.each([
    [['--public-ip', '10.0.0.2', '--http-listen', '127.0.0.1:9090']],
    [['--public-ip', 'fd00::1', '--http-listen', '[::1]:0']],
    [['--public-ip', '', '--http-listen', '']],
  ])('accepts %j', (argv) => {
    expect(() => loadConfig(argv, env)).not.toThrow();
  });
});
