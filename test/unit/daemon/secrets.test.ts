import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../../src/daemon/config';
import { readSecretFile, secretWarnings } from '../../../src/daemon/secrets';
import { etcdSecurity, natsSecurity } from '../../../src/daemon/stores';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-secrets-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string, mode: number): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode);
  return f;
};

describe('secrets from files', () => {
  it('reads a password file without its trailing newline; refuses an empty or missing one', () => {
    expect(readSecretFile(file('pw', 's3cret\n', 0o600), 'nats_password_file')).toBe('s3cret');
    expect(() => readSecretFile(file('empty', '\n', 0o600), 'nats_password_file')).toThrow(
      `nats_password_file: ${path.join(dir, 'empty')} is empty`,
    );
    expect(() => readSecretFile(path.join(dir, 'nope'), 'etcd_password_file')).toThrow(
      `etcd_password_file: cannot read ${path.join(dir, 'nope')}`,
    );
  });

  it('takes the NATS and etcd passwords and the NKey seed from files, and refuses a file that is no seed', () => {
    const base = loadConfig([], { FLOTILLA_CONFIG: path.join(dir, 'none.conf') }).config;
    const pw = file('nats-pw', 'hunter2\n', 0o600);
    expect(natsSecurity({ ...base, nats_user: 'u', nats_password_file: pw })).toEqual({
      user: 'u',
      pass: 'hunter2',
    });
    const etcdPw = file('etcd-pw', 'hunter3\n', 0o600);
    expect(etcdSecurity({ ...base, etcd_username: 'e', etcd_password_file: etcdPw }).auth).toEqual({
      username: 'e',
      password: 'hunter3',
    });
    const seed = 'SUALF74L43Z5K2AIP3KBOGOQXELXK2NX3MX24VOFKBTXR7RKZKHFFGMMPQ';
    const nk = file('m.nk', `${seed}\n`, 0o600);
    expect(natsSecurity({ ...base, nats_nkey_seed_file: nk }).nkeySeed).toBe(seed);
    const notSeed = file('bad.nk', 'not a seed\n', 0o600);
    expect(() => natsSecurity({ ...base, nats_nkey_seed_file: notSeed })).toThrow(
      /nats_nkey_seed_file: .* does not hold a NATS user seed/,
    );
  });

  it('warns of a secret on the command line, in a config file others can read, in a readable seed file', () => {
    const conf = file('flotilla.conf', 'etcd_password=topsecret\n', 0o644);
    const seed = file('open.nk', 'SU…\n', 0o644);
    const argv = ['--config', conf, '--nats-password', 'x', '--nats-nkey-seed-file', seed];
    const loaded = loadConfig(argv, {});
    const w = secretWarnings(loaded.config, argv, loaded.file);
    expect(w).toEqual([
      'nats_password is given on the command line, where every local user can read it (ps); use nats_password_file',
      `${conf} holds etcd_password and other users can read it (mode 0644); chmod 600 it or use etcd_password_file`,
      `nats_nkey_seed_file ${seed} is readable by other users (mode 0644); chmod 600 it`,
    ]);
    fs.chmodSync(conf, 0o600);
    fs.chmodSync(seed, 0o600);
    const quiet = ['--config', conf, '--nats-nkey-seed-file', seed];
    const l2 = loadConfig(quiet, {});
    expect(secretWarnings(l2.config, quiet, l2.file)).toEqual([]);
  });
});
