// The package entry (what package.json "main"/"exports" point at once built) exports the
// unit-file API the issue promises, and it works from there.
import * as flotilla from '../../../src/index';

describe('package entry', () => {
  test('exports parseUnitFile, serializeUnitFile, unitHash and UnitFileError', () => {
    const options = flotilla.parseUnitFile('[Service]\nExecStart=/bin/sleep 100\n');
    expect(flotilla.serializeUnitFile(options)).toBe('[Service]\nExecStart=/bin/sleep 100\n');
    expect(flotilla.unitHash(options)).toBe('1c6fb6f3684bafb0c173d8b8b957ceff031180c1');
    expect(() => flotilla.parseUnitFile('[Unit\n')).toThrow(flotilla.UnitFileError);
  });

  test('exports the scheduler', () => {
    const ds = flotilla.schedule(
      [
        {
          name: 'a.service',
          target: 'launched',
          requirements: flotilla.unitRequirements('a.service', []).requirements,
        },
      ],
      [{ id: 'm1', metadata: {} }],
    );
    expect(ds.map(flotilla.formatDecision)).toEqual([
      'schedule a.service on m1: least loaded (0 units)',
    ]);
    expect(typeof flotilla.Scheduler).toBe('function');
  });
});
