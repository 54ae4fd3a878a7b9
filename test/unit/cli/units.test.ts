import path from 'node:path';
import { CliError } from '../../../src/cli/errors';
import {
  isTemplateName,
  resolveUnits,
  templateNameOf,
  templatesNeeded,
  unitNameOf,
  uniqueNames,
  withDefaultType,
} from '../../../src/cli/units';
import type { CreatingCommand, LocalUnitReader, ResolveInput } from '../../../src/cli/units';
import type { Unit } from '../../../src/gen/flotilla/v1/flotilla';
import { parseUnitFileNamed, unitHash } from '../../../src/unit';

const HELLO = '[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/sleep 1000\n';
const HELLO2 = '[Unit]\nDescription=Hello again\n\n[Service]\nExecStart=/bin/sleep 2000\n';
const WEB = '[Unit]\nDescription=Web %i\n\n[Service]\nExecStart=/bin/web %i\n';

/** A LocalUnitReader over an in-memory directory tree (paths relative to the cwd). */
function files(tree: Record<string, string>): LocalUnitReader {
  return (file) => {
    const text = tree[path.normalize(file)];
    return text === undefined ? undefined : parseUnitFileNamed(file, text);
  };
}

function unit(name: string, text: string, targetState = 'inactive'): Unit {
  const options = parseUnitFileNamed(name, text);
  return {
    name,
    options,
    hash: unitHash(options),
    targetState,
    targetMachine: '',
    global: false,
    description: '',
    currentState: targetState,
    phase: '',
    reason: '',
    lastFailure: undefined,
  };
}

function resolve(
  args: string[],
  opts: {
    tree?: Record<string, string>;
    cluster?: Unit[];
    replace?: boolean;
    command?: CreatingCommand;
  } = {},
) {
  const input: ResolveInput = {
    args,
    command: opts.command ?? 'submit',
    replace: opts.replace ?? false,
    cluster: new Map((opts.cluster ?? []).map((u) => [u.name, u])),
    read: files(opts.tree ?? {}),
  };
  return resolveUnits(input);
}

function resolveError(args: string[], opts: Parameters<typeof resolve>[1] = {}): string {
  try {
    resolve(args, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('unit names from arguments (fleetctl unitNameMangle)', () => {
  test.each([
    ['foo', 'foo.service'],
    ['foo.service', 'foo.service'],
    ['units/foo', 'foo.service'],
    ['./units/foo.socket', 'foo.socket'],
    ['/abs/dir/bar.timer', 'bar.timer'],
    ['x.path', 'x.path'],
    ['x.device', 'x.device'],
    ['x.mount', 'x.mount'],
    ['x.automount', 'x.automount'],
    ['x.target', 'x.target.service'], // not a type fleetctl recognised in arguments
    ['web@1', 'web@1.service'],
    ['web@', 'web@.service'],
  ])('%s → %s', (arg, name) => {
    expect(unitNameOf(arg)).toBe(name);
  });

  test('the argument path keeps its directory when .service is appended', () => {
    expect(withDefaultType('units/foo')).toBe('units/foo.service');
    expect(withDefaultType('units/foo.socket')).toBe('units/foo.socket');
  });

  test('templates and instances', () => {
    expect(isTemplateName('web@.service')).toBe(true);
    expect(isTemplateName('web@1.service')).toBe(false);
    expect(isTemplateName('web.service')).toBe(false);
    expect(templateNameOf('web@1.service')).toBe('web@.service');
    expect(templateNameOf('web@.service')).toBeUndefined();
    expect(templateNameOf('web.service')).toBeUndefined();
  });

  test('duplicates collapse in first-seen order', () => {
    expect(uniqueNames(['b', 'a.service', 'units/b.service', 'a'])).toEqual([
      'b.service',
      'a.service',
    ]);
  });
});

describe('resolving submit/load/start arguments', () => {
  test('a local file not in the cluster is created with its parsed options', () => {
    const plan = resolve(['hello'], { tree: { 'hello.service': HELLO } });
    expect(plan.names).toEqual(['hello.service']);
    expect(plan.create).toHaveLength(1);
    expect(plan.create[0].name).toBe('hello.service');
    expect(plan.create[0].options).toEqual(parseUnitFileNamed('x', HELLO));
    expect(plan.replace).toEqual([]);
    expect(plan.stderr).toEqual([]);
  });

  test('a file in a directory is read from there; the unit is named by its base name', () => {
    const plan = resolve(['units/hello.service'], { tree: { 'units/hello.service': HELLO } });
    expect(plan.create.map((c) => c.name)).toEqual(['hello.service']);
  });

  test('a unit already in the cluster with the same content: nothing to do, no output', () => {
    const plan = resolve(['hello'], {
      tree: { 'hello.service': '# a comment\n' + HELLO + '\n\n' },
      cluster: [unit('hello.service', HELLO)],
    });
    expect(plan.create).toEqual([]);
    expect(plan.replace).toEqual([]);
    expect(plan.stdout).toEqual([]);
    expect(plan.stderr).toEqual([]);
  });

  test('same content with --replace says so on stdout (fleetctl)', () => {
    const plan = resolve(['hello'], {
      tree: { 'hello.service': HELLO },
      cluster: [unit('hello.service', HELLO)],
      replace: true,
    });
    expect(plan.stdout).toEqual(['Found same Unit(hello.service) in Registry, nothing to do']);
  });

  test('different content: the WARNING, and the cluster copy is kept', () => {
    const plan = resolve(['hello.service'], {
      tree: { 'hello.service': HELLO2 },
      cluster: [unit('hello.service', HELLO)],
    });
    expect(plan.stderr).toEqual([
      'WARNING: Unit hello.service in registry differs from local unit file hello.service. Add --replace to override.',
    ]);
    expect(plan.create).toEqual([]);
    expect(plan.replace).toEqual([]);
  });

  test.each<[CreatingCommand, string, boolean]>([
    ['submit', 'inactive', true],
    ['submit', 'loaded', false],
    ['submit', 'launched', false],
    ['load', 'inactive', true],
    ['load', 'loaded', true],
    ['load', 'launched', false],
    ['start', 'inactive', true],
    ['start', 'loaded', true],
    ['start', 'launched', true],
  ])('--replace with %s from target state %s: allowed=%p', (command, state, allowed) => {
    const plan = resolve(['hello'], {
      tree: { 'hello.service': HELLO2 },
      cluster: [unit('hello.service', HELLO, state)],
      replace: true,
      command,
    });
    if (allowed) {
      expect(plan.replace.map((r) => r.name)).toEqual(['hello.service']);
      expect(plan.stderr).toEqual([]);
    } else {
      expect(plan.replace).toEqual([]);
      expect(plan.stderr).toEqual([
        `Warning: can not replace Unit(hello.service) in state '${state}', use the appropriate command`,
      ]);
    }
  });

  test('an instance with no file uses the template from the cluster first', () => {
    const tmpl = unit('web@.service', WEB);
    const plan = resolve(['web@1'], {
      tree: { 'web@.service': WEB.replace('/bin/web', '/bin/other') },
      cluster: [tmpl],
    });
    expect(plan.create).toEqual([
      { name: 'web@1.service', options: tmpl.options, targetState: '' },
    ]);
    expect(plan.stderr).toEqual([
      'WARNING: Unit web@.service in registry differs from local template unit file web@.service. Add --replace to override.',
    ]);
  });

  test('…else the template file in the same directory as the argument', () => {
    const plan = resolve(['units/web@2.service', 'web@3'], {
      tree: { 'units/web@.service': WEB, 'web@.service': WEB },
    });
    expect(plan.create.map((c) => c.name)).toEqual(['web@2.service', 'web@3.service']);
    expect(plan.create[0].options).toEqual(parseUnitFileNamed('x', WEB));
  });

  test('an instance with its own file uses that file', () => {
    const plan = resolve(['web@1'], { tree: { 'web@1.service': HELLO, 'web@.service': WEB } });
    expect(plan.create[0].options).toEqual(parseUnitFileNamed('x', HELLO));
  });

  test('templatesNeeded lists only templates that must come from the cluster', () => {
    const cluster = new Map([['web@9.service', unit('web@9.service', WEB)]]);
    const exists = (f: string): boolean => f === 'web@1.service';
    expect(
      templatesNeeded(['web@1', 'web@2', 'db@1', 'web@9', 'plain', 'web@3'], cluster, exists),
    ).toEqual(['web@.service', 'db@.service']);
  });

  test('errors, in fleetctl words', () => {
    expect(resolveError(['missing'])).toBe(
      'unable to find Unit(missing.service) in Registry or on filesystem',
    );
    expect(resolveError(['web@1'])).toBe(
      'failed getting Unit(web@1.service) from template: unable to find template Unit(web@.service) in Registry or on filesystem',
    );
    expect(
      resolveError(['broken.service'], {
        tree: { 'broken.service': '[Unit]\nDescription=x\nnonsense\n' },
      }),
    ).toMatch(/^failed getting Unit\(broken\.service\) from file: broken\.service:3: /);
    expect(resolveError(['web@1'], { tree: { 'web@.service': '[Unit\n' } })).toMatch(
      /^failed getting Unit\(web@1\.service\) from template: unable to load template Unit\(web@\.service\) from file: web@\.service:1: /,
    );
  });

  test('repeated arguments are resolved once', () => {
    const plan = resolve(['hello', 'hello.service', './hello'], {
      tree: { 'hello.service': HELLO },
    });
    expect(plan.names).toEqual(['hello.service']);
    expect(plan.create).toHaveLength(1);
  });
});
