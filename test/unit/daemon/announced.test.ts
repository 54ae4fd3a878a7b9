import { createLogger } from '../../../src/log';
import { announcedPort } from '../../helpers/announced';

/**
 * Tests start flotillad on port 0 and read the port back from its startup lines
 * (test/helpers/announced.ts): the lines as the daemon's logger writes them, in every format.
 */
describe('announcedPort', () => {
  for (const [format, journal] of [
    ['text', false],
    ['text', true],
    ['json', false],
  ] as const) {
    it(`reads the ports from ${format}${journal ? ' (journal)' : ''} lines`, () => {
      const lines: string[] = [];
      const log = createLogger({ format, journal, write: (l) => lines.push(l) }).child({
        component: 'daemon',
      });
      const output = (): string => lines.join('\n');
      expect(announcedPort(output(), 'API')).toBeUndefined();
      log.info('fleet API v1 listening', { addresses: 'unix:///run/fleet.sock,127.0.0.1:4001' });
      expect(announcedPort(output(), 'API')).toBeUndefined();
      log.info('API listening', {
        addresses: 'unix:///run/flotilla.sock,127.0.0.1:41234',
        advertise: '127.0.0.1:41234',
      });
      log.info('HTTP listening (/healthz, /readyz, /metrics, /ui/)', { address: '127.0.0.1:7071' });
      expect(announcedPort(output(), 'API')).toBe(41234);
      expect(announcedPort(output(), 'fleet API v1')).toBe(4001);
      expect(announcedPort(output(), 'HTTP')).toBe(7071);
    });
  }
});
