import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, parseDuration, parseMetadata } from '../../../src/daemon/config';
import { ErrorCode, FlotillaError } from '../../../src/errors';

const NOFILE = { FLOTILLA_CONFIG: '/nonexistent/flotilla.conf' };

function tmpConf(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-conf-'));
  const file = path.join(dir, 'flotilla.conf');
  fs.writeFileSync(file, text);
  return file;
}

function refusal(fn: () => unknown): FlotillaError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FlotillaError);
    expect((err as FlotillaError).code).toBe(ErrorCode.ConfigInvalid);
    return err as FlotillaError;
  }
  throw new Error('expected a CONFIG_INVALID error');
}

describe('loadConfig', () => {
  it('gives file < environment < flags', () => {
    const file = tmpConf(
      '# fleet-style\ncluster=from-file\nagent_ttl=45s\nmetadata="region=us,disk=ssd"\npublic_ip=10.0.0.9\n',
    );
    const { config } = loadConfig(['--config', file, '--agent-ttl', '5s'], {
      FLOTILLA_CLUSTER: 'from-env',
      FLOTILLA_AGENT_TTL: '20s',
    });
    expect(config.cluster).toBe('from-env');
    expect(config.agent_ttl).toBe(5000);
    expect(config.metadata).toEqual({ region: 'us', disk: 'ssd' });
    expect(config.public_ip).toBe('10.0.0.9');
  });

  it('reads fleet key names and list syntaxes', () => {
    const file = tmpConf(
      'etcd_servers=["http://10.0.0.1:2379","http://10.0.0.2:2379"]\ndisable_engine=true\nsystemd_user=1\nunits_directory=/run/x\n',
    );
    const { config, file: used } = loadConfig([], { FLOTILLA_CONFIG: file });
    expect(used).toBe(file);
    expect(config.etcd_servers).toEqual(['http://10.0.0.1:2379', 'http://10.0.0.2:2379']);
    expect(config.disable_engine).toBe(true);
    expect(config.systemd_user).toBe(true);
    expect(config.units_directory).toBe('/run/x');
  });

  it('accepts --key=value, bare boolean flags and dashes for underscores', () => {
    const { config } = loadConfig(
      ['--nats-servers=nats://a:1,nats://b:2', '--disable-agent', '--driver', 'simulated'],
      NOFILE,
    );
    expect(config.nats_servers).toEqual(['nats://a:1', 'nats://b:2']);
    expect(config.disable_agent).toBe(true);
    expect(config.driver).toBe('simulated');
  });

  it("serves no fleet API unless fleet_api_listen is set; token_limit is fleet's 100", () => {
    for (const argv of [[], ['--dev', '--data-dir', '/tmp/d']]) {
      const { config } = loadConfig(argv, NOFILE);
      expect(config.fleet_api_listen).toEqual([]);
      expect(config.token_limit).toBe(100);
    }
    const file = tmpConf('fleet_api_listen=["unix:///var/run/fleet.sock","127.0.0.1:8080"]\n');
    expect(loadConfig([], { FLOTILLA_CONFIG: file }).config.fleet_api_listen).toEqual([
      'unix:///var/run/fleet.sock',
      '127.0.0.1:8080',
    ]);
    const { config } = loadConfig(
      ['--fleet-api-listen', 'unix:///tmp/f.sock', '--token-limit', '2'],
      {
        ...NOFILE,
        FLOTILLA_FLEET_API_LISTEN: '0.0.0.0:49153',
      },
    );
    expect(config.fleet_api_listen).toEqual(['unix:///tmp/f.sock']);
    expect(config.token_limit).toBe(2);
    expect(refusal(() => loadConfig(['--token-limit', '0'], NOFILE)).message).toBe(
      'invalid value for token_limit (flag --token-limit): "0" (want a positive whole number)',
    );
  });

  it('max_unit_bytes defaults to 64 KiB and is bounded by what one event can hold', () => {
    expect(loadConfig([], NOFILE).config.max_unit_bytes).toBe(65536);
    expect(loadConfig(['--max-unit-bytes', '102400'], NOFILE).config.max_unit_bytes).toBe(102400);
    expect(refusal(() => loadConfig(['--max-unit-bytes', '102401'], NOFILE)).message).toBe(
      'invalid value for max_unit_bytes (flag --max-unit-bytes): "102401" (want a whole number from 1 to 102400)',
    );
  });

  it('switches to dev defaults without overriding what the user set', () => {
    const { config } = loadConfig(['--dev', '--data-dir', '/tmp/d', '--agent-ttl', '3s'], NOFILE);
    expect(config.dev).toBe(true);
    expect(config.driver).toBe('process');
    expect(config.units_directory).toBe('/tmp/d/units');
    expect(config.agent_ttl).toBe(3000);
    expect(config.grpc_listen).toEqual(['127.0.0.1:7070', 'unix:///tmp/d/flotilla.sock']);
  });

  it.each([
    [
      ['--agent-ttl', 'soon'],
      'invalid value for agent_ttl (flag --agent-ttl): "soon" (want a duration such as 30s, 500ms or 2m)',
    ],
    [
      ['--metadata', 'region'],
      'invalid value for metadata (flag --metadata): "region" (want k=v pairs separated by commas, e.g. region=us-east,disk=ssd)',
    ],
    [
      ['--driver', 'docker'],
      'invalid value for driver (flag --driver): "docker" (want one of systemd, process, simulated)',
    ],
    [
      ['--disable-engine', 'maybe'],
      'invalid value for disable_engine (flag --disable-engine): "maybe" (want true or false)',
    ],
    [
      ['--snapshot-every', '-3'],
      'invalid value for snapshot_every (flag --snapshot-every): "-3" (want a positive whole number)',
    ],
    [['--bogus', '1'], 'unknown configuration key "bogus" (flag --bogus)'],
    [['stray'], 'unexpected argument "stray"'],
    [['--config', '/nonexistent/x.conf'], 'config file /nonexistent/x.conf does not exist'],
  ])('refuses %j with a message naming the key', (argv, message) => {
    expect(refusal(() => loadConfig(argv, NOFILE)).message).toBe(message);
  });

  it('names the environment variable and the file line', () => {
    expect(refusal(() => loadConfig([], { ...NOFILE, FLOTILLA_LEASE_TTL: 'x' })).message).toBe(
      'invalid value for lease_ttl (environment FLOTILLA_LEASE_TTL): "x" (want a duration such as 30s, 500ms or 2m)',
    );
    const file = tmpConf('cluster=a\n\nagent_ttl=later\n');
    expect(refusal(() => loadConfig(['--config', file], {})).message).toBe(
      `invalid value for agent_ttl (${file}:3): "later" (want a duration such as 30s, 500ms or 2m)`,
    );
    const bad = tmpConf('just words\n');
    expect(refusal(() => loadConfig(['--config', bad], {})).message).toBe(
      `${bad}:1: expected key=value, got "just words"`,
    );
  });
});

describe('parsers', () => {
  it.each([
    ['30s', 30000],
    ['500ms', 500],
    ['2m', 120000],
    ['1.5s', 1500],
    ['10', 10000],
  ])('parseDuration(%s) = %d ms', (raw, ms) => expect(parseDuration(raw)).toBe(ms));
  it('parseDuration refuses words', () => expect(parseDuration('10 seconds')).toBeUndefined());
  it('parseMetadata reads fleet pairs and refuses broken ones', () => {
    expect(parseMetadata('a=1, b=two')).toEqual({ a: '1', b: 'two' });
    expect(parseMetadata('')).toEqual({});
    expect(parseMetadata('a=')).toBeUndefined();
    expect(parseMetadata('=1')).toBeUndefined();
  });
});

describe('liveness settings', () => {
  it('reads agent_ttl_grace and mass_loss_threshold (1/3, 0.5, 50%); defaults: one TTL, 1/3', () => {
    const { config: d } = loadConfig([], NOFILE);
    expect([d.agent_ttl_grace, d.mass_loss_threshold]).toEqual([0, 1 / 3]);
    const file = tmpConf('agent_ttl_grace=1m\nmass_loss_threshold=50%\n');
    const { config } = loadConfig([], { FLOTILLA_CONFIG: file });
    expect([config.agent_ttl_grace, config.mass_loss_threshold]).toEqual([60_000, 0.5]);
    expect(loadConfig(['--mass-loss-threshold', '1/4'], NOFILE).config.mass_loss_threshold).toBe(
      0.25,
    );
    expect(loadConfig(['--mass-loss-threshold', '1'], NOFILE).config.mass_loss_threshold).toBe(1);
  });

  it('refuses a threshold outside (0, 1], naming the key and the source', () => {
    for (const bad of ['0', '1.5', '3/2', '1/0', 'half', '-0.2']) {
      const e = refusal(() => loadConfig(['--mass-loss-threshold', bad], NOFILE));
      expect(e.message).toContain('mass_loss_threshold');
    }
  });
});
