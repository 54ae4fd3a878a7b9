import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_KEYS, defaultConfig, loadConfig } from '../../../src/daemon/config';
import { exampleConfig, formatDuration, usage } from '../../../src/daemon/config-doc';

const SHIPPED = path.join(__dirname, '..', '..', '..', 'packaging', 'flotilla.conf');

describe('packaging/flotilla.conf', () => {
  it('is what `flotillad --example-config` prints (regenerate it with that command)', () => {
    expect(fs.readFileSync(SHIPPED, 'utf8')).toBe(exampleConfig());
  });

  it('names every key, and read back uncommented gives exactly the defaults', () => {
    const text = exampleConfig();
    for (const key of Object.keys(CONFIG_KEYS)) {
      if (key === 'dev' || key === 'data_dir') continue;
      expect(text).toMatch(new RegExp(`^#${key}=`, 'm'));
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-conf-'));
    try {
      const file = path.join(dir, 'flotilla.conf');
      fs.writeFileSync(file, text.replace(/^#([a-z_]+=)/gm, '$1'));
      expect(loadConfig(['--config', file], {}).config).toEqual(defaultConfig());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('flotillad --help', () => {
  it('shows every key as a flag with its default', () => {
    const text = usage();
    expect(text).toMatch(/--agent-ttl\s+agent liveness TTL.*\n\s+default: 30s/);
    expect(text).toMatch(/--http-listen .*\n\s+default: 127\.0\.0\.1:7071/);
    for (const key of Object.keys(CONFIG_KEYS))
      expect(text).toContain(`--${key.replace(/_/g, '-')} `);
  });

  it('writes durations as the file takes them', () => {
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(60_000)).toBe('1m');
    expect(formatDuration(7_200_000)).toBe('2h');
    expect(formatDuration(1500)).toBe('1500ms');
  });
});
