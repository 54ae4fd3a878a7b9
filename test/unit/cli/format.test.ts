import {
  dash,
  formatHash,
  formatMetadata,
  goQuote,
  machineFullLegend,
  machineIdLegend,
} from '../../../src/cli/format';

const ID = '32d3a898aa1bc3b5ec9e07a4e2a8c0f1';

describe('machine legends', () => {
  test.each([
    [{ id: ID, ip: '10.0.0.1' }, false, '32d3a898.../10.0.0.1'],
    [{ id: ID, ip: '10.0.0.1' }, true, `${ID}/10.0.0.1`],
    [{ id: ID, ip: '' }, false, '32d3a898...'],
    [{ id: ID }, true, ID],
    [{ id: 'abc', ip: '::1' }, false, 'abc.../::1'],
  ])('%j full=%p → %p', (m, full, expected) => {
    expect(machineFullLegend(m, full)).toBe(expected);
  });

  test('the ID legend alone (list-machines MACHINE column)', () => {
    expect(machineIdLegend(ID, false)).toBe('32d3a898...');
    expect(machineIdLegend(ID, true)).toBe(ID);
  });
});

describe('hashes and missing values', () => {
  const hash = 'ea7c914f1d2b3a4c5d6e7f8091a2b3c4d5e6f708';
  test('7 characters, 40 with --full, - when missing', () => {
    expect(formatHash(hash, false)).toBe('ea7c914');
    expect(formatHash(hash, true)).toBe(hash);
    expect(formatHash('', false)).toBe('-');
    expect(formatHash('', true)).toBe('-');
  });

  test('dash', () => {
    expect(dash('')).toBe('-');
    expect(dash(undefined)).toBe('-');
    expect(dash('active')).toBe('active');
  });
});

describe('metadata', () => {
  test('k=v sorted by key, joined with commas; - when empty', () => {
    expect(formatMetadata({ region: 'us-east', disk: 'ssd', az: '1' })).toBe(
      'az=1,disk=ssd,region=us-east',
    );
    expect(formatMetadata({})).toBe('-');
  });
});

describe("goQuote (Go's %q)", () => {
  test.each([
    ['x', '"x"'],
    ['', '""'],
    ['a"b', '"a\\"b"'],
    ['a\\b', '"a\\\\b"'],
    ['tab\there', '"tab\\there"'],
    ['nl\n', '"nl\\n"'],
    ['\x01', '"\\x01"'],
    ['\x7f', '"\\x7f"'],
    ['héllo 日本', '"héllo 日本"'],
  ])('%j → %s', (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });
});
