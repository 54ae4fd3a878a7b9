import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { ErrorCode, FlotillaError, isFlotillaError } from '../errors';
import type { VizBackend } from './backend';
import { chartOfRoute, chartPageHtml, type MachinesFile } from './chart-svg';
import type { History } from './history';
import { VIZ_MACHINES, vizGraphs } from './machines';
import type { ClusterView, Range, VizFilter } from './views';
import type { Counts, CountsReply } from './views';
import {
  countStates,
  foldedView,
  isEmptyFilter,
  machineRows,
  parseFilter,
  unitsIn,
  unitTimeline,
} from './views';

/**
 * The stream sends at most this often (a burst of events becomes one update): a change is sent
 * at once when the last update is older than this, else when it is this old.
 */
export const STREAM_INTERVAL_MS = 100;
/** While changes keep coming, the engine is checked for a new leader this often too. */
const RECHECK_MS = 1000;
const KEEPALIVE_MS = 15_000;
const MAX_PAGE = 500;

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The built front-end (npm run build writes dist/ui; from src/ in tests, the same place). */
export function uiDir(): string {
  for (const d of [path.resolve(__dirname, '../../ui'), path.resolve(__dirname, '../../dist/ui')])
    if (fs.existsSync(path.join(d, 'assets', 'app.js'))) return d;
  return path.resolve(__dirname, '../../ui');
}

interface StreamClient {
  res: http.ServerResponse;
  filter: VizFilter;
  key: string;
}

/**
 * The visualizer's HTTP side, mounted at /ui/: the page and its assets, a JSON API over the
 * backend, and a server-sent-events stream of live counts. Every view takes `at` (an index or
 * an RFC 3339 time) to show the cluster as it was then.
 */
export class VizServer {
  private readonly clients = new Set<StreamClient>();
  private timer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private recheck: NodeJS.Timeout | undefined;
  private unlisten: (() => void) | undefined;
  private sentVersion = -1;
  private sentAt = 0;
  /** What the stream cost this process: updates sent, and the CPU time spent making them. */
  private readonly streamStats = { updates: 0, cpuMs: 0 };
  private readonly atCache: { index: number; view: ClusterView }[] = [];
  private readonly dir = uiDir();

  constructor(private readonly backend: VizBackend) {}

  /** True when the request was for /ui (answered); false to let the caller answer. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ui' && !url.pathname.startsWith('/ui/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end('method not allowed\n');
      return true;
    }
    if (url.pathname === '/ui') {
      res.writeHead(302, { location: '/ui/' + url.search }).end();
      return true;
    }
    if (url.pathname.startsWith('/ui/api/')) {
      this.api(url, req, res).catch((err: unknown) => this.fail(res, err));
      return true;
    }
    this.asset(url, res);
    return true;
  }

  private asset(url: URL, res: http.ServerResponse): void {
    const rel = url.pathname.slice('/ui/'.length);
    // Client-side routes (/ui/units/NAME …) get the page; only assets/ names files.
    if (!rel.startsWith('assets/')) {
      this.page(url, res).catch((err: unknown) => this.fail(res, err));
      return;
    }
    const file = path.join(this.dir, rel);
    if (!file.startsWith(this.dir + path.sep) || !fs.existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'max-age=3600',
    });
    fs.createReadStream(file).pipe(res);
  }

  /**
   * The page. A chart's URL gets the chart drawn in it, with the counts of its point and filter
   * (and those counts for the script, which does not ask for them again): the browser shows it
   * once the HTML is parsed. Other views, and a past point on the live leader (whose history is
   * read on the first such request), are drawn by the script.
   */
  private async page(url: URL, res: http.ServerResponse): Promise<void> {
    const shell = this.shell();
    if (!shell) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    let body = shell.html;
    const chart = chartOfRoute(url.pathname.slice('/ui/'.length));
    const q = url.searchParams;
    if (chart && shell.machines && !(q.get('at') && this.backend.live)) {
      const drawn = await this.countsReply(q).then(
        (reply) => ({
          reply,
          html: chartPageHtml(
            shell.machines!,
            chart,
            url.search,
            reply.counts,
            reply.compare?.counts,
          ),
        }),
        () => undefined, // the script shows the error
      );
      if (drawn) {
        const boot = JSON.stringify({ search: url.search, counts: drawn.reply }).replace(
          /</g,
          '\\u003c',
        );
        body = body.replace(
          '<div id="app"></div>',
          `<div id="app">${drawn.html}</div><script id="boot" type="application/json">${boot}</script>`,
        );
      }
    }
    res.writeHead(200, { 'content-type': TYPES['.html'], 'cache-control': 'no-cache' });
    res.end(body);
  }

  private shellCache?: { html: string; machines?: MachinesFile };

  /** index.html and the machines' layouts (assets/machines.json), read once. */
  private shell(): { html: string; machines?: MachinesFile } | undefined {
    if (this.shellCache) return this.shellCache;
    const index = path.join(this.dir, 'index.html');
    if (!fs.existsSync(index)) return undefined;
    const layouts = path.join(this.dir, 'assets', 'machines.json');
    this.shellCache = {
      html: fs.readFileSync(index, 'utf8'),
      machines: fs.existsSync(layouts)
        ? (JSON.parse(fs.readFileSync(layouts, 'utf8')) as MachinesFile)
        : undefined,
    };
    return this.shellCache;
  }

  private async api(url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const route = url.pathname.slice('/ui/api/'.length);
    const q = url.searchParams;
    if (route === 'graphs') {
      const graphs = vizGraphs();
      return this.json(res, {
        machines: VIZ_MACHINES.map((m) => ({
          name: m.name,
          title: m.title,
          graph: graphs.get(m.name),
        })),
      });
    }
    if (route === 'stream') return this.stream(req, res, parseFilter(q));
    if (route === 'stats')
      return this.json(res, { clients: this.clients.size, ...this.streamStats });
    if (route === 'counts') return this.json(res, await this.countsReply(q));
    const filter = parseFilter(q);
    const { view, index, history } = await this.viewAt(q.get('at'));
    const point = { index, time: view.time, live: this.backend.live && q.get('at') === null };
    if (route === 'units') {
      const page = unitsIn(view, filter, {
        state: q.get('state') ?? '',
        search: q.get('q') ?? '',
        offset: intParam(q, 'offset', 0, Number.MAX_SAFE_INTEGER),
        limit: intParam(q, 'limit', 100, MAX_PAGE) || 100,
      });
      return this.json(res, { ...point, ...page });
    }
    if (route === 'machines')
      return this.json(res, { ...point, machines: machineRows(view, filter) });
    if (route === 'history') {
      return this.json(res, rangeOf(history ?? (await this.backend.history())));
    }
    if (route.startsWith('units/')) {
      const name = decodeURIComponent(route.slice('units/'.length));
      const h = history ?? (await this.backend.history());
      const u = view.state.units.get(name);
      // A unit that exists later (or existed earlier) is shown as absent at this point.
      const whole = unitTimeline(h, name);
      if (!u && whole.length === 0)
        throw new FlotillaError(ErrorCode.UnitNotFound, `unit ${name} not found`, {
          details: { unit: name },
        });
      const timeline = whole.filter((e) => e.index <= index);
      const reported = u ? [...(view.state.reported.get(name) ?? new Map()).entries()] : [];
      return this.json(res, {
        ...point,
        name,
        exists: !!u,
        state: view.unitPhase(name) ?? '',
        unit: u
          ? {
              target: u.target,
              machine: u.machine ?? '',
              global: u.requirements.global,
              description: u.description,
              hash: u.hash,
            }
          : undefined,
        reported: reported.map(([machine, s]) => ({ machine, ...s })),
        timeline,
        later: whole.length - timeline.length,
      });
    }
    throw new FlotillaError(ErrorCode.InvalidArgument, `no such API: ${route}`, {
      details: { field: 'path' },
    });
  }

  /** The chart's counts at the query's point (`at`, `compare`) and filter: GET counts. */
  async countsReply(q: URLSearchParams): Promise<CountsReply> {
    const filter = parseFilter(q);
    // A scrubber move asks for the chart's counts at a past point: read from the counts the
    // history wrote down, with no state folded again (filters need the state).
    const at = q.get('at');
    if (at && isEmptyFilter(filter)) {
      const history = await this.backend.history();
      const index = this.indexAt(history, at);
      return {
        index,
        time: history.timeAt(index),
        live: false,
        counts: history.countsAt(index),
        compare: await this.compared(q.get('compare'), filter),
        range: rangeOf(history),
      };
    }
    const { view, index, history } = await this.viewAt(at);
    const point = { index, time: view.time, live: this.backend.live && at === null };
    const counts = countStates(view, filter);
    const compare = await this.compared(q.get('compare'), filter);
    return { ...point, counts, compare, range: history && rangeOf(history) };
  }

  /** The counts at `at` for the comparison (`compare`), if asked for. */
  private async compared(
    at: string | null,
    filter: VizFilter,
  ): Promise<{ index: number; time: number; counts: Counts } | undefined> {
    if (at === null) return undefined;
    if (at !== '' && isEmptyFilter(filter)) {
      const h = await this.backend.history();
      const index = this.indexAt(h, at);
      return { index, time: h.timeAt(index), counts: h.countsAt(index) };
    }
    const b = await this.viewAt(at);
    return { index: b.index, time: b.view.time, counts: countStates(b.view, filter) };
  }

  /** The index `at` names (an index, or an RFC 3339 time), within the history. */
  private indexAt(history: History, at: string): number {
    let index: number;
    if (/^\d+$/.test(at)) index = Math.min(Number(at), history.last);
    else {
      const t = Date.parse(at);
      if (Number.isNaN(t))
        throw new FlotillaError(
          ErrorCode.InvalidArgument,
          `at: "${at}" is neither an index nor an RFC 3339 time`,
          { details: { field: 'at' } },
        );
      index = history.indexAtTime(t);
    }
    return Math.max(index, history.first);
  }

  /** The view at `at` (undefined: now), with the history when one was needed. */
  async viewAt(
    at: string | null,
  ): Promise<{ view: ClusterView; index: number; history?: History }> {
    if (at === null || at === '') {
      await this.backend.ready?.();
      const head = this.backend.head();
      if (!head)
        throw new FlotillaError(ErrorCode.NotLeader, this.backend.why ?? 'no leader', {
          retryable: true,
        });
      if (this.backend.live) return { view: head, index: head.state.index };
      return { view: head, index: head.state.index, history: await this.backend.history() };
    }
    const history = await this.backend.history();
    const index = this.indexAt(history, at);
    const cached = this.atCache.find((c) => c.index === index);
    if (cached && !this.backend.live) return { view: cached.view, index, history };
    if (cached && index < history.last) return { view: cached.view, index, history };
    const view = foldedView(history.stateAt(index), history.timeAt(index));
    this.atCache.unshift({ index, view });
    this.atCache.length = Math.min(this.atCache.length, 4);
    return { view, index, history };
  }

  private stream(req: http.IncomingMessage, res: http.ServerResponse, filter: VizFilter): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const client: StreamClient = { res, filter, key: JSON.stringify(filter) };
    this.clients.add(client);
    req.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stopTimers();
    });
    this.sentVersion = -1;
    this.push();
    this.unlisten ??= this.backend.onChange(() => this.schedulePush());
    // A new leader's engine (or none) is noticed here: onChange follows the engine it was
    // given, and the backend swaps engines when asked for the view.
    this.recheck ??= setInterval(() => this.schedulePush(), RECHECK_MS);
    this.keepalive ??= setInterval(() => {
      for (const c of this.clients) c.res.write(': keepalive\n\n');
    }, KEEPALIVE_MS);
    this.recheck.unref();
    this.keepalive.unref();
  }

  /** Sends now if the last update is old enough, else once it is (one timer at most). */
  private schedulePush(): void {
    if (this.timer || this.clients.size === 0) return;
    const wait = this.sentAt + STREAM_INTERVAL_MS - performance.now();
    // Even when due now: after the event's fold and its write's answer, not in the middle.
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.push();
      },
      Math.max(0, wait),
    );
    this.timer.unref();
  }

  /** One update to every stream client, if anything changed since the last (coalesced). */
  private push(): void {
    const version = this.backend.version();
    if (version === this.sentVersion) return;
    const t = performance.now();
    const cpu = process.cpuUsage();
    const head = this.backend.head();
    if (!head) return;
    this.sentVersion = version;
    this.sentAt = t;
    const byFilter = new Map<string, string>();
    for (const c of this.clients) {
      let data = byFilter.get(c.key);
      if (data === undefined) {
        data = JSON.stringify({
          index: head.state.index,
          time: head.time,
          committed: head.committedAt,
          live: true,
          counts: countStates(head, c.filter),
        });
        byFilter.set(c.key, data);
      }
      c.res.write(`data: ${data}\n\n`);
    }
    this.streamStats.updates++;
    const used = process.cpuUsage(cpu);
    this.streamStats.cpuMs += (used.user + used.system) / 1000;
  }

  private stopTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.keepalive) clearInterval(this.keepalive);
    if (this.recheck) clearInterval(this.recheck);
    this.unlisten?.();
    this.timer = this.keepalive = this.recheck = this.unlisten = undefined;
  }

  private json(res: http.ServerResponse, body: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
    res.end(JSON.stringify(body));
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    const code = isFlotillaError(err) ? err.code : ErrorCode.Internal;
    const status =
      code === ErrorCode.InvalidArgument
        ? 400
        : code === ErrorCode.UnitNotFound
          ? 404
          : code === ErrorCode.NotLeader
            ? 503
            : 500;
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code, message: (err as Error).message } }));
  }

  close(): void {
    this.stopTimers();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.backend.close();
  }
}

function rangeOf(h: History): Range {
  return {
    first: h.first,
    last: h.last,
    firstTime: h.timeAt(h.first + 1),
    lastTime: h.timeAt(h.last),
  };
}

function intParam(q: URLSearchParams, name: string, dflt: number, max: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  if (!/^\d+$/.test(v))
    throw new FlotillaError(
      ErrorCode.InvalidArgument,
      `${name}: "${v}" is not a non-negative integer`,
      {
        details: { field: name },
      },
    );
  return Math.min(Number(v), max);
}
