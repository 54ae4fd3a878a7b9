/**
 * Issue 14, figure 5: the visualizer at scale.
 *  - first render: a browser (Debian's chromium) opens /ui/ over a history of 20,000 and 100,000
 *    units (served by `flotilla viz`'s offline backend); time until the chart shows the counts;
 *  - scrubbing: the state at random points of a 1,000,000-event history, counted by state (what
 *    one scrubber move asks the server);
 *  - the 20,000-unit burst with one page's live stream open: how far behind the counts are, and
 *    the leader's CPU against the same burst without a page.
 */
import { execFileSync } from 'node:child_process';
import type { Browser } from 'playwright-core';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { EventBody, FlotillaEvent } from '../src/events/types';
import { offlineBackend } from '../src/viz/backend';
import { History } from '../src/viz/history';
import { VizServer } from '../src/viz/server';
import { countStates, foldedView, NO_FILTER, type Counts } from '../src/viz/views';
import { runBurst, type BurstResult } from './burst';
import { fmtMs, summarize } from './lib/histogram';
import { versionsLine } from './lib/versions';
import type { BenchOptions, Benchmark } from './benchmark';
import { writeSection } from './report';

const T0 = Date.UTC(2026, 0, 1);

/** A history: `machines` machines, `units` units launched on them, then churn up to `events`. */
export function syntheticHistory(units: number, machines: number, events = 0): FlotillaEvent[] {
  const bodies: EventBody[] = [];
  const mid = (i: number): string => i.toString(16).padStart(32, '0');
  for (let m = 0; m < machines; m++)
    bodies.push({
      type: 'MachineJoined',
      machine: mid(m),
      ip: `10.0.${m >> 8}.${m & 255}`,
      metadata: { rack: String(m % 4) },
    });
  const name = (i: number): string => `svc-${String(i).padStart(6, '0')}.service`;
  const running = { load: 'loaded', active: 'active', sub: 'running', hash: 'h' };
  for (let i = 0; i < units; i++) {
    const machine = mid(i % machines);
    bodies.push(
      {
        type: 'UnitSubmitted',
        unit: name(i),
        options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 600' }],
        hash: 'h',
        target: 'launched',
      },
      { type: 'UnitScheduled', unit: name(i), machine, reason: 'least loaded' },
      { type: 'UnitStateReported', unit: name(i), machine, state: running },
    );
  }
  // Churn: units stopped and started again, with their reports.
  for (let k = 0; bodies.length < events; k++) {
    const i = k % units;
    const machine = mid(i % machines);
    const stop = Math.floor(k / units) % 2 === 0;
    bodies.push(
      { type: 'UnitTargetSet', unit: name(i), target: stop ? 'loaded' : 'launched' },
      {
        type: 'UnitStateReported',
        unit: name(i),
        machine,
        state: stop ? { load: 'loaded', active: 'inactive', sub: 'dead', hash: 'h' } : running,
      },
    );
  }
  return bodies.map(
    (b, i) => ({ ...b, index: i + 1, epoch: 1, time: T0 + i, v: 1 }) as FlotillaEvent,
  );
}

function chromiumPath(): string {
  return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
}

/**
 * A chromium launched once and warmed on a blank page: what is measured is the page's first
 * render, not the browser starting. Each measurement opens a new context (no cache, no
 * connections kept).
 */
async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  const warm = await browser.newPage();
  await warm.goto('about:blank');
  await warm.setContent('<p>warm</p>');
  await warm.close();
  return browser;
}

/** A page's first render, by its own clock (ms from navigation start). */
interface FirstRender {
  /** The chart's count of launched units is in the document (a MutationObserver). */
  inDocMs: number;
  /** ... and on screen: the first contentful paint if it came after, else the next frame. */
  paintedMs: number;
}

/**
 * When the chart shows `launched` = `expect` units, by the page's own clock: the harness's
 * polling over the DevTools protocol adds hundreds of milliseconds on a loaded machine that are
 * not the page's.
 */
async function firstRender(browser: Browser, url: string, expect: number): Promise<FirstRender> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  try {
    const page = await context.newPage();
    await page.goto('about:blank');
    await page.addInitScript({ content: renderProbe(expect) });
    await page.goto(url);
    await page.waitForFunction('window.paintedAt !== undefined', undefined, {
      timeout: 60_000,
      polling: 50,
    });
    return (await page.evaluate(
      '({ inDocMs: window.renderedAt, paintedMs: window.paintedAt })',
    )) as FirstRender;
  } finally {
    await context.close();
  }
}

/** The page's probe: window.renderedAt (in the document) and window.paintedAt (painted). */
function renderProbe(expect: number): string {
  const want = JSON.stringify(expect.toLocaleString('en'));
  return `
    const fcp = () => performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
    const painted = () => {
      const p = fcp();
      if (p && p.startTime >= window.renderedAt) return void (window.paintedAt = p.startTime);
      if (p) return void requestAnimationFrame(() => setTimeout(() => (window.paintedAt = performance.now())));
      new PerformanceObserver((l, o) => { o.disconnect(); painted(); }).observe({ type: 'paint' });
    };
    new MutationObserver((_, o) => {
      const c = document.querySelector('svg.chart [data-state="launched"] .count');
      if (window.renderedAt === undefined && c?.textContent?.trim() === ${want}) {
        window.renderedAt = performance.now();
        o.disconnect();
        painted();
      }
    }).observe(document, { subtree: true, childList: true, characterData: true });`;
}

/**
 * Where the browser's time goes in one first render (traced: chromium's own timeline): the
 * page's main thread's CPU time until the first contentful paint, against the wall time.
 */
async function browserSplit(
  browser: Browser,
  url: string,
): Promise<{ wallMs: number; mainCpuMs: number }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  try {
    const page = await context.newPage();
    await page.goto('about:blank');
    await browser.startTracing(page);
    await page.goto(url);
    await page.waitForFunction(
      "performance.getEntriesByType('paint').some((e) => e.name === 'first-contentful-paint')",
      undefined,
      { timeout: 60_000, polling: 50 },
    );
    const trace = JSON.parse((await browser.stopTracing()).toString('utf8')) as {
      traceEvents: {
        name: string;
        ph: string;
        pid: number;
        tid: number;
        ts: number;
        dur?: number;
        tdur?: number;
        args?: { data?: { documentLoaderURL?: string; url?: string } };
      }[];
    };
    const ev = trace.traceEvents;
    const nav = ev.find(
      (e) => e.name === 'navigationStart' && e.args?.data?.documentLoaderURL === url,
    );
    const fcp = ev.find((e) => e.name === 'firstContentfulPaint' && e.pid === nav?.pid);
    if (!nav || !fcp) return { wallMs: NaN, mainCpuMs: NaN };
    let cpu = 0;
    for (const e of ev)
      if (
        e.pid === nav.pid &&
        e.tid === nav.tid &&
        e.ph === 'X' &&
        e.name === 'ThreadControllerImpl::RunTask' &&
        e.ts >= nav.ts &&
        e.ts < fcp.ts
      )
        cpu += e.tdur ?? 0;
    return { wallMs: (fcp.ts - nav.ts) / 1000, mainCpuMs: cpu / 1000 };
  } finally {
    await context.close();
  }
}

async function serveOffline(events: FlotillaEvent[]): Promise<{ url: string; close: () => void }> {
  const viz = new VizServer(offlineBackend({ tail: events }));
  const server = http.createServer((req, res) => {
    if (!viz.handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ui/`;
  return { url, close: () => (viz.close(), server.close(), server.closeAllConnections()) };
}

interface RenderResult {
  units: number;
  loadMs: number;
  first: FirstRender;
  again: FirstRender;
  split: { wallMs: number; mainCpuMs: number };
}

async function renderAt(browser: Browser, units: number): Promise<RenderResult> {
  const events = syntheticHistory(units, 50);
  const t = performance.now();
  const s = await serveOffline(events);
  const loadMs = performance.now() - t;
  try {
    // First: the server computes every unit's state for the first time; again: a second page.
    const first = await firstRender(browser, s.url, units);
    const again = await firstRender(browser, s.url, units);
    const split = await browserSplit(browser, s.url);
    return { units, loadMs, first, again, split };
  } finally {
    s.close();
  }
}

interface ScrubResult {
  events: number;
  units: number;
  loadMs: number;
  /** GET counts?at=N: the chart at a past point (what one scrubber move asks the server). */
  ms: ReturnType<typeof summarize>;
  /** The whole state at that point (what a list of units or machines there needs). */
  stateMs: ReturnType<typeof summarize>;
}

function sorted(c: Counts): [string, [string, number][]][] {
  return Object.entries(c).map(([m, byState]) => [m, Object.entries(byState).sort()]);
}

function scrub(total: number, units: number, points: number): ScrubResult {
  const events = syntheticHistory(units, 50, total);
  const t = performance.now();
  const h = new History({ tail: events });
  const loadMs = performance.now() - t;
  const ms: number[] = [];
  const stateMs: number[] = [];
  let seed = 7;
  for (let i = 0; i < points; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const at = 1 + (seed % h.last);
    const t1 = performance.now();
    const c = h.countsAt(at);
    ms.push(performance.now() - t1);
    const t2 = performance.now();
    const whole = countStates(foldedView(h.stateAt(at), h.timeAt(at)), NO_FILTER);
    stateMs.push(performance.now() - t2);
    if (JSON.stringify(sorted(whole)) !== JSON.stringify(sorted(c)))
      throw new Error(`the counts at ${at} differ from the folded state's`);
    if (Object.keys(c['engine-unit']).length === 0 && at > 200)
      throw new Error(`no units at ${at}`);
  }
  return { events: events.length, units, loadMs, ms: summarize(ms), stateMs: summarize(stateMs) };
}

interface LiveResult {
  /** Age of the counts when they reach the page: from the leader's commit of the newest event. */
  lag: ReturnType<typeof summarize>;
  /** The same from the stamp the leader put on the event when it took the write (earlier). */
  lagFromStamp: ReturnType<typeof summarize>;
  maxGapMs: number;
  messages: number;
  withPage: BurstResult;
  without: BurstResult;
  render: FirstRender;
  /** The leader's own account of the stream (GET /ui/api/stats) when the burst ended. */
  stream: { updates: number; cpuMs: number };
}

/**
 * The page's record of the stream: each message's arrival (the page's Date.now(), the same clock
 * as the leader's on this one machine), the leader's commit time and write stamp of its newest
 * event.
 */
const STREAM_PROBE = `
  window.streamed = [];
  const ES = window.EventSource;
  window.EventSource = class extends ES {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (m) => {
        const d = JSON.parse(m.data);
        window.streamed.push([Date.now(), d.committed, d.time]);
      });
    }
  };`;

/** One page open on the leader during the burst: how old the live counts are when they arrive. */
async function burstWithPage(
  browser: Browser,
  units: number,
  agents: number,
  processes: number,
): Promise<LiveResult> {
  const base = { units, agents, processes, footprint: false, restMs: 1000 };
  const without = await runBurst(base);
  let arrivals: [number, number, number][] = [];
  let render: FirstRender = { inDocMs: NaN, paintedMs: NaN };
  let stream = { updates: 0, cpuMs: NaN };
  const withPage = await runBurst({
    ...base,
    observer: async (at) => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      await page.addInitScript({ content: STREAM_PROBE });
      await page.goto(`http://${at}/ui/`);
      await page.waitForFunction('window.streamed.length > 0', undefined, { timeout: 60_000 });
      return {
        async stop() {
          stream = (await (await fetch(`http://${at}/ui/api/stats`)).json()) as typeof stream;
          arrivals = (await page.evaluate('window.streamed')) as typeof arrivals;
          await context.close();
        },
        // Outside the CPU window: a second page opened on the leader once the burst is over.
        async after() {
          render = await firstRender(browser, `http://${at}/ui/`, units);
        },
      };
    },
  });
  // The first message is the page's own (sent when it connected, before the burst).
  const during = arrivals.slice(1);
  let maxGapMs = 0;
  for (let i = 1; i < during.length; i++)
    maxGapMs = Math.max(maxGapMs, during[i][0] - during[i - 1][0]);
  return {
    lag: summarize(during.map(([got, committed]) => got - committed)),
    lagFromStamp: summarize(during.map(([got, , time]) => got - time)),
    maxGapMs,
    messages: during.length,
    withPage,
    without,
    render,
    stream,
  };
}

async function run(opts: BenchOptions): Promise<void> {
  const sizes = opts.smoke ? [2000] : [20_000, 100_000];
  const renders: RenderResult[] = [];
  const browser = await launchBrowser();
  let live: LiveResult;
  let s: ScrubResult;
  try {
    for (const n of sizes) {
      renders.push(await renderAt(browser, n));
      console.log(renders[renders.length - 1]);
    }
    s = opts.smoke ? scrub(100_000, 2000, 10) : scrub(1_000_000, 20_000, 20);
    console.log(s);
    live = opts.smoke
      ? await burstWithPage(browser, 500, 5, 1)
      : await burstWithPage(browser, 20_000, 50, 2);
  } finally {
    await browser.close();
  }
  console.log({ ...live, withPage: undefined, without: undefined });
  const cpu = (r: BurstResult): string =>
    `${r.leaderCpuBurstS.toFixed(1)} s over ${fmtMs(r.allRunningMs)}`;
  const pctText = (r: BurstResult): string =>
    r.allRunningMs > 0
      ? `${((r.leaderCpuBurstS / (r.allRunningMs / 1000)) * 100).toFixed(0)} %`
      : 'n/a';
  const streamPct = (live.stream.cpuMs / 1000 / live.withPage.leaderCpuBurstS) * 100;
  const r20 = renders[0];
  const split = `${fmtMs(r20.split.mainCpuMs)} of ${fmtMs(r20.split.wallMs)}`;
  const body = [
    'First render: a headless chromium (started once, warmed on a blank page) opens `/ui/` in a new',
    'context; the time is from navigation start until the chart with the count of launched units is',
    "painted (the first contentful paint, once the count is in the document), by the page's clock.",
    "The server is `flotilla viz`'s (a history folded in memory, every unit's state worked out while",
    "loading). The live leader's figure is a page opened once the burst below is over.",
    '',
    '| | measured | target |',
    '|---|---:|---:|',
    ...renders.map(
      (r) =>
        `| first render, ${r.units.toLocaleString('en')} units | **${fmtMs(r.first.paintedMs)}** (a second page: ${fmtMs(r.again.paintedMs)}) | ${r.units <= 20_000 ? '≤ 1 s' : '≤ 3 s'} |`,
    ),
    `| the browser's own work in a third, traced page (${r20.units.toLocaleString('en')} units): the page's main thread's CPU time until the first contentful paint, of the wall time | ${split} | |`,
    `| first render on the live leader right after the ${live.withPage.units.toLocaleString('en')}-unit burst | **${fmtMs(live.render.paintedMs)}** | ≤ 1 s |`,
    `| scrubbing: the counts by state at a random point of a ${s.events.toLocaleString('en')}-event history (${s.units.toLocaleString('en')} units; what one scrubber move asks) | **p50 ${fmtMs(s.ms.p50)}, max ${fmtMs(s.ms.max)}** (${s.ms.n} points; loading the history once: ${fmtMs(s.loadMs)}) | ≤ 1 s |`,
    `| the whole state at such a point (a list of the units in a state there, a filtered count) | p50 ${fmtMs(s.stateMs.p50)}, max ${fmtMs(s.stateMs.max)} | |`,
    `| live counts during the ${live.withPage.units.toLocaleString('en')}-unit burst: age when they reach the page, from the leader's commit of the newest event | **p50 ${fmtMs(live.lag.p50)}, p99 ${fmtMs(live.lag.p99)}, max ${fmtMs(live.lag.max)}** (${live.messages} updates; longest gap between updates ${fmtMs(live.maxGapMs)}) | ≤ 1 s |`,
    `| the same from the stamp the leader put on the event when it took the write | p50 ${fmtMs(live.lagFromStamp.p50)}, p99 ${fmtMs(live.lagFromStamp.p99)}, max ${fmtMs(live.lagFromStamp.max)} | |`,
    `| leader CPU during the burst: the stream's own work (its account, ${live.stream.updates} updates) | **${(live.stream.cpuMs / 1000).toFixed(2)} s of ${live.withPage.leaderCpuBurstS.toFixed(1)} s = ${streamPct.toFixed(1)} %** | ≤ +5 % |`,
    `| leader CPU during the burst, one page open vs none (two runs) | ${cpu(live.withPage)} vs ${cpu(live.without)} (${pctText(live.withPage)} vs ${pctText(live.without)} of a core) | |`,
    '',
    "The age of the live counts is taken by the page (a chromium page open on the leader's `/ui/`",
    'through the burst): the arrival of each stream message, less the time the leader had the',
    "newest event in it committed — the store's acknowledgement of its batch, folded by the engine",
    "(the stream carries it as `committed`; the page and the leader share this machine's clock).",
    'An event exists once committed: before that it may still be refused, and no view may show',
    'it. The stamp on the event (`time`) is taken earlier, when the leader numbers the batch',
    "before writing it, so the age from it adds the store's commit, which the stream cannot",
    "shorten: it is shown for comparison. The stream's own work is the CPU time the leader spent",
    "making updates (reading the changed units' states, counting, encoding), by",
    '`process.cpuUsage()` around each update, as the leader reports it (`GET /ui/api/stats`): the',
    'two bursts are separate runs on a shared 2-core machine, so their difference is mostly the',
    "machine's other load.",
    `Load average when the run ended: ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' / ')} (1 / 5 / 15 min) on ${os.cpus().length} cores:`,
    'timings taken on a loaded machine are upper bounds.',
  ].join('\n');
  console.log(body);
  if (!opts.smoke)
    writeSection(
      'visualizer',
      'The lifecycle visualizer at scale',
      'npm run build && node dist/bench/run.js viz',
      `${versionsLine()}\n\n${body}`,
    );
}

export const vizBenchmark: Benchmark = {
  name: 'viz',
  description:
    'visualizer: first render with 20k/100k units, scrubbing 1M events, live counts and leader CPU during the burst',
  run,
};
