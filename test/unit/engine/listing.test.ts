import { preEncoded, preEncodedBytes, servingPreEncoded } from '../../../src/api/pre-encoded';
import { encodePageInSlices, writeItem } from '../../../src/engine/listing';
import { foldAll } from '../../../src/engine/fold';
import {
  EncodedUnitViews,
  liveReports,
  unitView,
  type EncodedUnit,
} from '../../../src/engine/unit-views';
import type { FlotillaEvent } from '../../../src/events/types';
import { SCHEMA_VERSION } from '../../../src/events/types';
import {
  FlotillaService,
  ListUnitsResponse,
  Unit,
  type Unit as UnitMessage,
} from '../../../src/gen/flotilla/v1/flotilla';

const unit = (i: number): UnitMessage => ({
  name: `u${i}.service`,
  options: [{ section: 'Service', name: 'ExecStart', value: `/bin/sleep ${i}` }],
  hash: `h${i}`,
  targetState: i % 2 ? 'launched' : 'inactive',
  targetMachine: i % 2 ? 'm1' : '',
  global: i % 5 === 0,
  description: `unit ${i}`,
  currentState: 'inactive',
  phase: 'inactive',
  reason: '',
  lastFailure: undefined,
});

describe('encodePageInSlices', () => {
  it.each([
    [0, ''],
    [1, 'u0.service'],
    [7, ''],
    [12, 'u11.service'],
  ])('writes the bytes ListUnitsResponse.encode writes (%i units)', async (n, token) => {
    const units = Array.from({ length: n }, (_, i) => unit(i));
    const res = await encodePageInSlices(
      n,
      (i, w) => writeItem(w, Unit.encode(units[i]).finish()),
      token,
      (b) => ListUnitsResponse.decode(b),
    );
    const want = ListUnitsResponse.encode({ units, nextPageToken: token }).finish();
    expect(Buffer.from(preEncodedBytes(res)!).equals(Buffer.from(want))).toBe(true);
    expect(res.units).toEqual(units);
    expect(res.nextPageToken).toBe(token);
  });

  it('hands the event loop back when its turn is used up, and skips items gone meanwhile', async () => {
    const units = Array.from({ length: 300 }, (_, i) => unit(i));
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    let reads = 0;
    const res = await encodePageInSlices(
      300,
      (i, w) => {
        reads++;
        if (i !== 4) writeItem(w, Unit.encode(units[i]).finish());
      },
      '',
      (b) => ListUnitsResponse.decode(b),
      0, // every turn is used up at once: a pause every 64 items
    );
    clearInterval(ticker);
    expect(reads).toBe(300);
    expect(res.units.map((u) => u.name)).toEqual(
      units.filter((_, i) => i !== 4).map((u) => u.name),
    );
    expect(turns).toBeGreaterThan(0);
  });
});

describe('preEncoded', () => {
  const value = { units: [unit(1), unit(2)], nextPageToken: 'u2.service' };
  const bytes = ListUnitsResponse.encode(value).finish();

  it('reads like the decoded message', () => {
    const r = preEncoded(bytes, (b) => ListUnitsResponse.decode(b));
    expect(r).toEqual(value);
    expect({ ...r }).toEqual(value);
    expect(JSON.parse(JSON.stringify(r))).toEqual(value);
    expect('units' in r).toBe(true);
    expect(preEncodedBytes(r)).toBe(bytes);
  });

  it('is not claimed for ordinary objects', () => {
    expect(preEncodedBytes(value)).toBeUndefined();
    expect(preEncodedBytes(null)).toBeUndefined();
    expect(preEncodedBytes('x')).toBeUndefined();
  });

  it('is sent as it is by the server, ordinary responses are encoded as before', () => {
    const service = servingPreEncoded(FlotillaService);
    const r = preEncoded(bytes, () => {
      throw new Error('the server must not decode it');
    });
    expect(Buffer.from(bytes).equals(service.listUnits.responseSerialize(r))).toBe(true);
    expect(service.listUnits.responseSerialize(value).equals(Buffer.from(bytes))).toBe(true);
    expect(service.listUnits.path).toBe(FlotillaService.listUnits.path);
  });
});

describe('preEncoded in promises', () => {
  it('is not decoded by being returned from an async function', async () => {
    let decodes = 0;
    const bytes = ListUnitsResponse.encode({ units: [unit(1)], nextPageToken: '' }).finish();
    const make = async () =>
      preEncoded(bytes, (b) => {
        decodes++;
        return ListUnitsResponse.decode(b);
      });
    const r = await make();
    expect(decodes).toBe(0);
    expect(r.units).toHaveLength(1);
    expect(decodes).toBe(1);
  });
});

const decodeView = (v: EncodedUnit | undefined) =>
  Unit.decode(Buffer.concat([v!.file, v!.options, v!.status]));

describe('EncodedUnitViews', () => {
  const ev = (index: number, b: object): FlotillaEvent =>
    ({ ...b, index, epoch: 1, time: index, v: SCHEMA_VERSION }) as FlotillaEvent;
  const options = [{ section: 'Service', name: 'ExecStart', value: '/bin/true' }];

  it('encodes a unit once and again only after it is forgotten', () => {
    const state = foldAll([
      ev(1, { type: 'UnitSubmitted', unit: 'a.service', options, hash: 'h', target: 'launched' }),
    ]);
    const views = new EncodedUnitViews();
    const first = views.get(state, 'a.service')!;
    expect(decodeView(first)).toEqual(unitView(state, state.units.get('a.service')!));
    state.units.get('a.service')!.machine = 'm1';
    const again = views.get(state, 'a.service')!;
    expect(again.status).toBe(first.status);
    expect(again.file).toBe(first.file);
    // A status change: only the status part is encoded again.
    views.forget('a.service');
    const placed = views.get(state, 'a.service')!;
    expect(decodeView(placed).targetMachine).toBe('m1');
    expect(placed.file).toBe(first.file);
    expect(placed.status).not.toBe(first.status);
    // A new file: everything is.
    state.units.get('a.service')!.description = 'changed';
    expect(decodeView(views.get(state, 'a.service')).description).toBe('');
    views.forgetFile('a.service');
    expect(decodeView(views.get(state, 'a.service')).description).toBe('changed');
    expect(views.get(state, 'missing.service')).toBeUndefined();
  });

  it('starts over when the state is replaced', () => {
    const mk = (target: string) =>
      foldAll([ev(1, { type: 'UnitSubmitted', unit: 'a.service', options, hash: 'h', target })]);
    const views = new EncodedUnitViews();
    expect(decodeView(views.get(mk('launched'), 'a.service')).targetState).toBe('launched');
    expect(decodeView(views.get(mk('loaded'), 'a.service')).targetState).toBe('loaded');
    expect(views.size).toBe(1);
  });

  it("shows fleet's STATE column from the reports", () => {
    const state = foldAll([
      ev(1, { type: 'UnitSubmitted', unit: 'a.service', options, hash: 'h', target: 'launched' }),
      ev(2, { type: 'UnitScheduled', unit: 'a.service', machine: 'm1', reason: 'r' }),
    ]);
    const u = state.units.get('a.service')!;
    const report = (active: string, load = 'loaded', machine = 'm1') =>
      foldAll(
        [
          ev(state.index + 1, {
            type: 'UnitStateReported',
            unit: 'a.service',
            machine,
            state: { load, active, sub: 'x', hash: 'h' },
          }),
        ],
        state,
      );
    expect(unitView(state, u).currentState).toBe('inactive');
    expect(unitView(report('activating'), u).currentState).toBe('loaded');
    expect(unitView(report('deactivating'), u).currentState).toBe('launched');
    expect(unitView(report('inactive', 'not-found'), u).currentState).toBe('inactive');
    // Only the placed machine's report counts.
    expect(unitView(report('active', 'loaded', 'm2'), u).currentState).toBe('inactive');
  });

  it("leaves a lost machine's reports out until it comes back", () => {
    const joined = (i: number, machine: string) =>
      ev(i, { type: 'MachineJoined', machine, ip: '10.0.0.1', metadata: {} });
    const state = foldAll([
      joined(1, 'm1'),
      ev(2, { type: 'UnitSubmitted', unit: 'a.service', options, hash: 'h', target: 'launched' }),
      ev(3, {
        type: 'UnitStateReported',
        unit: 'a.service',
        machine: 'm1',
        state: { load: 'loaded', active: 'active', sub: 'running', hash: 'h' },
      }),
    ]);
    const u = state.units.get('a.service')!;
    // Unplaced: every live machine's report counts.
    expect(unitView(state, u).currentState).toBe('launched');
    expect([...liveReports(state, 'a.service')].map(([m]) => m)).toEqual(['m1']);
    foldAll([ev(4, { type: 'MachineLost', machine: 'm1', reason: 'no heartbeat' })], state);
    expect(unitView(state, u).currentState).toBe('inactive');
    expect([...liveReports(state, 'a.service')]).toEqual([]);
    foldAll([joined(5, 'm1')], state);
    expect(unitView(state, u).currentState).toBe('launched');
  });
});
