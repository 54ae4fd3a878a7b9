import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectApi } from '../../../src/api/client';
import { startApiServer } from '../../../src/api/server';
import { StreamLimits } from '../../../src/api/stream-limits';
import type { ClusterApi } from '../../../src/api/types';
import { ErrorCode } from '../../../src/errors';
import { apiWith } from '../../helpers/api-with';

/**
 * Open streams are bounded per caller and in all: a caller that opens Watch streams and keeps
 * them cannot exhaust the daemon; a closed stream frees its slot.
 */

/** An API whose Watch sends one event, then stays open until the client goes. */
function quietApi(): ClusterApi {
  return apiWith({
    watch: async function* (_req, signal) {
      yield {
        index: 1,
        epoch: 1,
        schemaVersion: 1,
        type: 'UnitSubmitted',
        unit: 'a.service',
        machine: '',
        json: '{}',
        timeMs: 1,
      };
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    },
  });
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-streams-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('stream limits', () => {
  it('refuses a caller past its bound with RESOURCE_EXHAUSTED (retryable); a closed stream frees its slot', async () => {
    const server = await startApiServer({
      api: quietApi(),
      listen: [`unix://${path.join(dir, 'api.sock')}`],
      streamLimits: { perCaller: 2 },
    });
    const client = connectApi(server.addresses[0], { requestTimeoutMs: 5000 });
    /** Opens a Watch and reads its first event (so the server holds it); returns its abort. */
    const open = async (): Promise<AbortController> => {
      const ac = new AbortController();
      const it = client.watch({ fromIndex: 0, types: [] }, ac.signal)[Symbol.asyncIterator]();
      await it.next();
      return ac;
    };
    try {
      const first = await open();
      await open();
      await expect(open()).rejects.toMatchObject({
        code: ErrorCode.ResourceExhausted,
        retryable: true,
        message: expect.stringMatching(/Watch: .* already has 2 streams open/),
      });
      first.abort();
      // The server sees the cancel shortly after; then the slot is free again.
      const end = Date.now() + 5000;
      for (;;) {
        try {
          await open();
          break;
        } catch (err) {
          if (Date.now() > end) throw err;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    } finally {
      client.close();
      await server.close();
    }
  });

  it('counts per caller and in all; a read-only caller cannot widen its share with the forwarded-by header', () => {
    const limits = new StreamLimits({ perCaller: 2, total: 3 });
    const alice = { role: 'read-only' as const, who: 'the certificate CN=alice' };
    const bob = { role: 'read-only' as const, who: 'the certificate CN=bob' };
    const a1 = limits.acquire(alice, 'Watch');
    limits.acquire({ ...alice, forwardedBy: 'm1' }, 'Watch');
    expect(() => limits.acquire({ ...alice, forwardedBy: 'm2' }, 'Watch')).toThrow(
      /CN=alice already has 2 streams open/,
    );
    limits.acquire(bob, 'Watch');
    expect(() => limits.acquire(bob, 'Watch')).toThrow(/already serves 3 streams/);
    a1();
    a1(); // a second release changes nothing
    expect(limits.size).toBe(2);
    limits.acquire(bob, 'Watch');
    expect(limits.size).toBe(3);
    // A daemon forwarding for several machines counts per machine.
    const fwd = new StreamLimits({ perCaller: 1 });
    const daemon = { role: 'agent' as const, who: 'the certificate CN=follower' };
    fwd.acquire({ ...daemon, forwardedBy: 'm1' }, 'Watch');
    fwd.acquire({ ...daemon, forwardedBy: 'm2' }, 'Watch');
    expect(() => fwd.acquire({ ...daemon, forwardedBy: 'm1' }, 'Watch')).toThrow(
      /CN=follower \(for machine m1\) already has 1 streams open/,
    );
  });
});
