import fs from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { DaemonMetrics } from '../../../src/daemon/metrics';
import type { Engine } from '../../../src/engine/engine';
import { emptyState } from '../../../src/engine/state';

interface Rule {
  alert: string;
  expr: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

const FILE = path.join(__dirname, '..', '..', '..', 'packaging', 'flotilla-alerts.yml');

describe('packaging/flotilla-alerts.yml', () => {
  it('is well-formed and names only series flotillad exports', async () => {
    const doc = load(fs.readFileSync(FILE, 'utf8')) as { groups: { rules: Rule[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThan(5);
    const engine = {
      epoch: 1,
      state: emptyState(),
      stats: {},
      lastSnapshotTime: 0,
    } as unknown as Engine;
    const metrics = new DaemonMetrics({
      engine: () => engine,
      agent: () => ({ stats: {} }),
      leader: () => undefined,
      storeUp: async () => true,
      version: 'x',
    });
    const exported = new Set(
      [...(await metrics.render()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap(([, name, type]) =>
        type === 'histogram' ? [`${name}_bucket`, `${name}_count`, `${name}_sum`] : [name],
      ),
    );
    for (const r of rules) {
      expect(r.alert).toMatch(/^Flotilla[A-Za-z]+$/);
      expect(['warning', 'critical']).toContain(r.labels.severity);
      expect(r.annotations.summary).toBeTruthy();
      for (const [name] of r.expr.matchAll(/\bflotilla_[a-z0-9_]+/g)) {
        expect({ alert: r.alert, name, exported: exported.has(name) }).toEqual({
          alert: r.alert,
          name,
          exported: true,
        });
      }
    }
  });
});
