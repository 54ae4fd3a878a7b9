import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { killGroup } from '../harness/registry';
import type { EventBody, FlotillaEvent } from '../../src/events/types';
import { writeHistoryFile } from '../../src/history/export';
import { REPO_ROOT, runCli, spawnCli } from '../helpers/cli';
import { killDevUnits, startDevDaemon, type DevDaemon } from '../helpers/dev-daemon';

/**
 * The visualizer in a real browser (Debian's chromium driven by playwright-core; nothing is
 * downloaded) against a running `flotillad --dev`: the chart with live counts, a state clicked,
 * a unit's timeline opened by click and by URL, the scrubber moved back to before the unit
 * existed. FLOTILLA_SCREENSHOTS=1 writes docs/img/visualizer*.png.
 */
jest.setTimeout(90_000);

let dir: string;
let daemon: DevDaemon | undefined;
let browser: Browser | undefined;
let page: Page;
let ui: string;
let port: number;

const cli = (args: string[]) => runCli(args, { endpoint: `127.0.0.1:${port}`, cwd: dir });

function chromiumPath(): string {
  return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
}

async function counts(
  at = '',
): Promise<{ index: number; counts: Record<string, Record<string, number>> }> {
  const res = await fetch(`${ui}api/counts${at ? '?at=' + at : ''}`);
  return (await res.json()) as { index: number; counts: Record<string, Record<string, number>> };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Moves the scrubber as a drag does: input events while moving, change on release. */
async function scrubTo(index: number): Promise<void> {
  await page.locator('footer input[type=range]').evaluate((el, v) => {
    const input = el as unknown as { value: string; dispatchEvent(e: Event): boolean };
    input.value = String(v);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }, index);
}

const shots = process.env.FLOTILLA_SCREENSHOTS === '1';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-viz-'));
  // Both on port 0: the daemon announces the ports it got.
  daemon = await startDevDaemon({
    dir,
    readyListener: 'HTTP',
    kind: 'flotillad --dev (visualizer)',
  });
  port = daemon.port;
  ui = `http://127.0.0.1:${daemon.portOf('HTTP')}/ui/`;
  const names: string[] = [];
  for (let i = 1; i <= 12; i++) {
    const name = `web-${String(i).padStart(2, '0')}.service`;
    fs.writeFileSync(path.join(dir, name), '[Service]\nExecStart=/bin/sleep 600\n');
    names.push(name);
  }
  fs.writeFileSync(path.join(dir, 'crash.service'), "[Service]\nExecStart=/bin/sh -c 'exit 3'\n");
  fs.writeFileSync(path.join(dir, 'late.service'), '[Service]\nExecStart=/bin/sleep 600\n');
  expect((await cli(['start', '--no-block', ...names.slice(0, 9), 'crash.service'])).code).toBe(0);
  expect((await cli(['load', '--no-block', ...names.slice(9, 11)])).code).toBe(0);
  expect((await cli(['submit', names[11]])).code).toBe(0);
  browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
});

afterAll(async () => {
  await browser?.close();
  const p = daemon?.proc;
  const stopped = daemon?.stop();
  setTimeout(() => p?.pid && p.exitCode === null && killGroup(p.pid, 'SIGKILL'), 5000).unref();
  await stopped;
  killDevUnits(dir);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the visualizer in a browser', () => {
  let before: number;

  it('draws the unit lifecycle with live counts, and a new unit shows up without a reload', async () => {
    await until('9 units launched', async () => {
      const c = await counts();
      return c.counts['engine-unit'].launched === 9 ? c : undefined;
    });
    before = (await counts()).index;
    await page.goto(ui);
    const launched = page.locator('svg.chart [data-state="launched"] .count');
    await launched.waitFor({ timeout: 15_000 });
    await until('the chart to show 9 launched', async () =>
      (await launched.textContent())?.trim() === '9' ? true : undefined,
    );
    // Every state of the definition is drawn.
    for (const s of ['inactive', 'waiting', 'scheduled', 'loaded', 'launched'])
      await expect(page.locator(`svg.chart [data-state="${s}"]`).count()).resolves.toBe(1);

    expect((await cli(['start', '--no-block', 'late.service'])).code).toBe(0);
    // Pushed by the stream: the same page, no navigation.
    await until('the stream to bring the 10th launched unit', async () =>
      (await launched.textContent())?.trim() === '10' ? true : undefined,
    );
    if (shots) await page.screenshot({ path: path.join(REPO_ROOT, 'docs/img/visualizer.png') });
  });

  it('a state clicked lists its units; a unit clicked opens its timeline', async () => {
    await page.locator('svg.chart [data-state="launched"]').click();
    await page.waitForURL(/\/ui\/states\/engine-unit\/launched/);
    const link = page.getByRole('link', { name: 'late.service' });
    await link.waitFor();
    await expect(page.locator('table.units tbody tr').count()).resolves.toBe(10);
    await page.locator('input.search').fill('web-0');
    await until('the search to narrow the list', async () =>
      (await page.locator('table.units tbody tr').count()) === 9 ? true : undefined,
    );
    await page.locator('input.search').fill('');
    await link.click();
    await page.waitForURL(/\/ui\/units\/late\.service$/);
    const timeline = page.locator('table.timeline tbody');
    await timeline.getByText('UnitScheduled').waitFor();
    await expect(timeline.textContent()).resolves.toMatch(/waiting → scheduled/);
    await expect(page.getByTestId('unit-state').textContent()).resolves.toBe('launched');
  });

  it("opens a unit's timeline by URL, with exit statuses", async () => {
    await page.goto(ui + 'units/crash.service');
    const timeline = page.locator('table.timeline tbody');
    await timeline.getByText('result=exit-code').first().waitFor({ timeout: 15_000 });
    await expect(timeline.textContent()).resolves.toMatch(/UnitStateReported/);
  });

  it('the scrubber moved back to before the unit existed, and forward again', async () => {
    await page.goto(ui + 'units/late.service');
    await page.getByTestId('unit-state').waitFor();
    await scrubTo(before);
    await page.waitForURL(new RegExp(`at=${before}`));
    await until('the unit to be gone at that point', async () =>
      (await page.getByTestId('unit-state').textContent()) === 'does not exist at this point'
        ? true
        : undefined,
    );
    await expect(page.locator('footer .live').textContent()).resolves.toBe('PAST');
    // Every view shows that point: the chart counts 9 launched there.
    await page.getByRole('link', { name: 'lifecycles' }).click();
    const launched = page.locator('svg.chart [data-state="launched"] .count');
    await until('the chart at that point', async () =>
      (await launched.textContent())?.trim() === '9' ? true : undefined,
    );
    expect((await counts(String(before))).counts['engine-unit'].launched).toBe(9);
    await page.getByRole('button', { name: 'back to live' }).click();
    await until('live again', async () =>
      (await launched.textContent())?.trim() === '10' ? true : undefined,
    );
    if (shots) {
      await page.goto(ui + 'units/crash.service');
      await page.locator('table.timeline tbody tr').first().waitFor();
      await page.screenshot({ path: path.join(REPO_ROOT, 'docs/img/visualizer-timeline.png') });
    }
  });
});

describe('flotilla viz FILE', () => {
  it('serves an exported history offline on a local port: the chart, a timeline, the scrubber', async () => {
    const M = 'c'.repeat(32);
    const bodies: EventBody[] = [
      { type: 'MachineUp', machine: M, ip: '10.0.0.3', metadata: { role: 'batch' } },
    ];
    for (const unit of ['a.service', 'b.service', 'c.service'])
      bodies.push(
        {
          type: 'UnitSubmitted',
          unit,
          options: [{ section: 'Service', name: 'ExecStart', value: '/bin/sleep 600' }],
          hash: 'h',
          target: 'launched',
        },
        { type: 'UnitScheduled', unit, machine: M, reason: 'least loaded' },
        {
          type: 'UnitObserved',
          unit,
          machine: M,
          state: { load: 'loaded', active: 'active', sub: 'running', hash: 'h' },
        },
      );
    bodies.push({
      type: 'UnitObserved',
      unit: 'c.service',
      machine: M,
      state: { load: 'loaded', active: 'failed', sub: 'failed', hash: 'h', result: 'signal' },
    });
    const T = Date.UTC(2026, 5, 1);
    const events = bodies.map(
      (b, i) => ({ ...b, index: i + 1, epoch: 1, time: T + i * 1000, v: 2 }) as FlotillaEvent,
    );
    const file = path.join(dir, 'exported.jsonl');
    writeHistoryFile(file, { tail: events }, 'offline-test');

    const viz = spawnCli(['viz', file, '--listen', '127.0.0.1:0'], { cwd: dir });
    try {
      await viz.waitForStdout(/at (http:\S+)/);
      const url = /at (http:\S+)/.exec(viz.stdout())![1];
      const res = await fetch(url + 'api/counts');
      expect(await res.json()).toMatchObject({
        index: events.length,
        live: false,
        counts: { 'engine-unit': { launched: 2, failed: 1 }, 'engine-machine': { alive: 1 } },
      });
      // The chart and its counts are in the page the server sends: shown without the script.
      const noScript = await browser!.newContext({ javaScriptEnabled: false });
      try {
        const bare = await noScript.newPage();
        await bare.goto(url + 'charts/engine-unit?name=c.service');
        const counted = (s: string) =>
          bare.locator(`svg.chart [data-state="${s}"] .count`).textContent();
        await expect(counted('launched')).resolves.toBe('0');
        await expect(counted('failed')).resolves.toBe('1');
        await expect(bare.locator('header .total').textContent()).resolves.toBe(
          '1 units · 1 machines',
        );
      } finally {
        await noScript.close();
      }
      const offline = await browser!.newPage();
      try {
        await offline.goto(url);
        const launched = offline.locator('svg.chart [data-state="launched"] .count');
        await until('the chart of the file', async () =>
          (await launched.textContent())?.trim() === '2' ? true : undefined,
        );
        await offline.goto(url + 'units/c.service');
        await offline
          .locator('table.timeline tbody')
          .getByText('result=signal')
          .waitFor({ timeout: 15_000 });
        // Back to before c.service was submitted.
        await offline.goto(url + 'units/c.service?at=4');
        await until('c.service absent at index 4', async () =>
          (await offline.getByTestId('unit-state').textContent()) === 'does not exist at this point'
            ? true
            : undefined,
        );
      } finally {
        await offline.close();
      }
    } finally {
      const r = await viz.stop('SIGINT');
      expect(r.code).toBe(0);
    }
  });
});
