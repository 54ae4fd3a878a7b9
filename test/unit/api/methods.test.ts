import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { authorize, ROLES } from '../../../src/api/access';
import { connectApi } from '../../../src/api/client';
import {
  API_METHODS,
  bindAll,
  definitionOf,
  deriveApi,
  isWrite,
  type MethodName,
  type MethodTable,
  type Request,
  type Response,
  retriedOnFailover,
} from '../../../src/api/methods';
import { startApiServer } from '../../../src/api/server';
import type { ClusterApi } from '../../../src/api/types';
import { ApiRouter, readOnlyView } from '../../../src/daemon/router';
import { ErrorCode, FlotillaError } from '../../../src/errors';
import { FlotillaService } from '../../../src/gen/flotilla/v1/flotilla';

/**
 * The method table (src/api/methods.ts) is the one list of the cluster API's methods: these
 * tests check that it covers the proto's service exactly, and that the client, the server, access
 * control and the router derived from it treat every method as the table says.
 */

// Checked by the compiler (`npm run lint` type-checks test/): a table that misses a method of the
// service, names one it does not have, or declares a stream a write does not compile.
// @ts-expect-error -- every method of the service needs an entry
export const missing: MethodTable = { createUnits: { access: 'write' } };
export const extra: MethodTable = {
  ...({} as MethodTable),
  // @ts-expect-error -- a method the service does not have
  deleteEverything: { access: 'write' },
};
export const streamWrite: MethodTable = {
  ...({} as MethodTable),
  // @ts-expect-error -- a stream is a read
  watch: { access: 'write' },
};

const PROTO = path.join(__dirname, '../../../proto/flotilla/v1/flotilla.proto');

/** A message of `name`'s response type with every field at its default. */
const emptyResponse = <M extends MethodName>(name: M): Response<M> =>
  definitionOf(name).responseDeserialize(Buffer.alloc(0));
const emptyRequest = <M extends MethodName>(name: M): Request<M> =>
  definitionOf(name).requestDeserialize(Buffer.alloc(0));

describe('the method table', () => {
  it('has one entry per rpc of the proto and of the generated service, in order', () => {
    const rpcs = [...fs.readFileSync(PROTO, 'utf8').matchAll(/^\s*rpc\s+(\w+)\s*\(/gm)].map(
      (m) => m[1],
    );
    expect(rpcs).toHaveLength(13);
    expect(API_METHODS.map((m) => m.grpcName)).toEqual(rpcs);
    expect(API_METHODS.map((m) => m.name)).toEqual(Object.keys(FlotillaService));
  });

  it('says each method shape as the generated service does (no client streams)', () => {
    for (const m of API_METHODS) {
      const def = FlotillaService[m.name];
      expect({ name: m.name, requestStream: def.requestStream }).toEqual({
        name: m.name,
        requestStream: false,
      });
      expect({ name: m.name, kind: m.kind }).toEqual({
        name: m.name,
        kind: def.responseStream ? 'server-stream' : 'unary',
      });
      expect(def.path).toBe(`/flotilla.v1.Flotilla/${m.grpcName}`);
    }
  });

  it('names the writes: the four that change units and machines, and a resuming status', () => {
    expect(API_METHODS.filter((m) => m.access === 'write').map((m) => m.name)).toEqual([
      'createUnits',
      'setTargetStates',
      'destroyUnits',
      'setMachineMetadata',
    ]);
    expect(isWrite('getClusterStatus', { resumeRescheduling: true })).toBe(true);
    expect(isWrite('getClusterStatus', { resumeRescheduling: false })).toBe(false);
    expect(isWrite('getClusterStatus', undefined)).toBe(false);
    expect(retriedOnFailover('getClusterStatus', {})).toBe(true);
    expect(retriedOnFailover('getClusterStatus', { resumeRescheduling: true })).toBe(false);
    expect(retriedOnFailover('listUnits', {})).toBe(true);
    expect(retriedOnFailover('createUnits', {})).toBe(false);
    expect(retriedOnFailover('watch', {})).toBe(false);
  });

  it('access control: a write needs the operator, a read any role', () => {
    for (const m of API_METHODS) {
      for (const role of ROLES) {
        const call = (): void => authorize(m.name, { role, who: 'test' }, emptyRequest(m.name));
        if (m.access === 'write' && role !== 'operator')
          expect(call).toThrow(expect.objectContaining({ code: ErrorCode.PermissionDenied }));
        else expect(call).not.toThrow();
      }
    }
    expect(() =>
      authorize('getClusterStatus', { role: 'agent', who: 'test' }, { resumeRescheduling: true }),
    ).toThrow('getClusterStatus needs the operator role; test has the agent role');
  });
});

/** An API that records each call by name and answers empty messages (one per stream). */
function recordingApi(calls: string[]): ClusterApi {
  return deriveApi({
    unary: async (name) => {
      calls.push(name);
      return emptyResponse(name);
    },
    stream: async function* (name) {
      calls.push(name);
      yield emptyResponse(name);
    },
  });
}

describe('the derived client and server', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-methods-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('carry every method of the table to the API behind the server', async () => {
    const calls: string[] = [];
    const server = await startApiServer({
      api: recordingApi(calls),
      listen: [`unix://${path.join(dir, 'api.sock')}`],
    });
    const client = connectApi(server.addresses[0], { requestTimeoutMs: 5000 });
    try {
      for (const m of API_METHODS) {
        if (m.kind === 'unary') {
          expect(await client[m.name](emptyRequest(m.name) as never)).toEqual(
            emptyResponse(m.name),
          );
        } else {
          const got: unknown[] = [];
          const stream = client[m.name](
            emptyRequest(m.name) as never,
            new AbortController().signal,
          );
          for await (const msg of stream) got.push(msg);
          expect(got).toEqual([emptyResponse(m.name)]);
        }
      }
      expect(calls).toEqual(API_METHODS.map((m) => m.name));
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('derived API objects', () => {
  it('bindAll keeps a class instance as `this`', async () => {
    class Engine {
      private readonly epoch = 4;
      async getClusterStatus(): Promise<Response<'getClusterStatus'>> {
        return { ...emptyResponse('getClusterStatus'), epoch: this.epoch };
      }
    }
    const bound = bindAll(new Engine() as unknown as ClusterApi);
    const { getClusterStatus } = bound;
    expect((await getClusterStatus({})).epoch).toBe(4);
  });

  it('the read-only view refuses every write and serves every read', async () => {
    const calls: string[] = [];
    const view = readOnlyView(recordingApi(calls), 'lost its lease');
    for (const m of API_METHODS) {
      if (m.kind !== 'unary') continue;
      const call = view[m.name](emptyRequest(m.name) as never) as Promise<unknown>;
      if (m.access === 'write')
        await expect(call).rejects.toMatchObject({ code: ErrorCode.StoreUnavailable });
      else await expect(call).resolves.toBeDefined();
    }
    expect(calls).toEqual(
      API_METHODS.filter((m) => m.kind === 'unary' && m.access === 'read').map((m) => m.name),
    );
  });
});

describe('the router', () => {
  /** An API whose every call fails once with UNAVAILABLE (a leader going away), then answers. */
  function flakyApi(calls: string[]): ClusterApi {
    const failed = new Set<string>();
    const once = (name: string): void => {
      calls.push(name);
      if (failed.has(name)) return;
      failed.add(name);
      throw new FlotillaError(ErrorCode.Unavailable, 'leader went away', { retryable: true });
    };
    return deriveApi({
      unary: async (name) => {
        once(name);
        return emptyResponse(name);
      },
      stream: async function* (name) {
        once(name);
        yield emptyResponse(name);
      },
    });
  }

  it('retries a unary read through a failover, never a write nor a stream', async () => {
    const calls: string[] = [];
    const router = new ApiRouter({ machine: 'self' }, undefined, { readRetryMs: 5000 });
    router.setLocal(flakyApi(calls));
    for (const m of API_METHODS) {
      const before = calls.length;
      const call =
        m.kind === 'unary'
          ? (router[m.name](emptyRequest(m.name) as never) as Promise<unknown>)
          : (async () => {
              const stream = router[m.name](
                emptyRequest(m.name) as never,
                new AbortController().signal,
              );
              for await (const _ of stream);
            })();
      if (m.kind === 'unary' && m.access === 'read') {
        await expect(call).resolves.toBeDefined();
        expect(calls.length - before).toBe(2);
      } else {
        await expect(call).rejects.toMatchObject({ code: ErrorCode.Unavailable });
        expect(calls.length - before).toBe(1);
      }
    }
    // getClusterStatus resuming rescheduling is a write: not retried.
    const fresh: string[] = [];
    router.setLocal(flakyApi(fresh));
    await expect(router.getClusterStatus({ resumeRescheduling: true })).rejects.toMatchObject({
      code: ErrorCode.Unavailable,
    });
    expect(fresh).toEqual(['getClusterStatus']);
  });
});
