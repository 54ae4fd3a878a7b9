import { ErrorCode, FlotillaError } from '../../../src/errors';
import type { EngineCluster } from '../../helpers/engine-cluster';
import type { Served } from './http';
import { serve, serveClusterEachTest } from './http';

/**
 * /fleet/v1/units as fleetctl's generated client (fleet schema/v1-gen.go) calls it: `?alt=json`
 * on every URL, Set bodies marshalled from schema.Unit (keys alphabetical, empty ones left out)
 * with Content-Type application/json.
 */
const HELLO_OPTIONS = [
  { name: 'Description', section: 'Unit', value: 'Hello' },
  { name: 'ExecStart', section: 'Service', value: '/bin/sleep 1000' },
];

let cluster: EngineCluster;
let api: Served;

serveClusterEachTest((c, a) => {
  cluster = c;
  api = a;
});

describe('PUT /fleet/v1/units/{name}', () => {
  it('creates a unit from fleetctl CreateUnit (name and options, no desiredState): 201, inactive', async () => {
    const r = await api.req('PUT', '/fleet/v1/units/hello.service?alt=json', {
      name: 'hello.service',
      options: HELLO_OPTIONS,
    });
    expect(r.status).toBe(201);
    expect(r.text).toBe('');
    const u = cluster.unitRecord('hello.service')!;
    expect(u.target).toBe('inactive');
    expect(u.options).toEqual([
      { section: 'Unit', name: 'Description', value: 'Hello' },
      { section: 'Service', name: 'ExecStart', value: '/bin/sleep 1000' },
    ]);
  });

  it('creates with a desiredState and takes the name from the URL when the body has none', async () => {
    const r = await api.req('PUT', '/fleet/v1/units/web.service?alt=json', {
      desiredState: 'launched',
      options: HELLO_OPTIONS,
    });
    expect(r.status).toBe(201);
    expect(cluster.unitRecord('web.service')!.target).toBe('launched');
  });

  it('sets the desired state of an existing unit from SetUnitTargetState: 204, same options kept', async () => {
    await cluster.seed([{ name: 'hello.service', options: HELLO_OPTIONS }]);
    const before = cluster.unitRecord('hello.service')!.hash;
    const r = await api.req('PUT', '/fleet/v1/units/hello.service?alt=json', {
      desiredState: 'launched',
      name: 'hello.service',
      options: HELLO_OPTIONS,
    });
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    const u = cluster.unitRecord('hello.service')!;
    expect(u.target).toBe('launched');
    expect(u.hash).toBe(before);
  });

  it('replaces the file of an existing unit sent with other options (fleetctl --replace): 201, inactive unless a desired state is sent', async () => {
    await cluster.seed([{ name: 'hello.service', target: 'launched' }]);
    const before = cluster.unitRecord('hello.service')!.hash;
    const other = [{ name: 'ExecStart', section: 'Service', value: '/bin/other' }];
    let r = await api.req('PUT', '/fleet/v1/units/hello.service?alt=json', {
      name: 'hello.service',
      options: other,
    });
    expect(r.status).toBe(201);
    let u = cluster.unitRecord('hello.service')!;
    expect(u.hash).not.toBe(before);
    expect(u.options).toEqual([{ section: 'Service', name: 'ExecStart', value: '/bin/other' }]);
    expect(u.target).toBe('inactive');

    // Replaced and given a desired state in one request.
    r = await api.req('PUT', '/fleet/v1/units/hello.service?alt=json', {
      desiredState: 'loaded',
      name: 'hello.service',
      options: HELLO_OPTIONS,
    });
    expect(r.status).toBe(201);
    u = cluster.unitRecord('hello.service')!;
    expect(u.options).toHaveLength(2);
    expect(u.target).toBe('loaded');
  });

  it.each([
    [
      'an existing unit without desiredState (and the same options or none)',
      'hello.service',
      {
        name: 'hello.service',
        options: [{ name: 'ExecStart', section: 'Service', value: '/bin/true' }],
      },
      409,
      'must provide desiredState to update existing unit hello.service',
    ],
    [
      'a new unit without options',
      'new.service',
      { desiredState: 'launched' },
      409,
      'unit new.service does not exist and options field empty',
    ],
    [
      'a body naming another unit',
      'hello.service',
      { name: 'other.service', desiredState: 'launched' },
      400,
      'name in URL "hello.service" differs from unit name in request body "other.service"',
    ],
    [
      'an unknown desired state',
      'hello.service',
      { desiredState: 'running' },
      400,
      'invalid target state "running": use inactive, loaded or launched',
    ],
    [
      'launching a template',
      'tmpl@.service',
      { desiredState: 'launched', options: HELLO_OPTIONS },
      400,
      'cannot activate template "tmpl@.service"',
    ],
  ])('refuses %s', async (_what, name, body, status, message) => {
    await cluster.seed([{ name: 'hello.service' }]);
    const r = await api.req('PUT', `/fleet/v1/units/${name}?alt=json`, body);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json).toEqual({ error: { code: status, message } });
  });

  it('refuses an invalid unit name with 400 naming the problem', async () => {
    const r = await api.req('PUT', '/fleet/v1/units/hello.bogus?alt=json', {
      options: HELLO_OPTIONS,
    });
    expect(r.status).toBe(400);
    expect(r.headers['x-flotilla-error-code']).toBe(ErrorCode.UnitNameInvalid);
    expect((r.json as { error: { message: string } }).error.message).toContain(
      'unit name "hello.bogus" has unknown type "bogus"',
    );
    expect(cluster.api.count('createUnits')).toBe(0);
  });

  it('refuses conflicting X-Fleet options with 400 naming the unit', async () => {
    const r = await api.req('PUT', '/fleet/v1/units/g.service?alt=json', {
      options: [
        ...HELLO_OPTIONS,
        { name: 'Global', section: 'X-Fleet', value: 'true' },
        { name: 'MachineOf', section: 'X-Fleet', value: 'a.service' },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.headers['x-flotilla-error-code']).toBe(ErrorCode.UnitOptionsInvalid);
    expect(cluster.unitRecord('g.service') !== undefined).toBe(false);
  });

  it('refuses another Content-Type with 415 and an undecodable body with 400', async () => {
    const plain = await api.req('PUT', '/fleet/v1/units/a.service', '{}', {
      'content-type': 'text/plain',
    });
    expect(plain.status).toBe(415);
    expect(plain.json).toEqual({
      error: { code: 415, message: 'only acceptable Content-Type is application/json' },
    });
    const broken = await api.req('PUT', '/fleet/v1/units/a.service', '{"options": 3}');
    expect(broken.status).toBe(400);
    expect((broken.json as { error: { message: string } }).error.message).toBe(
      'unable to decode body: options must be a list of unit options',
    );
    const notJson = await api.req('PUT', '/fleet/v1/units/a.service', 'nope');
    expect(notJson.status).toBe(400);
    expect((notJson.json as { error: { message: string } }).error.message).toMatch(
      /^unable to decode body: /,
    );
  });
});

describe('GET and DELETE /fleet/v1/units/{name}', () => {
  it('shows a placed unit as fleet did: currentState, desiredState, machineID, name, options', async () => {
    await cluster.seed([{ name: 'hello.service', options: HELLO_OPTIONS, target: 'launched' }]);
    const machine = cluster.unitRecord('hello.service')!.machine!;
    const r = await api.req('GET', '/fleet/v1/units/hello.service?alt=json');
    expect(r.status).toBe(200);
    expect(r.text).toBe(
      `{"currentState":"launched","desiredState":"launched","machineID":"${machine}","name":"hello.service","options":[{"name":"Description","section":"Unit","value":"Hello"},{"name":"ExecStart","section":"Service","value":"/bin/sleep 1000"}]}`,
    );
  });

  it('leaves out currentState and machineID of a global unit, and empty option values', async () => {
    await cluster.seed([
      {
        name: 'g.service',
        options: [
          { section: 'Service', name: 'Environment', value: '' },
          { section: 'X-Fleet', name: 'Global', value: 'true' },
        ],
        target: 'launched',
      },
    ]);
    const r = await api.req('GET', '/fleet/v1/units/g.service?alt=json');
    expect(r.text).toBe(
      '{"desiredState":"launched","name":"g.service","options":[{"name":"Environment","section":"Service"},{"name":"Global","section":"X-Fleet","value":"true"}]}',
    );
  });

  it('answers 404 for an unknown unit (fleetctl treats it as "not found")', async () => {
    const r = await api.req('GET', '/fleet/v1/units/nope.service?alt=json');
    expect(r.status).toBe(404);
    expect(r.text).toBe('{"error":{"code":404,"message":"unit nope.service does not exist"}}');
  });

  it('destroys with 204, then 404', async () => {
    await cluster.seed([{ name: 'hello.service' }]);
    const r = await api.req('DELETE', '/fleet/v1/units/hello.service?alt=json');
    expect(r.status).toBe(204);
    expect(cluster.unitRecord('hello.service') !== undefined).toBe(false);
    const again = await api.req('DELETE', '/fleet/v1/units/hello.service?alt=json');
    expect(again.status).toBe(404);
  });

  it('decodes a percent-escaped name as Go did', async () => {
    await cluster.seed([{ name: 'app@1.service' }]);
    const r = await api.req('GET', '/fleet/v1/units/app%401.service?alt=json');
    expect(r.status).toBe(200);
    expect((r.json as { name: string }).name).toBe('app@1.service');
  });
});

describe('GET /fleet/v1/units', () => {
  const names = ['a.service', 'b.service', 'c.service', 'd.service', 'e.service'];

  it('is {} for no units', async () => {
    const r = await api.req('GET', '/fleet/v1/units?alt=json');
    expect(r.status).toBe(200);
    expect(r.text).toBe('{}');
  });

  it('pages by token_limit with nextPageToken until the last page, as fleetctl loops', async () => {
    const small = await serve(cluster.api, 2);
    try {
      await cluster.seed(names.map((name) => ({ name })));
      const seen: string[][] = [];
      let url = '/fleet/v1/units?alt=json';
      for (let i = 0; i < 10; i++) {
        const r = await small.req('GET', url);
        expect(r.status).toBe(200);
        const page = r.json as { units: { name: string }[]; nextPageToken?: string };
        seen.push(page.units.map((u) => u.name));
        if (!page.nextPageToken) break;
        // The token comes first in a UnitPage, as fleet's struct put it.
        expect(r.text.startsWith('{"nextPageToken":')).toBe(true);
        url = `/fleet/v1/units?alt=json&nextPageToken=${encodeURIComponent(page.nextPageToken)}`;
      }
      expect(seen).toEqual([['a.service', 'b.service'], ['c.service', 'd.service'], ['e.service']]);
    } finally {
      await small.close();
    }
  });

  it('refuses a token it did not issue, one of another page size, and two tokens', async () => {
    await cluster.seed(names.map((name) => ({ name })));
    const small = await serve(cluster.api, 2);
    try {
      const first = (await small.req('GET', '/fleet/v1/units')).json as { nextPageToken: string };
      const other = await api.req('GET', `/fleet/v1/units?nextPageToken=${first.nextPageToken}`);
      expect(other.status).toBe(400);
      expect(other.json).toEqual({
        error: { code: 400, message: 'invalid value of nextPageToken: token limit must be 100' },
      });
      const junk = await api.req('GET', '/fleet/v1/units?nextPageToken=8fefec2c');
      expect(junk.status).toBe(400);
      const two = await small.req(
        'GET',
        `/fleet/v1/units?nextPageToken=${first.nextPageToken}&nextPageToken=${first.nextPageToken}`,
      );
      expect(two.status).toBe(400);
      expect((two.json as { error: { message: string } }).error.message).toContain(
        'too many values for page token',
      );
    } finally {
      await small.close();
    }
  });
});

describe('failures of the cluster', () => {
  it.each([
    [
      new FlotillaError(ErrorCode.NoLeader, 'no leader is elected right now', { retryable: true }),
      503,
    ],
    [new FlotillaError(ErrorCode.StoreUnavailable, 'the store is unreachable'), 503],
    [new FlotillaError(ErrorCode.Timeout, 'timed out'), 504],
  ])('answers %s with %i and the message', async (err, status) => {
    cluster.api.failNext('listUnits', err);
    const r = await api.req('GET', '/fleet/v1/units?alt=json');
    expect(r.status).toBe(status);
    expect(r.json).toEqual({ error: { code: status, message: err.message } });
    expect(r.headers['x-flotilla-error-code']).toBe(err.code);
    if (status === 503) expect(r.headers['retry-after']).toBe('1');
  });

  it('answers a non-Flotilla error with 500', async () => {
    cluster.api.failNext('getUnit', new Error('boom'));
    const r = await api.req('GET', '/fleet/v1/units/a.service');
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { code: 500, message: 'internal error: boom' } });
  });
});
