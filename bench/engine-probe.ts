/**
 * `node --expose-gc dist/bench/engine-probe.js [units] [agents]`: the leader's engine alone, in
 * one process, on the memory store and the in-process bus, with fake agents that answer every
 * schedule change with an "activating" and then an "active" report. No gRPC, no etcd, no NATS:
 * what is left is the engine's own CPU per unit, and how long it keeps the event loop.
 *
 * Prints the time until every unit is reported active, CPU per unit, the event loop's longest
 * stall, and the latency of small writes sent every 20 ms while the burst runs. A development
 * tool for profiling (`--cpu-prof`); the figures of record come from `npm run bench`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { LocalHub } from '../src/bus/local';
import { Engine } from '../src/engine/engine';
import type { EventBody } from '../src/events/types';
import { decodeScheduleDelta, encode, PROTOCOL_VERSION, subjects } from '../src/protocol';
import { MemoryLogStore } from '../src/store/memory';
import { unitHash } from '../src/unit';
import type { UnitOption } from '../src/unit/types';
import { summarize, fmtMs } from './lib/histogram';

const units = Number(process.argv[2] ?? 20_000);
const agents = Number(process.argv[3] ?? 50);
const chunk = 1000;
const cluster = 'probe';

async function main(): Promise<void> {
  const hub = new LocalHub();
  const store = new MemoryLogStore();
  const term = await store.campaign(
    { machine: 'leader', address: '127.0.0.1:1' },
    new AbortController().signal,
  );
  // The store and the bus answer after a turn of the event loop, as etcd and NATS would.
  const io = (): Promise<void> => new Promise((r) => setImmediate(r));
  const append = term.append.bind(term);
  term.append = async (events) => {
    await io();
    return append(events);
  };
  const engine = await Engine.start({
    term,
    bus: hub.connect(),
    cluster,
    machineId: 'leader',
    address: '127.0.0.1:1',
    agentTtlMs: 60_000,
  });
  const subj = subjects(cluster);
  const agentBus = hub.connect();
  const machines = Array.from({ length: agents }, (_, i) => `m${String(i).padStart(4, '0')}`);
  const active = new Set<string>();
  let allActive: () => void = () => undefined;
  const done = new Promise<void>((r) => (allActive = r));
  for (const m of machines) {
    agentBus.subscribe(subj.schedule(m), (msg) => {
      const d = decodeScheduleDelta(msg.data);
      if (d.put.length === 0) return;
      const report = (activeState: string): void =>
        agentBus.publish(
          subj.report(m),
          encode({
            v: PROTOCOL_VERSION,
            machine: m,
            full: false,
            units: d.put.map((p) => ({
              unit: p.unit,
              load: 'loaded',
              active: activeState,
              sub: activeState === 'active' ? 'running' : 'start',
              hash: p.hash,
            })),
            gone: [],
          }),
        );
      setImmediate(() => report('activating'));
      setTimeout(() => {
        report('active');
        for (const p of d.put) active.add(p.unit);
        if (active.size >= units) allActive();
      }, 5);
    });
    agentBus.publish(
      subj.heartbeat(m),
      encode({ v: PROTOCOL_VERSION, machine: m, ip: '10.0.0.1', metadata: {}, epoch: 0 }),
    );
  }
  await new Promise((r) => setTimeout(r, 200));

  const options: UnitOption[] = [
    { section: 'Service', name: 'ExecStart', value: '/bin/sleep 100000' },
  ];
  const hash = unitHash(options);
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const small: number[] = [];
  let probing = true;
  const probe = (async () => {
    for (let i = 0; probing; i++) {
      const t = performance.now();
      await engine.append([
        { type: 'UnitSubmitted', unit: `probe-${i}.service`, options, hash, target: 'inactive' },
      ]);
      small.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const big: number[] = [];
  const queue: EventBody[][] = [];
  for (let i = 0; i < units; i += chunk) {
    const bodies: EventBody[] = [];
    for (let k = i; k < Math.min(i + chunk, units); k++)
      bodies.push({
        type: 'UnitSubmitted',
        unit: `u-${k}.service`,
        options,
        hash,
        target: 'launched',
      });
    queue.push(bodies);
  }
  const worker = async (): Promise<void> => {
    for (let b = queue.shift(); b; b = queue.shift()) {
      const t = performance.now();
      await engine.append(b);
      big.push(performance.now() - t);
    }
  };
  await Promise.all([worker(), worker()]);
  const acceptedMs = performance.now() - t0;
  await done;
  const ms = performance.now() - t0;
  probing = false;
  await probe;
  const cpu = process.cpuUsage(cpu0);
  loop.disable();
  const s = summarize(small);
  const b = summarize(big);
  console.log(
    `${units} units on ${agents} agents: accepted ${fmtMs(acceptedMs)}, all active ${fmtMs(ms)}`,
  );
  console.log(`CPU ${((cpu.user + cpu.system) / units).toFixed(0)} µs per unit (user+system)`);
  console.log(
    `event loop: max stall ${fmtMs(loop.max / 1e6)}, p99 ${fmtMs(loop.percentile(99) / 1e6)}`,
  );
  console.log(`small writes (${s.n}): p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)} max ${fmtMs(s.max)}`);
  console.log(`1,000-unit writes (${b.n}): p50 ${fmtMs(b.p50)} p99 ${fmtMs(b.p99)}`);
  (globalThis as { gc?: () => void }).gc?.();
  console.log(
    `heap used ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
  await engine.stop('probe done');
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
