import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * flotillad started with fleetd's own configuration, as an operator migrating brings it: a
 * fleet.conf with keys Flotilla has no use for, and FLEET_* variables from cloud-config.
 */
jest.setTimeout(60_000);

let dir: string;
let daemon: DevDaemon | undefined;

afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fleet.conf and FLEET_* are accepted: honoured keys apply, the others get one notice line each', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetconf-'));
  const conf = path.join(dir, 'fleet.conf');
  fs.writeFileSync(conf, 'engine_reconcile_interval=10\nverbosity=0\nmetadata="role=web"\n');
  daemon = await startDevDaemon({
    dir,
    env: {
      FLOTILLA_FLEET_CONFIG: conf,
      FLEET_METADATA: 'role=db,region=east',
      FLEET_ENABLE_GRPC: 'true',
    },
  });
  const endpoint = `127.0.0.1:${daemon.port}`;
  let machines = '';
  for (let i = 0; i < 100 && !machines.includes('region=east'); i++) {
    machines = (await runCli(['list-machines', '--no-legend'], { endpoint })).stdout;
    await new Promise((r) => setTimeout(r, 100));
  }
  // FLEET_METADATA wins over fleet.conf's metadata.
  expect(machines).toContain('region=east,role=db');
  const out = daemon.output();
  const notices = out.split('\n').filter((l) => l.includes('is ignored:'));
  expect(notices).toHaveLength(2);
  expect(notices.join('\n')).toContain(`fleet setting engine_reconcile_interval (${conf}:1)`);
  expect(notices.join('\n')).toContain('fleet setting enable_grpc (environment FLEET_ENABLE_GRPC)');
});

test('an unknown fleet key stops flotillad with exit 2 naming the file and line', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-fleetconf-'));
  const conf = path.join(dir, 'fleet.conf');
  fs.writeFileSync(conf, '# fleet\nagent_tll=30s\n');
  await expect(startDevDaemon({ dir, env: { FLOTILLA_FLEET_CONFIG: conf } })).rejects.toThrow(
    new RegExp(`unknown fleet configuration key "agent_tll" \\(${conf}:2\\)`),
  );
});
