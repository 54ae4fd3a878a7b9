import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dbus from 'dbus-next';
import { Etcd3 } from 'etcd3';
import { connect, StringCodec } from 'nats';
import { HarnessError, HarnessErrorCode, startEtcd, startNats, startSystemd } from '../harness';
import { startNatsCluster } from '../harness/nats-cluster';
import { managerAnswers } from '../harness/systemd';
import { isAlive } from '../harness/registry';

const sc = StringCodec();

describe('startEtcd', () => {
  it('serves put/get and grants a lease that expires when revoked', async () => {
    await using etcd = await startEtcd();
    const client = new Etcd3({ hosts: etcd.endpoints });
    try {
      await client.put('/flotilla/test').value('hello');
      expect(await client.get('/flotilla/test').string()).toBe('hello');

      const lease = client.lease(5);
      await lease.put('/flotilla/leased').value('x');
      expect(await client.get('/flotilla/leased').string()).toBe('x');
      await lease.revoke();
      expect(await client.get('/flotilla/leased').string()).toBeNull();
    } finally {
      client.close();
    }
  });

  it('removes its process and data directory on dispose', async () => {
    const etcd = await startEtcd();
    const pid = etcd.members[0].server.pid!;
    const dir = etcd.members[0].server.spec.dir;
    expect(isAlive(pid)).toBe(true);
    await etcd.dispose();
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('fails with a message naming the binary and the Debian package', async () => {
    const err = await startEtcd({ binary: '/nonexistent/etcd' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HarnessError);
    expect((err as HarnessError).code).toBe(HarnessErrorCode.BinaryMissing);
    expect((err as Error).message).toBe(
      'etcd binary not found at /nonexistent/etcd: install the Debian package etcd-server (apt-get install -y etcd-server)',
    );
  });

  it('fails at once, with the server output, when the process exits before it is ready', async () => {
    // /bin/false exits immediately: the harness must not wait for its ready timeout.
    const err = await startEtcd({ binary: '/bin/false' }).catch((e: unknown) => e);
    expect((err as HarnessError).code).toBe(HarnessErrorCode.ExitedEarly);
    expect((err as Error).message).toMatch(/^etcd exited \(code 1\) before it was ready/);
  });
});

describe('startNats', () => {
  it('delivers publish/subscribe and request/reply', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const sub = nc.subscribe('flotilla.test.>');
      const got: string[] = [];
      const done = (async () => {
        for await (const m of sub) {
          got.push(`${m.subject}=${sc.decode(m.data)}`);
          if (got.length === 2) break;
        }
      })();
      const responder = nc.subscribe('flotilla.rpc');
      void (async () => {
        for await (const m of responder) m.respond(sc.encode(sc.decode(m.data).toUpperCase()));
      })();
      nc.publish('flotilla.test.a', sc.encode('1'));
      nc.publish('flotilla.test.b', sc.encode('2'));
      await done;
      expect(got).toEqual(['flotilla.test.a=1', 'flotilla.test.b=2']);
      const reply = await nc.request('flotilla.rpc', sc.encode('ping'), { timeout: 2000 });
      expect(sc.decode(reply.data)).toBe('PING');
    } finally {
      await nc.close();
    }
  });

  it('fails with a message naming the binary and the Debian package', async () => {
    await expect(startNats({ binary: '/nonexistent/nats-server' })).rejects.toThrow(
      'nats-server binary not found at /nonexistent/nats-server: install the Debian package nats-server',
    );
  });

  it('restarts on the same port', async () => {
    await using nats = await startNats();
    await nats.stop();
    await nats.start();
    const nc = await connect({ servers: nats.url });
    await nc.flush();
    await nc.close();
  });
});

describe('startNatsCluster', () => {
  it('routes messages between nodes on ports they picked, and restarts a node on its own', async () => {
    await using cluster = await startNatsCluster(3);
    expect(new Set(cluster.urls).size).toBe(3);
    const before = cluster.nodes[2].url;
    await cluster.nodes[2].stop();
    await cluster.nodes[2].start();
    expect(cluster.nodes[2].url).toBe(before);
    const a = await connect({ servers: cluster.urls[0] });
    const b = await connect({ servers: cluster.urls[2] });
    try {
      const sub = b.subscribe('flotilla.routed');
      await b.flush();
      // Interest crosses the route asynchronously: publish until the other side hears one.
      const got = (async () => {
        for await (const m of sub) return sc.decode(m.data);
      })();
      const timer = setInterval(() => a.publish('flotilla.routed', sc.encode('hi')), 50);
      try {
        expect(await got).toBe('hi');
      } finally {
        clearInterval(timer);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('startSystemd', () => {
  it('a bus socket nobody listens on yet is "not ready", not a crash (CI: ECONNREFUSED on xdg/bus)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-bus-'));
    try {
      // connect(2) to a file that is not a listening socket: ECONNREFUSED, as for a socket file
      // the bus daemon has not started listening on.
      const file = path.join(dir, 'bus');
      fs.writeFileSync(file, '');
      expect(await managerAnswers(`unix:path=${file}`)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('links, starts, observes active (running) and stops a real unit over D-Bus', async () => {
    await using manager = await startSystemd();
    const unitFile = path.join(manager.dir, 'harness-hello.service');
    fs.writeFileSync(unitFile, '[Service]\nExecStart=/bin/sleep 300\n');

    const bus = dbus.sessionBus({ busAddress: manager.busAddress });
    try {
      const obj = await bus.getProxyObject('org.freedesktop.systemd1', '/org/freedesktop/systemd1');
      const mgr = obj.getInterface('org.freedesktop.systemd1.Manager');
      await mgr.LinkUnitFiles([unitFile], true, false);
      await mgr.Reload();
      await mgr.StartUnit('harness-hello.service', 'replace');

      const unitPath = (await mgr.GetUnit('harness-hello.service')) as string;
      const unitObj = await bus.getProxyObject('org.freedesktop.systemd1', unitPath);
      const props = unitObj.getInterface('org.freedesktop.DBus.Properties');
      const state = async () => ({
        active: (await props.Get('org.freedesktop.systemd1.Unit', 'ActiveState')).value as string,
        sub: (await props.Get('org.freedesktop.systemd1.Unit', 'SubState')).value as string,
      });
      await waitFor(async () => (await state()).sub === 'running');
      expect(await state()).toEqual({ active: 'active', sub: 'running' });

      // The unit really runs, inside the manager's own cgroup.
      const svc = await props.Get('org.freedesktop.systemd1.Service', 'MainPID');
      const mainPid = Number(svc.value);
      expect(mainPid).toBeGreaterThan(0);
      const cg = fs.readFileSync(`/proc/${mainPid}/cgroup`, 'utf8');
      expect(cg).toContain(`/${manager.cgroup}/app.slice/harness-hello.service`);

      await mgr.StopUnit('harness-hello.service', 'replace');
      await waitFor(async () => (await state()).active === 'inactive');
      expect(isAlive(mainPid)).toBe(false);
    } finally {
      bus.disconnect();
    }
  });

  it('stops the manager, its units and its cgroups on dispose', async () => {
    const manager = await startSystemd();
    const pid = manager.pid;
    await manager.dispose();
    expect(isAlive(pid)).toBe(false);
    expect(fs.existsSync(`/sys/fs/cgroup/systemd/${manager.cgroup}`)).toBe(false);
    expect(fs.existsSync(manager.dir)).toBe(false);
  });

  it('fails with a message naming the binary and the Debian package', async () => {
    await expect(startSystemd({ binary: '/nonexistent/systemd' })).rejects.toThrow(
      'systemd binary not found at /nonexistent/systemd: install the Debian package systemd',
    );
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
