import { CreateUnitsRequest, FlotillaService } from '../../../src/gen/flotilla/v1/flotilla';
import {
  guardingRequests,
  MAX_REQUEST_ELEMENTS,
  refusalOf,
  requestElements,
} from '../../../src/api/request-guard';

/** The request bytes counted before decoding (src/api/request-guard.ts). */
const encode = (units: number, options: number): Buffer =>
  Buffer.from(
    CreateUnitsRequest.encode({
      units: Array.from({ length: units }, (_, i) => ({
        name: `u${i}.service`,
        targetState: 'launched',
        options: Array.from({ length: options }, () => ({
          section: 'Service',
          name: 'Environment',
          value: 'A=1',
        })),
      })),
      replace: false,
    }).finish(),
  );

describe('requestElements', () => {
  it('counts units, their fields and their options down to the options’ own fields', () => {
    // 3 units × (name, target state, 4 options × (1 + 3 fields)) = 3 × 18.
    expect(requestElements(encode(3, 4))).toBe(3 + 3 * (2 + 4 + 4 * 3));
  });

  it('stops counting once above the limit, and reads a malformed message as nothing', () => {
    expect(requestElements(Buffer.alloc(2_000, Buffer.from([0x0a, 0x00])), 2, 100)).toBe(101);
    expect(requestElements(Buffer.from([0xff, 0xff]))).toBe(0);
  });
});

describe('guardingRequests', () => {
  const guarded = guardingRequests(FlotillaService);

  it('decodes an ordinary request as it is', () => {
    const req = guarded.createUnits.requestDeserialize(encode(2, 2));
    expect(refusalOf(req)).toBeUndefined();
    expect(req.units.map((u) => u.name)).toEqual(['u0.service', 'u1.service']);
  });

  it('turns malformed bytes and too many elements into a refusal, not an exception', () => {
    const bad = refusalOf(guarded.createUnits.requestDeserialize(Buffer.from([0x0a, 0x10, 0x0a])));
    expect(bad?.message).toMatch(/^malformed CreateUnits request: its 3 bytes/);
    const many = Buffer.alloc(2 * (MAX_REQUEST_ELEMENTS + 1), Buffer.from([0x0a, 0x00]));
    const big = refusalOf(guarded.destroyUnits.requestDeserialize(many));
    expect(big?.message).toContain(`holds more than ${MAX_REQUEST_ELEMENTS} fields`);
  });
});
