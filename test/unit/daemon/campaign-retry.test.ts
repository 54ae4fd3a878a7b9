import { CampaignRetry } from '../../../src/daemon/campaign-retry';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import type { LogSink } from '../../../src/log';

function recorder(): { log: LogSink; lines: string[] } {
  const lines: string[] = [];
  const at = (lvl: string) => (msg: string) => void lines.push(`${lvl} ${msg}`);
  return {
    lines,
    log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') },
  };
}

const denied = new FlotillaError(
  ErrorCode.PermissionDenied,
  'etcd refused campaign: permission denied',
);

describe('CampaignRetry', () => {
  it('says a refusal once, at error level with what to do, and doubles its wait up to the cap', () => {
    const { log, lines } = recorder();
    const r = new CampaignRetry({ cluster: 'prod', log, deniedMinMs: 1000, deniedMaxMs: 30_000 });
    const waits = Array.from({ length: 8 }, () => r.failed(denied));
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(lines.filter((l) => l.startsWith('error'))).toEqual([
      expect.stringContaining(
        'these etcd credentials cannot write /flotilla/prod/; set disable_engine=true',
      ),
    ]);
    expect(lines.filter((l) => !l.startsWith('error') && !l.startsWith('debug'))).toEqual([]);
  });

  it('after a won campaign, a new refusal is said again and starts from the shortest wait', () => {
    const { log, lines } = recorder();
    const r = new CampaignRetry({ cluster: 'prod', log });
    r.failed(denied);
    r.failed(denied);
    r.succeeded();
    expect(r.failed(denied)).toBe(1000);
    expect(lines.filter((l) => l.startsWith('error'))).toHaveLength(2);
  });

  it('other failures keep the short retry and a warning each time', () => {
    const { log, lines } = recorder();
    const r = new CampaignRetry({ cluster: 'prod', log });
    const outage = new FlotillaError(ErrorCode.StoreUnavailable, 'etcd failed campaign: boom');
    for (let i = 0; i < 3; i++) expect(r.failed(outage)).toBeLessThan(1000);
    expect(lines).toEqual(Array(3).fill('warn campaign failed; retrying'));
  });

  it('a log of unknown events: an error each time, and the election left to others for 10 s', () => {
    const { log, lines } = recorder();
    const r = new CampaignRetry({ cluster: 'prod', log });
    const unknown = new FlotillaError(ErrorCode.UnknownEventSchema, 'event type Foo');
    expect(r.failed(unknown)).toBeGreaterThanOrEqual(10_000);
    expect(r.failed(unknown)).toBeGreaterThanOrEqual(10_000);
    expect(lines).toEqual(Array(2).fill('error refusing to lead: unknown events in the log'));
  });
});
