import { hydrate, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { CountsReply, GraphsReply, MachineRow, Query, Range, UnitReply, UnitRow } from './api';
import { fmtTime, getJson, queryString, readQuery } from './api';
import { Chart } from './chart';
import { COUNTED, totalText } from '../../src/viz/chart-svg';

// ------------------------------------------------------------------ routing

interface Route {
  path: string;
  query: Query;
}

function currentRoute(): Route {
  return { path: location.pathname.replace(/^\/ui\/?/, ''), query: readQuery(location.search) };
}

let setRouteGlobal: (r: Route) => void = () => undefined;

/** Goes to a view (pushState), keeping the point in time and the filter unless changed. */
export function go(path: string, query: Partial<Query>, replace = false): void {
  const url = '/ui/' + path + queryString(query);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  setRouteGlobal(currentRoute());
}

function Link(props: { path: string; query: Partial<Query>; children: unknown; class?: string }) {
  const href = '/ui/' + props.path + queryString(props.query);
  return (
    <a
      href={href}
      class={props.class}
      onClick={(e) => {
        if (e.metaKey || e.ctrlKey || e.button !== 0) return;
        e.preventDefault();
        go(props.path, props.query);
      }}
    >
      {props.children as never}
    </a>
  );
}

function Head({ cols }: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {cols.map((c) => (
          <th key={c}>{c}</th>
        ))}
      </tr>
    </thead>
  );
}

const filterPart = (q: Query) => ({ name: q.name, machine: q.machine, meta: q.meta });

// ------------------------------------------------------------------ data

/**
 * The counts the server drew the chart with (a chart's URL; see VizServer.page), for the query
 * they were drawn for: the first render uses them instead of asking again.
 */
let boot: { key: string; counts: CountsReply } | undefined = (() => {
  const el = document.getElementById('boot');
  if (!el?.textContent) return undefined;
  const b = JSON.parse(el.textContent) as { search: string; counts: CountsReply };
  return { key: queryString(readQuery(b.search)), counts: b.counts };
})();

function takeBoot(key: string): CountsReply | undefined {
  const b = boot;
  boot = undefined;
  return b?.key === key ? b.counts : undefined;
}

/**
 * Counts at the query's point: fetched for a past point; when live, fetched once (the quickest
 * first answer: an EventSource's first message comes later) and then streamed (SSE).
 */
function useCounts(q: Query): { reply?: CountsReply; error: string } {
  const key = queryString(q);
  const [reply, setReply] = useState<CountsReply | undefined>(() => takeBoot(key));
  const booted = useRef(reply !== undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    setError('');
    let live = true;
    let streamed = false;
    if (!booted.current)
      getJson<CountsReply>('counts' + key).then(
        // A stream update that came first is newer: keep it (with the comparison fetched here).
        (r) => live && setReply((prev) => (streamed && prev ? { ...prev, compare: r.compare } : r)),
        (e: Error) => live && setError(e.message),
      );
    booted.current = false;
    if (q.at) return () => void (live = false);
    const es = new EventSource('/ui/api/stream' + queryString(filterPart(q)));
    es.onmessage = (m) => {
      const r = JSON.parse(m.data as string) as CountsReply;
      streamed = true;
      setError('');
      setReply((prev) => (q.compare && prev?.compare ? { ...r, compare: prev.compare } : r));
    };
    es.onerror = () => setError('live stream interrupted; reconnecting…');
    return () => {
      live = false;
      es.close();
    };
  }, [key]);
  return { reply, error };
}

// ------------------------------------------------------------------ views

function ChartPage({
  graphs,
  machine,
  q,
  counts,
}: {
  graphs: GraphsReply;
  machine: string;
  q: Query;
  counts?: CountsReply;
}) {
  const m = graphs.machines.find((x) => x.name === machine) ?? graphs.machines[0];
  const counted = COUNTED.has(m.name);
  return (
    <section>
      <nav class="tabs">
        {graphs.machines.map((x) => (
          <Link
            key={x.name}
            path={`charts/${x.name}`}
            query={q}
            class={x.name === m.name ? 'tab active' : 'tab'}
          >
            {x.name}
          </Link>
        ))}
      </nav>
      <h2>
        {m.title} <span class="muted">({m.graph.machine})</span>
      </h2>
      {!counted && (
        <p class="muted">
          Drawn from the definition. These actors run on each machine's agent; the leader keeps no
          count of their states.
        </p>
      )}
      {counted && counts?.compare && (
        <p class="muted">
          Compared with index {counts.compare.index} ({fmtTime(counts.compare.time)}): differences
          in brackets.
        </p>
      )}
      <div class="chart-wrap">
        <Chart
          graph={m.graph}
          layout={m.layout}
          counts={counted ? (counts?.counts[m.name] ?? {}) : undefined}
          compare={counted ? counts?.compare?.counts[m.name] : undefined}
          onPick={counted ? (s) => go(`states/${m.name}/${encodeURIComponent(s)}`, q) : undefined}
        />
      </div>
    </section>
  );
}

const PAGE = 50;

function StatePage({ machine, state, q }: { machine: string; state: string; q: Query }) {
  const [search, setSearch] = useState('');
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState<
    { total: number; units: UnitRow[]; index: number } | undefined
  >();
  const [machines, setMachines] = useState<MachineRow[] | undefined>();
  const [error, setError] = useState('');
  const key = queryString(q, { state, q: search, offset: String(offset), limit: String(PAGE) });
  useEffect(() => {
    setError('');
    if (machine === 'engine-machine') {
      getJson<{ machines: MachineRow[] }>('machines' + queryString(q)).then(
        (r) => setMachines(r.machines.filter((m) => m.state === state)),
        (e: Error) => setError(e.message),
      );
      return;
    }
    getJson<{ total: number; units: UnitRow[]; index: number }>('units' + key).then(
      setData,
      (e: Error) => setError(e.message),
    );
  }, [key, machine]);
  if (machine === 'engine-machine')
    return (
      <section>
        <h2>
          Machines in <code>{state}</code>
        </h2>
        {error && <p class="error">{error}</p>}
        {machines && <MachineTable rows={machines} q={q} />}
      </section>
    );
  return (
    <section>
      <h2>
        Units in <code>{state}</code>{' '}
        <span class="muted">{data ? `${data.total.toLocaleString('en')} units` : ''}</span>
      </h2>
      <input
        class="search"
        placeholder="search names…"
        value={search}
        onInput={(e) => {
          setSearch((e.target as HTMLInputElement).value);
          setOffset(0);
        }}
      />
      {error && <p class="error">{error}</p>}
      {data && (
        <>
          <table class="units">
            <Head cols={['UNIT', 'STATE', 'TARGET', 'MACHINE', 'ACTIVE', 'SUB']} />
            <tbody>
              {data.units.map((u) => (
                <tr key={u.name}>
                  <td>
                    <Link path={`units/${encodeURIComponent(u.name)}`} query={q}>
                      {u.name}
                    </Link>
                  </td>
                  <td>{u.state}</td>
                  <td>{u.target}</td>
                  <td class="mono">{u.machine.slice(0, 8)}</td>
                  <td>{u.active || '-'}</td>
                  <td>{u.sub || '-'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="pager">
            <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
              ‹ previous
            </button>
            <span>
              {data.total === 0 ? 0 : offset + 1}–{Math.min(offset + PAGE, data.total)} of{' '}
              {data.total.toLocaleString('en')}
            </span>
            <button disabled={offset + PAGE >= data.total} onClick={() => setOffset(offset + PAGE)}>
              next ›
            </button>
          </div>
        </>
      )}
    </section>
  );
}

function detailText(d: Record<string, unknown>): string {
  return Object.entries(d)
    .map(([k, v]) => {
      if (v && typeof v === 'object')
        return `${k}: ${Object.entries(v as Record<string, unknown>)
          .filter(([, x]) => x !== '' && x !== undefined)
          .map(([a, b]) => `${a}=${String(b)}`)
          .join(' ')}`;
      return `${k}=${k === 'machine' ? String(v).slice(0, 8) : String(v)}`;
    })
    .join('  ');
}

function UnitPage({ name, q }: { name: string; q: Query }) {
  const [data, setData] = useState<UnitReply | undefined>();
  const [error, setError] = useState('');
  const key = queryString(q);
  useEffect(() => {
    setError('');
    setData(undefined);
    getJson<UnitReply>(`units/${encodeURIComponent(name)}${key}`).then(setData, (e: Error) =>
      setError(e.message),
    );
  }, [name, key]);
  return (
    <section>
      <h2>
        <code>{name}</code>{' '}
        {data && (
          <span class={'badge ' + (data.exists ? 'ok' : 'gone')} data-testid="unit-state">
            {data.exists ? data.state : 'does not exist at this point'}
          </span>
        )}
      </h2>
      {error && <p class="error">{error}</p>}
      {data?.unit && (
        <p>
          target <b>{data.unit.target}</b> · machine{' '}
          <code>{data.unit.machine || (data.unit.global ? 'global' : 'none')}</code> · hash{' '}
          <code>{data.unit.hash.slice(0, 7)}</code>{' '}
          {data.unit.description && <>· {data.unit.description}</>}
        </p>
      )}
      {data?.reported.map((r) => (
        <p key={r.machine} class="muted">
          on {r.machine.slice(0, 8)}: {r.load}/{r.active}/{r.sub}
          {r.result ? ` result=${r.result}` : ''}
          {r.mainPid ? ` pid=${r.mainPid}` : ''}
        </p>
      ))}
      {data && (
        <table class="timeline">
          <Head cols={['INDEX', 'TIME', 'EVENT', 'STATE', 'DETAILS']} />
          <tbody>
            {data.timeline.map((t) => (
              <tr key={t.index}>
                <td>
                  <Link
                    path={`units/${encodeURIComponent(name)}`}
                    query={{ ...q, at: String(t.index) }}
                  >
                    {t.index}
                  </Link>
                </td>
                <td class="mono">{fmtTime(t.time)}</td>
                <td>{t.type}</td>
                <td>{t.from === t.to ? t.to || '—' : `${t.from || '∅'} → ${t.to || '∅'}`}</td>
                <td class="details">{detailText(t.details)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data && data.later > 0 && (
        <p class="muted">
          {data.later} later event{data.later > 1 ? 's' : ''} after this point (move the scrubber
          forward).
        </p>
      )}
    </section>
  );
}

function MachineTable({ rows, q }: { rows: MachineRow[]; q: Query }) {
  return (
    <table class="machines">
      <Head cols={['MACHINE', 'IP', 'STATE', 'SINCE', 'METADATA', 'UNITS', 'UNIT STATES']} />
      <tbody>
        {rows.map((m) => (
          <tr key={m.id} class={m.presence === 'lost' ? 'lost' : ''}>
            <td class="mono">
              <Link path="" query={{ ...q, machine: m.id }}>
                {m.id.slice(0, 8)}
              </Link>
            </td>
            <td>{m.ip || '-'}</td>
            <td>
              <span class={'badge ' + (m.presence === 'lost' ? 'gone' : 'ok')}>{m.state}</span>
            </td>
            <td class="mono">{fmtTime(m.since)}</td>
            <td>
              {Object.entries(m.metadata)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ') || '-'}
            </td>
            <td>{m.units}</td>
            <td>
              {Object.entries(m.unitStates)
                .map(([k, v]) => `${k} ${v}`)
                .join(' · ')}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function MachinesPage({ q }: { q: Query }) {
  const [rows, setRows] = useState<MachineRow[] | undefined>();
  const [error, setError] = useState('');
  const key = queryString(q);
  useEffect(() => {
    getJson<{ machines: MachineRow[] }>('machines' + key).then(
      (r) => setRows(r.machines),
      (e: Error) => setError(e.message),
    );
  }, [key]);
  return (
    <section>
      <h2>Machines</h2>
      {error && <p class="error">{error}</p>}
      {rows && <MachineTable rows={rows} q={q} />}
    </section>
  );
}

// ------------------------------------------------------------------ filter and scrubber

function FilterBar({ q }: { q: Query }) {
  const field = (k: 'name' | 'machine' | 'meta', placeholder: string) => (
    <input
      name={k}
      placeholder={placeholder}
      value={q[k]}
      onChange={(e) => go(currentRoute().path, { ...q, [k]: (e.target as HTMLInputElement).value })}
    />
  );
  return (
    <div class="filters">
      {field('name', 'unit pattern (web*.service)')}
      {field('machine', 'machine ID prefix')}
      {field('meta', 'metadata k=v,k2=v2')}
    </div>
  );
}

function Scrubber({ q, counts }: { q: Query; counts?: CountsReply }) {
  const [range, setRange] = useState<Range | undefined>(counts?.range);
  const [value, setValue] = useState<number | undefined>();
  const timer = useRef<number | undefined>();
  useEffect(() => {
    if (counts?.range) setRange(counts.range);
  }, [counts?.range?.last, counts?.range?.first]);
  const head = counts?.live ? counts.index : (range?.last ?? counts?.index ?? 0);
  const first = range?.first ?? 0;
  const at = q.at ? (counts?.index ?? Number(q.at)) : head;
  const shown = value ?? at;
  const loadRange = () => {
    if (!range) getJson<Range>('history').then(setRange, () => undefined);
  };
  const move = (n: number, final: boolean) => {
    setValue(n);
    window.clearTimeout(timer.current);
    const apply = () => {
      setValue(undefined);
      go(
        currentRoute().path,
        { ...q, at: n >= head && counts?.live !== false && !q.at ? '' : String(n) },
        true,
      );
    };
    if (final) apply();
    else timer.current = window.setTimeout(apply, 120);
  };
  return (
    <footer class="scrubber">
      <span class={'live ' + (q.at ? 'past' : 'now')}>{q.at ? 'PAST' : 'LIVE'}</span>
      <input
        type="range"
        aria-label="log index"
        min={first}
        max={Math.max(head, first)}
        value={shown}
        onPointerDown={loadRange}
        onFocus={loadRange}
        onInput={(e) => move(Number((e.target as HTMLInputElement).value), false)}
        onChange={(e) => move(Number((e.target as HTMLInputElement).value), true)}
      />
      <span class="mono point" data-testid="point">
        index {shown} · {fmtTime(counts?.time ?? 0)}
      </span>
      <input
        class="time"
        placeholder="go to index or RFC 3339 time"
        onChange={(e) => {
          const v = (e.target as HTMLInputElement).value.trim();
          if (v) go(currentRoute().path, { ...q, at: v });
        }}
      />
      {q.at && (
        <button onClick={() => go(currentRoute().path, { ...q, at: '' })}>back to live</button>
      )}
      {!q.compare ? (
        <button
          title="Compare later points with this one"
          onClick={() => go(currentRoute().path, { ...q, compare: String(at) })}
        >
          pin as A
        </button>
      ) : (
        <button onClick={() => go(currentRoute().path, { ...q, compare: '' })}>
          unpin A ({q.compare})
        </button>
      )}
    </footer>
  );
}

// ------------------------------------------------------------------ app

function App({ graphs }: { graphs: GraphsReply }) {
  const [route, setRoute] = useState(currentRoute());
  setRouteGlobal = setRoute;
  useEffect(() => {
    const pop = () => setRoute(currentRoute());
    addEventListener('popstate', pop);
    return () => removeEventListener('popstate', pop);
  }, []);
  const q = route.query;
  const { reply: counts, error: countsError } = useCounts(q);
  const parts = route.path.split('/').filter(Boolean);
  const page = useMemo(() => {
    // The chart is drawn once, with its counts (a second render costs as much as the first).
    const chart = !['units', 'states', 'machines'].includes(parts[0]);
    if (chart && !counts && !countsError) return <p class="muted">loading…</p>;
    if (parts[0] === 'units' && parts[1])
      return <UnitPage name={decodeURIComponent(parts.slice(1).join('/'))} q={q} />;
    if (parts[0] === 'states' && parts[2])
      return <StatePage machine={parts[1]} state={decodeURIComponent(parts[2])} q={q} />;
    if (parts[0] === 'machines') return <MachinesPage q={q} />;
    return (
      <ChartPage
        graphs={graphs}
        machine={parts[0] === 'charts' ? parts[1] : 'engine-unit'}
        q={q}
        counts={counts}
      />
    );
  }, [route, counts, countsError]);
  return (
    <>
      <header>
        <h1>
          <Link path="" query={q}>
            flotilla
          </Link>
        </h1>
        <nav>
          <Link path="" query={q}>
            lifecycles
          </Link>
          <Link path="machines" query={q}>
            machines
          </Link>
        </nav>
        <FilterBar q={q} />
        <span class="muted total">{counts ? totalText(counts.counts) : ''}</span>
      </header>
      <main>
        {countsError && <p class="error">{countsError}</p>}
        {page}
      </main>
      <Scrubber q={q} counts={counts} />
    </>
  );
}

// Drawn once the layouts are here (preloaded beside the script). A chart the server drew was
// painted before this script ran (see index.html), and is taken over in place (hydrated: its
// elements are kept, handlers added).
const root = document.getElementById('app')!;
const drawn = boot !== undefined;
getJson<GraphsReply>('/ui/assets/machines.json').then(
  (graphs) => (drawn ? hydrate : render)(<App graphs={graphs} />, root),
  (e: Error) => render(<p class="error">{e.message}</p>, root),
);
