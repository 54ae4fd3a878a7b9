import { expandSystemdSpecifiers, unescapeUnitName } from '../../../src/drivers/specifiers';
import { serviceSpec } from '../../../src/drivers/unit-file';
import { ErrorCode } from '../../../src/errors';

const host = {
  hostname: 'node1.example.com',
  machineId: '0123456789abcdef0123456789abcdef',
  bootId: 'b00t',
  user: 'core',
  uid: 500,
  home: '/home/core',
  shell: '/bin/bash',
  runtimeDir: '/run/user/500',
};

describe("systemd's specifiers in the process driver", () => {
  it.each([
    ['%n', 'web@3.service', 'web@3.service'],
    ['%N', 'web@3.service', 'web@3'],
    ['%p', 'web@3.service', 'web'],
    ['%i', 'web@3.service', '3'],
    ['%I', 'mnt@var-lib\\x2dx.service', 'var/lib-x'],
    ['%P', 'a-b.service', 'a/b'],
    ['%f', 'mnt@var-lib.service', '/var/lib'],
    ['%i', 'plain.service', ''],
    ['%p', 'plain.service', 'plain'],
    ['%H %l %m %b', 'a.service', 'node1.example.com node1 0123456789abcdef0123456789abcdef b00t'],
    [
      '%u %U %h %s %t %T %V',
      'a.service',
      'core 500 /home/core /bin/bash /run/user/500 /tmp /var/tmp',
    ],
    ['100%% %i%%', 'x@1.service', '100% 1%'],
    // One pass: an expansion is not expanded again.
    ['%i', 'x@%25n.service', '%25n'],
  ])('%s for %s is %j', (value, unit, want) => {
    expect(expandSystemdSpecifiers(value, unit, host)).toBe(want);
  });

  it('refuses an unknown specifier, naming the unit', () => {
    expect(() => expandSystemdSpecifiers('/bin/x %z', 'a.service', host)).toThrow(
      expect.objectContaining({
        code: ErrorCode.UnitFileInvalid,
        message: expect.stringContaining('a.service: unknown specifier "%z"'),
      }),
    );
  });

  it('expands ExecStart, Environment, WorkingDirectory and Description before $VAR', () => {
    const spec = serviceSpec(
      'web@3.service',
      '[Unit]\nDescription=Web %i\n[Service]\nEnvironment=PORT=80%i\nWorkingDirectory=%h\nExecStart=/bin/web --name %n --port $PORT\n',
      host,
    );
    expect(spec.description).toBe('Web 3');
    expect(spec.env).toEqual({ PORT: '803' });
    expect(spec.workingDirectory).toBe('/home/core');
    expect(spec.exec.args).toEqual(['--name', 'web@3.service', '--port', '803']);
  });

  it('unescapes unit names as systemd-escape does', () => {
    expect(unescapeUnitName('dev-disk-by\\x2dlabel')).toBe('dev/disk/by-label');
  });
});
