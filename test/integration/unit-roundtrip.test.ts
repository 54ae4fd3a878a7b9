import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { UnitOption } from '../../src/unit';
import {
  checkUnitOptions,
  parseUnitFile,
  serializeUnitFile,
  systemdValue,
  UNIT_NAME_MAX,
  validateUnitName,
} from '../../src/unit';
import { startSystemd, type SystemdManager } from '../harness';
import { hostileText } from '../helpers/hostile';

/**
 * What the API accepts, read by systemd itself: a real `systemd --user` (test/harness) loads the
 * files Flotilla writes, and `systemctl show` says what it read. Accepted values come back as
 * themselves (continuations joined); each kind of option the API refuses is shown to read
 * differently to systemd than to Flotilla's parser, which is why it is refused. Unit names: the
 * longest accepted name loads, and the types Flotilla refuses are refused by systemd too.
 */
jest.setTimeout(120_000);

let manager: SystemdManager;
let unitDir: string;

beforeAll(async () => {
  manager = await startSystemd();
  unitDir = path.join(manager.env.XDG_RUNTIME_DIR!, 'systemd', 'user');
  fs.mkdirSync(unitDir, { recursive: true });
});

afterAll(async () => {
  await manager?.dispose();
});

/** systemd's own answer to Manager.LoadUnit(name), over D-Bus (no name mangling on the way). */
function loadUnit(name: string): { code: number | null; out: string } {
  const r = spawnSync(
    'busctl',
    [
      '--user',
      'call',
      'org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.freedesktop.systemd1.Manager',
      'LoadUnit',
      's',
      name,
    ],
    { env: manager.env, encoding: 'utf8', timeout: 20_000 },
  );
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Writes the files, reloads once, and returns what systemd read as each unit's Description. */
function descriptions(files: Map<string, string>): Map<string, string> {
  for (const f of fs.readdirSync(unitDir)) fs.rmSync(path.join(unitDir, f));
  for (const [name, text] of files) fs.writeFileSync(path.join(unitDir, name), text);
  execFileSync('systemctl', ['--user', 'daemon-reload'], { env: manager.env, timeout: 20_000 });
  const out = new Map<string, string>();
  for (const name of files.keys()) {
    const r = execFileSync(
      'systemctl',
      ['--user', 'show', name, '--property=Description,LoadState'],
      { env: manager.env, encoding: 'utf8', timeout: 20_000 },
    );
    const props = Object.fromEntries(
      r
        .trimEnd()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(props.LoadState).toBe('loaded');
    out.set(name, props.Description);
  }
  return out;
}

function unit(description: string): UnitOption[] {
  return [
    { section: 'Unit', name: 'Description', value: description },
    { section: 'Service', name: 'ExecStart', value: '/bin/true' },
  ];
}

describe('unit files as systemd reads them', () => {
  it('accepted values come back from systemd as themselves', () => {
    // Specifiers (%) are systemd's business, not the file syntax's; leave them out.
    const value = hostileText(40).filter((v) => !v.includes('%'));
    const accepted = fc
      .sample(value, { numRuns: 4000, seed: 12 })
      .filter((v) => {
        try {
          checkUnitOptions('x.service', unit(v));
          return true;
        } catch {
          return false;
        }
      })
      .filter((v) => v.includes('\\') || v.includes('\t') || /[^\x20-\x7e]/.test(v));
    const sample = [...new Set(accepted)].slice(0, 60);
    sample.push('a \\\n  b \\\\\\\n c', 'tab\there', 'ümlaut ☃', '[not a header]', 'x = y');
    expect(sample.length).toBeGreaterThan(30);
    const files = new Map(sample.map((v, i) => [`rt${i}.service`, serializeUnitFile(unit(v))]));
    const read = descriptions(files);
    sample.forEach((v, i) => {
      const text = files.get(`rt${i}.service`)!;
      expect(parseUnitFile(text)).toEqual(unit(v));
      expect([v, read.get(`rt${i}.service`)]).toEqual([v, systemdValue(v)]);
    });
  });

  it('what the API refuses reads differently to systemd than to Flotilla', () => {
    const refused = [
      'x \\\\\nDescription=smuggled',
      'x\rDescription=smuggled',
      'x \\\n#comment',
      'x \\\n;comment',
      '\\\nx',
    ];
    const files = new Map(refused.map((v, i) => [`bad${i}.service`, serializeUnitFile(unit(v))]));
    const read = descriptions(files);
    refused.forEach((v, i) => {
      expect(() => checkUnitOptions('x.service', unit(v))).toThrow();
      const flotilla = parseUnitFile(files.get(`bad${i}.service`)!).find(
        (o) => o.name === 'Description',
      )?.value;
      // Flotilla's parser (go-systemd's rules) and systemd disagree on the value.
      expect([v, read.get(`bad${i}.service`)]).not.toEqual([v, systemdValue(flotilla ?? '')]);
    });
  });

  it('unit names: the longest name loads; a longer one and the types Flotilla refuses are refused by systemd', () => {
    const longest = `${'a'.repeat(UNIT_NAME_MAX - 1 - '.service'.length)}.service`;
    expect(() => validateUnitName(longest)).not.toThrow();
    expect(descriptions(new Map([[longest, serializeUnitFile(unit('long'))]])).get(longest)).toBe(
      'long',
    );
    expect(loadUnit(longest).code).toBe(0);
    for (const name of [`a${longest}`, 'a.busname', 'a.snapshot', 'é.service', 'a b.service']) {
      expect(() => validateUnitName(name)).toThrow();
      const r = loadUnit(name);
      expect([name, r.code, r.out]).toEqual([name, 1, expect.stringMatching(/not valid|invalid/i)]);
    }
  });
});
