import { preEncoded, preEncodedBytes, servingPreEncoded } from '../../../src/api/pre-encoded';
import { encodePageInSlices } from '../../../src/engine/listing';
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
      Unit,
      n,
      (i) => units[i],
      token,
      (b) => ListUnitsResponse.decode(b),
    );
    const want = ListUnitsResponse.encode({ units, nextPageToken: token }).finish();
    expect(Buffer.from(preEncodedBytes(res)!).equals(Buffer.from(want))).toBe(true);
    expect(res.units).toEqual(units);
    expect(res.nextPageToken).toBe(token);
  });

  it('hands the event loop back between slices and skips items gone meanwhile', async () => {
    const units = Array.from({ length: 10 }, (_, i) => unit(i));
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    let reads = 0;
    const res = await encodePageInSlices(
      Unit,
      10,
      (i) => {
        reads++;
        return i === 4 ? undefined : units[i];
      },
      '',
      (b) => ListUnitsResponse.decode(b),
      3,
    );
    clearInterval(ticker);
    expect(reads).toBe(10);
    expect(res.units.map((u) => u.name)).toEqual(
      units.filter((_, i) => i !== 4).map((u) => u.name),
    );
    // Three pauses (after items 3, 6 and 9): timers got to run.
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
