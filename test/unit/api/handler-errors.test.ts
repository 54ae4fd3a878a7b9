import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Metadata } from '@grpc/grpc-js';
import { connectApi } from '../../../src/api/client';
import { asciiJson, ERROR_DETAILS_TRAILER, toGrpcStatus } from '../../../src/api/errors';
import { startApiServer } from '../../../src/api/server';
import type { ClusterApi } from '../../../src/api/types';
import { clip, ErrorCode, FlotillaError } from '../../../src/errors';
import { fleetApiHandler } from '../../../src/fleetapi';

/**
 * The real gRPC server and fleet-API handler over an API whose methods have bugs (they throw
 * TypeErrors, synchronously or not, before or during a stream): each call ends INTERNAL, the
 * failure is reported (the daemon logs and counts it), and the server goes on serving.
 */

const bug = (): never => {
  throw new TypeError("Cannot read properties of undefined (reading 'x')");
};

function buggyApi(): ClusterApi {
  return {
    createUnits: async () => bug(),
    setTargetStates: () => bug(),
    destroyUnits: async () => Promise.reject(new Error('plain error')),
    getUnit: async (r) => {
      if (r.name === 'ok.service') {
        return {
          name: r.name,
          options: [],
          hash: '',
          targetState: 'inactive',
          targetMachine: '',
          global: false,
          description: '',
          currentState: '',
          phase: '',
          reason: '',
          lastFailure: undefined,
        };
      }
      throw new FlotillaError(ErrorCode.UnitNotFound, `unit ${clip(r.name)} not found`, {
        details: { unit: r.name },
      });
    },
    listUnits: async () => bug(),
    listUnitStates: async () => bug(),
    listMachines: async () => bug(),
    setMachineMetadata: async () => bug(),
    getClusterStatus: async () => ({
      leaderMachineId: 'm',
      leaderAddress: 'a',
      epoch: 1,
      logIndex: 1,
      units: 0,
      machines: 0,
      snapshotIndex: 0,
    }),
    // eslint-disable-next-line require-yield
    watch: async function* () {
      bug();
    },
    unitStatus: async () => bug(),
    unitJournal: async function* () {
      yield { text: 'one line\n' };
      bug();
    },
    // eslint-disable-next-line require-yield
    exportHistory: async function* () {
      bug();
    },
  };
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-handler-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('gRPC handlers', () => {
  it('turn a bug into INTERNAL, report it, and keep serving', async () => {
    const reported: string[] = [];
    const server = await startApiServer({
      api: buggyApi(),
      listen: [`unix://${path.join(dir, 'api.sock')}`],
      onInternalError: (method) => reported.push(method),
    });
    const client = connectApi(server.addresses[0], { requestTimeoutMs: 5000 });
    try {
      for (const call of [
        () => client.createUnits({ units: [], replace: false }),
        () => client.setTargetStates({ names: [], targetState: '' }),
        () => client.destroyUnits({ names: [] }),
        () => client.listMachines({}),
        async () => {
          for await (const _ of client.watch(
            { fromIndex: 0, types: [] },
            new AbortController().signal,
          ));
        },
        async () => {
          for await (const _ of client.unitJournal(
            { name: 'x.service', machineId: '', lines: 1, follow: false },
            new AbortController().signal,
          ));
        },
      ]) {
        await expect(call()).rejects.toMatchObject({ code: ErrorCode.Internal });
      }
      expect(reported).toEqual([
        'CreateUnits',
        'SetTargetStates',
        'DestroyUnits',
        'ListMachines',
        'Watch',
        'UnitJournal',
      ]);
      // A refusal is not a bug: not reported.
      await expect(client.getUnit({ name: 'é.service' })).rejects.toMatchObject({
        code: ErrorCode.UnitNotFound,
        details: { unit: 'é.service' },
      });
      expect(reported).toHaveLength(6);
      expect((await client.getClusterStatus({})).epoch).toBe(1);
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe('toGrpcStatus', () => {
  it('sends any details as ASCII, bounded, and they come back as sent', () => {
    const name = `é${'x'.repeat(120_000)}\n`;
    const st = toGrpcStatus(
      new FlotillaError(ErrorCode.UnitNotFound, 'm'.repeat(10_000), { details: { unit: name } }),
    );
    const raw = (st.metadata as Metadata).get(ERROR_DETAILS_TRAILER)[0] as string;
    expect(raw).toMatch(/^[\x20-\x7e]+$/);
    expect(raw.length).toBeLessThan(400);
    expect(JSON.parse(raw).unit.startsWith('éxxx')).toBe(true);
    expect(st.details!.length).toBeLessThanOrEqual(4097);
    expect(asciiJson({ a: 'é\u2028😀' })).toBe('{"a":"\\u00e9\\u2028\\ud83d\\ude00"}');
    expect(JSON.parse(asciiJson({ a: 'é\u2028😀' }))).toEqual({ a: 'é\u2028😀' });
  });

  it('never throws, whatever was thrown', () => {
    for (const thrown of [undefined, null, 42, 'é', new Error('é\ud800'), { toString: bug }]) {
      expect(() => toGrpcStatus(thrown)).not.toThrow();
    }
  });
});

describe('fleet API handler', () => {
  it('answers 500 for a bug, reports it, and keeps serving', async () => {
    const reported: string[] = [];
    const server = http.createServer(
      fleetApiHandler(buggyApi(), { onInternalError: (what) => reported.push(what) }),
    );
    const sock = path.join(dir, 'fleet.sock');
    await new Promise<void>((r) => server.listen(sock, r));
    const get = (p: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        http
          .get({ socketPath: sock, path: p }, (res) => {
            let t = '';
            res.on('data', (c: Buffer) => (t += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
          })
          .on('error', reject);
      });
    try {
      const r = await get('/fleet/v1/machines');
      expect(r.status).toBe(500);
      expect(JSON.parse(r.text).error.code).toBe(500);
      expect(reported).toEqual(['GET /fleet/v1/machines']);
      const ok = await get('/fleet/v1/units/ok.service');
      expect(ok.status).toBe(200);
      const notFound = await get(`/fleet/v1/units/${encodeURIComponent('é.service')}`);
      expect(notFound.status).toBe(404);
      // A path starting with "//" is a path, not a host (found by test/integration/fuzz.test.ts).
      expect((await get('//')).status).toBe(404);
      expect(reported).toHaveLength(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
