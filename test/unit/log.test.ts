import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, isJournalStream } from '../../src/log';

function capture(opts: Parameters<typeof createLogger>[0]): {
  lines: string[];
  log: ReturnType<typeof createLogger>;
} {
  const lines: string[] = [];
  return { lines, log: createLogger({ ...opts, write: (l) => lines.push(l) }) };
}

describe('createLogger', () => {
  it('writes text with its own timestamp, filtered by level, with child fields', () => {
    const { lines, log } = capture({ level: 'info', format: 'text', journal: false });
    log.debug('hidden');
    log.child({ component: 'engine' }).warn('slow commit', { ms: 12, note: 'two words' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN slow commit component=engine ms=12 note="two words"$/,
    );
  });

  it('under journald writes no timestamp, and a syslog priority journald reads', () => {
    const { lines, log } = capture({ level: 'debug', format: 'text', journal: true });
    log.error('lost', { epoch: 3 });
    log.info('ok');
    log.debug('d');
    expect(lines).toEqual(['<3>ERROR lost epoch=3', '<6>INFO ok', '<7>DEBUG d']);
  });

  it('writes one JSON object a line with log_format=json', () => {
    const { lines, log } = capture({ format: 'json' });
    log.child({ machine: 'ab' }).info('hello', { n: 1 });
    const rec = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'info', msg: 'hello', machine: 'ab', n: 1 });
    expect(typeof rec.time).toBe('string');
  });
});

describe('isJournalStream', () => {
  it('matches JOURNAL_STREAM against the device and inode of the descriptor', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-log-'));
    const fd = fs.openSync(path.join(dir, 'f'), 'w');
    try {
      const st = fs.fstatSync(fd);
      expect(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
      // Redirected elsewhere (another inode), or not under systemd at all.
      expect(isJournalStream({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }, fd)).toBe(false);
      expect(isJournalStream({}, fd)).toBe(false);
      expect(isJournalStream({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
