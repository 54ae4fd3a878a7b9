import { PROPERTIES_IFACE, UNIT_IFACE } from '../../../src/drivers/systemd/bus';
import { UnitTracker } from '../../../src/drivers/systemd/tracker';
import type { DriverUnitState } from '../../../src/drivers/driver';

const SERVICE_IFACE = 'org.freedesktop.systemd1.Service';

function changed(path: string, iface: string, props: Record<string, unknown>) {
  const body = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, { value: v }]));
  return { path, iface: PROPERTIES_IFACE, member: 'PropertiesChanged', body: [iface, body, []] };
}

function started(tracker: UnitTracker, unit: string, pid: number): void {
  const rec = tracker.get(unit)!;
  tracker.handle(changed(rec.path, SERVICE_IFACE, { MainPID: pid }));
  tracker.handle(changed(rec.path, UNIT_IFACE, { ActiveState: 'active', SubState: 'running' }));
}

describe('UnitTracker: replies and signals', () => {
  it('a reply read before a start does not undo the start its signals brought', () => {
    const tracker = new UnitTracker();
    const seen: DriverUnitState[] = [];
    tracker.listen((s) => seen.push(s));
    const rec = tracker.manage('hello.service', '[Service]\nExecStart=/bin/sleep 1000\n');
    const mark = tracker.mark(rec);
    // The start's signals are handled before the continuation of a reply sent earlier.
    started(tracker, 'hello.service', 4242);
    tracker.update(rec, { load: 'loaded', active: 'inactive', sub: 'dead' }, true, mark);
    expect(tracker.stateOf(rec)).toMatchObject({
      load: 'loaded',
      active: 'active',
      sub: 'running',
      mainPid: 4242,
    });
    expect(seen.at(-1)).toMatchObject({ active: 'active', mainPid: 4242 });
    expect(seen.some((s) => s.active === 'inactive' && s.mainPid === 4242)).toBe(false);
  });

  it('a start signalled in two steps (MainPID while still inactive) reports no PID until active', () => {
    // Seen from systemd 252 in CI: Service{MainPID} + Unit{inactive, dead}, then Unit{active}.
    const tracker = new UnitTracker();
    const seen: DriverUnitState[] = [];
    tracker.listen((s) => seen.push(s));
    const rec = tracker.manage('hello.service', '[Service]\nExecStart=/bin/sleep 1000\n');
    tracker.update(rec, { load: 'loaded', active: 'inactive', sub: 'dead' });
    tracker.handle(changed(rec.path, SERVICE_IFACE, { MainPID: 11032 }));
    tracker.handle(changed(rec.path, UNIT_IFACE, { ActiveState: 'inactive', SubState: 'dead' }));
    expect(seen).toHaveLength(1);
    expect(seen[0].mainPid).toBeUndefined();
    tracker.handle(changed(rec.path, UNIT_IFACE, { ActiveState: 'active', SubState: 'running' }));
    expect(seen).toHaveLength(2);
    expect(seen[1]).toMatchObject({ active: 'active', sub: 'running', mainPid: 11032 });
  });

  it('a reply with no signal since its call is taken whole', () => {
    const tracker = new UnitTracker();
    const rec = tracker.manage('hello.service', '[Service]\nExecStart=/bin/sleep 1000\n');
    started(tracker, 'hello.service', 4242);
    const mark = tracker.mark(rec);
    tracker.update(
      rec,
      { load: 'loaded', active: 'failed', sub: 'failed', mainPid: 0 },
      true,
      mark,
    );
    expect(tracker.stateOf(rec)).toMatchObject({ active: 'failed', sub: 'failed' });
    expect(tracker.stateOf(rec).mainPid).toBeUndefined();
  });

  it('the load state of a reply is always taken: systemd does not signal it', () => {
    const tracker = new UnitTracker();
    const rec = tracker.manage('bad.service', '[Service]\n');
    const mark = tracker.mark(rec);
    tracker.handle(changed(rec.path, UNIT_IFACE, { ActiveState: 'inactive', SubState: 'dead' }));
    tracker.update(rec, { load: 'bad-setting', active: 'inactive', sub: 'dead' }, true, mark);
    expect(tracker.stateOf(rec).load).toBe('bad-setting');
  });
});
