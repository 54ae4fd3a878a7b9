/**
 * The cluster API's contract (ClusterApi, src/api/types.ts) as one shared jest suite, run
 * against the real engine: in-process (test/unit/api/cluster-api.test.ts) and through the gRPC
 * server and client (test/integration/cluster-api-grpc.test.ts). A behaviour clients rely on is
 * asserted here once, against what answers requests in production, so no fake can drift from it.
 * A fixture could as well hand over a client of a running daemon.
 */
import type { ClusterApi } from '../src/api/types';
import { ErrorCode } from '../src/errors';
import { UnitView, type Event, type UnitOption } from '../src/gen/flotilla/v1/flotilla';

/** What one run of the suite works on: a cluster with live machines and no units. */
export interface ClusterApiTarget {
  api: ClusterApi;
  /** The live machines, as their agents announce them. */
  machines: readonly { id: string; ip: string; metadata: Record<string, string> }[];
  leader: { machineId: string; address: string };
  /** Appends a line to a unit's journal on its machines (absent: journal cases are not run). */
  appendJournal?(unit: string, line: string): void;
  close(): Promise<void>;
}

export type ClusterApiFixture = () => Promise<ClusterApiTarget>;

const service = (cmd = '/bin/sleep 1000', extra: UnitOption[] = []): UnitOption[] => [
  { section: 'Unit', name: 'Description', value: `runs ${cmd}` },
  { section: 'Service', name: 'ExecStart', value: cmd },
  ...extra,
];
const GLOBAL: UnitOption = { section: 'X-Fleet', name: 'Global', value: 'true' };

/** Polls `cond` through the API (a bound so a broken case fails instead of hanging). */
async function until(cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Collects a stream's items until `done` says so, then aborts it and waits for its end. */
async function collect<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  done: (items: T[]) => boolean,
): Promise<T[]> {
  const ac = new AbortController();
  const items: T[] = [];
  const reading = (async () => {
    for await (const x of open(ac.signal)) {
      items.push(x);
      if (done(items)) ac.abort();
    }
  })();
  await reading;
  return items;
}

export function describeClusterApiContract(name: string, fixture: ClusterApiFixture): void {
  describe(`ClusterApi contract: ${name}`, () => {
    let t: ClusterApiTarget;
    let api: ClusterApi;
    beforeEach(async () => {
      t = await fixture();
      api = t.api;
    });
    afterEach(async () => {
      await t.close();
    });

    const create = (names: string[], targetState = '', options = service()) =>
      api.createUnits({
        units: names.map((n) => ({ name: n, options, targetState })),
        replace: false,
      });

    /** Waits until every named unit reports `state` on its machine(s). */
    const running = (names: string[], active = 'active') =>
      until(
        async () => {
          const { states } = await api.listUnitStates({ pageSize: 0, pageToken: '' });
          return names.every((n) => states.some((s) => s.name === n && s.activeState === active));
        },
        `${names.join(' ')} ${active}`,
      );

    test('listMachines: every live machine, sorted by ID, with its IP and metadata', async () => {
      const { machines } = await api.listMachines({});
      expect(machines).toEqual(
        [...t.machines]
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .map((m) => ({ id: m.id, ip: m.ip, metadata: m.metadata, state: 'alive' })),
      );
    });

    test('createUnits: created, then unchanged, differs, and replaced with replace', async () => {
      const first = await create(['a.service', 'b.service']);
      expect(first.results).toEqual([
        { name: 'a.service', outcome: 'created' },
        { name: 'b.service', outcome: 'created' },
      ]);
      expect(first.index).toBeGreaterThan(0);
      const same = await create(['a.service']);
      expect(same.results).toEqual([{ name: 'a.service', outcome: 'unchanged' }]);
      expect(same.index).toBe(first.index);
      const other = service('/bin/sleep 2000');
      expect((await create(['a.service'], '', other)).results).toEqual([
        { name: 'a.service', outcome: 'differs' },
      ]);
      const before = await api.getUnit({ name: 'a.service' });
      const replaced = await api.createUnits({
        units: [{ name: 'a.service', options: other, targetState: '' }],
        replace: true,
      });
      expect(replaced.results).toEqual([{ name: 'a.service', outcome: 'replaced' }]);
      expect(replaced.index).toBeGreaterThan(first.index);
      const after = await api.getUnit({ name: 'a.service' });
      expect(after.hash).not.toBe(before.hash);
      expect(after).toMatchObject({
        name: 'a.service',
        options: other,
        targetState: 'inactive',
        description: 'runs /bin/sleep 2000',
        global: false,
      });
    });

    test('createUnits refuses a bad request whole, with a stable code', async () => {
      const refused = async (units: { name: string; targetState: string }[], code: ErrorCode) => {
        const req = { units: units.map((u) => ({ ...u, options: service() })), replace: false };
        await expect(api.createUnits(req)).rejects.toMatchObject({ code });
      };
      await refused([{ name: 'bad name', targetState: '' }], ErrorCode.UnitNameInvalid);
      await refused(
        [
          { name: 'ok.service', targetState: '' },
          { name: 'ok.service', targetState: '' },
        ],
        ErrorCode.InvalidArgument,
      );
      await refused([{ name: 'ok.service', targetState: 'running' }], ErrorCode.InvalidArgument);
      await refused([{ name: 'web@.service', targetState: 'launched' }], ErrorCode.InvalidState);
      expect((await api.listUnits({ pageSize: 0, pageToken: '', view: 0 })).units).toEqual([]);
      // A template may exist; only activating it is refused.
      expect((await create(['web@.service'])).results[0].outcome).toBe('created');
      await expect(
        api.setTargetStates({ names: ['web@.service'], targetState: 'loaded' }),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidState });
    });

    test('setTargetStates: unknown units are refused by name; launched units run on a machine', async () => {
      await create(['a.service']);
      await expect(
        api.setTargetStates({ names: ['a.service', 'nope.service'], targetState: 'launched' }),
      ).rejects.toMatchObject({ code: ErrorCode.UnitNotFound, details: { unit: 'nope.service' } });
      expect((await api.getUnit({ name: 'a.service' })).targetState).toBe('inactive');
      await expect(
        api.setTargetStates({ names: ['a.service'], targetState: 'started' }),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });

      const { index } = await api.setTargetStates({
        names: ['a.service'],
        targetState: 'launched',
      });
      expect(index).toBeGreaterThan(0);
      await running(['a.service']);
      const unit = await api.getUnit({ name: 'a.service' });
      expect(unit.targetState).toBe('launched');
      expect(t.machines.map((m) => m.id)).toContain(unit.targetMachine);
      const { states } = await api.listUnitStates({ pageSize: 0, pageToken: '' });
      expect(states).toEqual([
        {
          name: 'a.service',
          machineId: unit.targetMachine,
          machineIp: t.machines.find((m) => m.id === unit.targetMachine)!.ip,
          loadState: 'loaded',
          activeState: 'active',
          subState: 'running',
          hash: unit.hash,
          // Start ops its agent applied (a fake cluster has no agent: 0).
          starts: expect.any(Number),
        },
      ]);
      await api.setTargetStates({ names: ['a.service'], targetState: 'loaded' });
      await running(['a.service'], 'inactive');
    });

    test('a global unit runs on every machine', async () => {
      await create(['g.service'], 'launched', service('/bin/sleep 1000', [GLOBAL]));
      await until(async () => {
        const { states } = await api.listUnitStates({ pageSize: 0, pageToken: '' });
        return states.filter((s) => s.activeState === 'active').length === t.machines.length;
      }, 'global unit on every machine');
      const unit = await api.getUnit({ name: 'g.service' });
      expect(unit).toMatchObject({ global: true, targetMachine: '' });
    });

    test('destroyUnits: destroys the named units that exist and says which', async () => {
      await create(['a.service', 'b.service']);
      const r = await api.destroyUnits({ names: ['a.service', 'nope.service', 'a.service'] });
      expect(r.destroyed).toEqual(['a.service']);
      await expect(api.getUnit({ name: 'a.service' })).rejects.toMatchObject({
        code: ErrorCode.UnitNotFound,
        details: { unit: 'a.service' },
      });
      expect((await api.destroyUnits({ names: ['a.service'] })).destroyed).toEqual([]);
      expect((await api.getUnit({ name: 'b.service' })).name).toBe('b.service');
    });

    test('listUnits: sorted pages with a token; the basic view has no options', async () => {
      const names = ['e', 'a', 'd', 'c', 'b'].map((n) => `${n}.service`);
      await create(names);
      const seen: string[] = [];
      let token = '';
      let pages = 0;
      do {
        const page = await api.listUnits({ pageSize: 2, pageToken: token, view: 0 });
        expect(page.units.length).toBeLessThanOrEqual(2);
        for (const u of page.units) expect(u.options).toEqual(service());
        seen.push(...page.units.map((u) => u.name));
        token = page.nextPageToken;
        pages++;
      } while (token !== '');
      expect(seen).toEqual([...names].sort());
      expect(pages).toBe(3);
      const basic = await api.listUnits({
        pageSize: 0,
        pageToken: '',
        view: UnitView.UNIT_VIEW_BASIC,
      });
      expect(basic.units.map((u) => [u.name, u.options])).toEqual(
        [...names].sort().map((n) => [n, []]),
      );
      await expect(
        api.listUnits({ pageSize: 2, pageToken: 'not-a-token', view: 0 }),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    });

    test('listUnitStates: one row per unit and machine, in pages', async () => {
      await create(['g.service'], 'launched', service('/bin/sleep 1000', [GLOBAL]));
      await create(['a.service'], 'launched');
      await until(async () => {
        const { states } = await api.listUnitStates({ pageSize: 0, pageToken: '' });
        return states.filter((s) => s.activeState === 'active').length === t.machines.length + 1;
      }, 'every unit running');
      const rows: string[] = [];
      let token = '';
      do {
        const page = await api.listUnitStates({ pageSize: 2, pageToken: token });
        rows.push(...page.states.map((s) => `${s.name} ${s.machineId}`));
        token = page.nextPageToken;
      } while (token !== '');
      expect(rows).toHaveLength(t.machines.length + 1);
      expect(rows).toEqual([...rows].sort());
      expect(new Set(rows).size).toBe(rows.length);
    });

    test('setMachineMetadata: a known machine only; listMachines shows it', async () => {
      const m = t.machines[t.machines.length - 1];
      await expect(
        api.setMachineMetadata({ machineId: 'f'.repeat(32), metadata: { a: 'b' } }),
      ).rejects.toMatchObject({ code: ErrorCode.MachineNotFound });
      await expect(
        api.setMachineMetadata({ machineId: m.id, metadata: { 'bad key': 'x' } }),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
      const { index } = await api.setMachineMetadata({
        machineId: m.id,
        metadata: { rack: 'r7' },
      });
      expect(index).toBeGreaterThan(0);
      const listed = (await api.listMachines({})).machines.find((x) => x.id === m.id);
      expect(listed?.metadata).toMatchObject({ rack: 'r7' });
    });

    test('setMachineMetadata with patch: per-key changes; an empty value hides the agent key until set again', async () => {
      const m = t.machines.find((x) => Object.keys(x.metadata).length > 0) ?? t.machines[0];
      const own = Object.keys(m.metadata).sort();
      const listed = async () =>
        (await api.listMachines({})).machines.find((x) => x.id === m.id)?.metadata;
      await api.setMachineMetadata({ machineId: m.id, metadata: { rack: 'r1' }, patch: true });
      await api.setMachineMetadata({ machineId: m.id, metadata: { row: '7' }, patch: true });
      // Each patch changes only the keys it names: rack stays, the agent's keys too.
      expect(await listed()).toEqual({ ...m.metadata, rack: 'r1', row: '7' });
      if (own.length > 0) {
        await api.setMachineMetadata({ machineId: m.id, metadata: { [own[0]]: '' }, patch: true });
        const hidden = await listed();
        expect(hidden).not.toHaveProperty(own[0]);
        expect(hidden).toMatchObject({ rack: 'r1', row: '7' });
        await api.setMachineMetadata({
          machineId: m.id,
          metadata: { [own[0]]: 'back' },
          patch: true,
        });
        expect((await listed())?.[own[0]]).toBe('back');
      }
      // Removing an API key forgets it; an invalid key is refused before anything is written.
      await api.setMachineMetadata({ machineId: m.id, metadata: { row: '' }, patch: true });
      expect(await listed()).not.toHaveProperty('row');
      await expect(
        api.setMachineMetadata({ machineId: m.id, metadata: { 'bad key': '' }, patch: true }),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    });

    test('getClusterStatus: the leader, its epoch, the log index of the last write, counts', async () => {
      const { index } = await create(['a.service', 'b.service']);
      const s = await api.getClusterStatus({ resumeRescheduling: false });
      expect(s).toMatchObject({
        leaderMachineId: t.leader.machineId,
        leaderAddress: t.leader.address,
        units: 2,
        machines: t.machines.length,
      });
      expect(s.epoch).toBeGreaterThanOrEqual(1);
      expect(s.logIndex).toBeGreaterThanOrEqual(index);
      expect(s.reschedulingHeld ?? '').toBe('');
      const resumed = await api.getClusterStatus({ resumeRescheduling: true });
      expect(resumed.resumed).toBe(false);
    });

    test('watch: replays from an index, then follows, filtered by type; aborting ends it', async () => {
      const { index } = await create(['a.service']);
      const events = collect<Event>(
        (signal) =>
          api.watch({ fromIndex: index, types: ['UnitSubmitted', 'UnitDestroyed'] }, signal),
        (items) => items.some((e) => e.type === 'UnitDestroyed'),
      );
      await api.setTargetStates({ names: ['a.service'], targetState: 'loaded' });
      await api.destroyUnits({ names: ['a.service'] });
      const got = await events;
      expect(got.map((e) => `${e.type} ${e.unit}`)).toEqual([
        'UnitSubmitted a.service',
        'UnitDestroyed a.service',
      ]);
      expect(got[0].index).toBe(index);
      expect(got[1].index).toBeGreaterThan(index);
      expect(JSON.parse(got[1].json)).toMatchObject({ type: 'UnitDestroyed', unit: 'a.service' });
      await expect(
        collect(
          (signal) => api.watch({ fromIndex: 0, types: ['NoSuchEvent'] }, signal),
          () => true,
        ),
      ).rejects.toMatchObject({ code: ErrorCode.InvalidArgument });
    });

    test('watch from index 0: only events committed after it started', async () => {
      await create(['old.service']);
      const events = collect<Event>(
        (signal) => api.watch({ fromIndex: 0, types: ['UnitSubmitted'] }, signal),
        (items) => items.length > 0,
      );
      // The watch may not have reached the server yet: write until it sees one.
      let n = 0;
      const writing = (async () => {
        while (n < 100) {
          await create([`new${n++}.service`]);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const got = await events;
      n = 100;
      await writing;
      expect(got[0].unit).toMatch(/^new\d+\.service$/);
    });

    test('unitStatus asks the agent of the unit; refuses units with no machine', async () => {
      await create(['a.service'], 'launched');
      await running(['a.service']);
      const machine = (await api.getUnit({ name: 'a.service' })).targetMachine;
      const r = await api.unitStatus({ name: 'a.service', machineId: '' });
      expect(r.machineId).toBe(machine);
      expect(r.text).toContain('a.service - runs /bin/sleep 1000');
      expect(r.text).toMatch(/Active: active \(running\)/);
      await expect(api.unitStatus({ name: 'nope.service', machineId: '' })).rejects.toMatchObject({
        code: ErrorCode.UnitNotFound,
      });
      await create(['idle.service']);
      await expect(api.unitStatus({ name: 'idle.service', machineId: '' })).rejects.toMatchObject({
        code: ErrorCode.InvalidState,
      });
      await expect(
        api.unitStatus({ name: 'a.service', machineId: 'f'.repeat(32) }),
      ).rejects.toMatchObject({ code: ErrorCode.MachineNotFound });
    });

    test('unitJournal: the last lines, and with follow the new ones until aborted', async () => {
      if (!t.appendJournal) throw new Error('this fixture cannot write journals');
      await create(['a.service'], 'launched');
      await running(['a.service']);
      for (let i = 1; i <= 5; i++) t.appendJournal('a.service', `line ${i}`);
      const last = await collect(
        (signal) =>
          api.unitJournal({ name: 'a.service', machineId: '', lines: 2, follow: false }, signal),
        () => false,
      );
      expect(last.map((c) => c.text).join('')).toBe('line 4\nline 5');
      let text = '';
      const following = collect(
        (signal) =>
          api.unitJournal({ name: 'a.service', machineId: '', lines: 1, follow: true }, signal),
        (items) => {
          text = items.map((c) => c.text).join('');
          return text.includes('line 6');
        },
      );
      await until(async () => text.includes('line 5'), 'the last line');
      t.appendJournal('a.service', 'line 6');
      await following;
      expect(text).toBe('line 5\nline 6\n');
    });

    test('exportHistory: the durable history as one history file, in chunks', async () => {
      await create(['a.service', 'b.service'], 'launched');
      await running(['a.service', 'b.service']);
      const chunks = await collect(
        (signal) => api.exportHistory({}, signal),
        () => false,
      );
      expect(chunks.length).toBeGreaterThan(0);
      const lines = Buffer.concat(chunks.map((c) => Buffer.from(c.data)))
        .toString('utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const header = lines[0] as { format: string; events: number; last: number };
      expect(header).toMatchObject({ format: 'flotilla-history', version: 1 });
      const events = lines
        .filter((l) => 'event' in l)
        .map((l) => l.event as { type: string; unit?: string; index: number });
      expect(events).toHaveLength(header.events);
      expect(lines.at(-1)).toEqual({ end: { events: header.events } });
      // Durable events only: the submissions and what the agents observed, not their reports.
      expect(events.filter((e) => e.type === 'UnitSubmitted').map((e) => e.unit)).toEqual([
        'a.service',
        'b.service',
      ]);
      expect(events.some((e) => e.type === 'UnitStateReported')).toBe(false);
      const status = await api.getClusterStatus({});
      expect(header.last).toBeLessThanOrEqual(status.logIndex);
    });
  });
}
