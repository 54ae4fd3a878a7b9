#!/usr/bin/env node
// `npm run faults:report -- [--write] FILE…`: reads the fault suite's output (jest's log, or the
// $FLOTILLA_FAULTS_RESULTS file), takes every `FAULT-RESULT {json}` line (test/faults/lib/result.ts)
// and prints the table of docs/reliability.md, one row per fault; with --write it replaces the
// table between the markers in docs/reliability.md. Reads stdin when no file is given.
const fs = require('node:fs');
const path = require('node:path');

const DOC = path.resolve(__dirname, '..', 'docs', 'reliability.md');
const BEGIN = '<!-- fault-suite:begin -->';
const END = '<!-- fault-suite:end -->';
// Rows in the order of issue 11's list (by the start of each fault's name); others after.
const ORDER = [
  'leader kill',
  'leader SIGSTOP',
  'etcd SIGSTOP',
  'etcd kill',
  'etcd 3 members',
  'NATS down',
  'NATS cluster',
  'agent cut off',
  'agent kill',
  'machine reboot',
];

function results(text) {
  const out = new Map();
  for (const m of text.matchAll(/FAULT-RESULT (\{.*\})\s*$/gm)) {
    let r;
    try {
      r = JSON.parse(m[1]);
    } catch {
      continue;
    }
    out.set(r.fault, r); // the last run of a fault wins
  }
  const rank = (r) => {
    const i = ORDER.findIndex((p) => r.fault.startsWith(p));
    return i < 0 ? ORDER.length : i;
  };
  return [...out.values()].sort((a, b) => rank(a) - rank(b));
}

const cell = (s) => String(s).replace(/\|/g, '\\|');
const secs = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'did not recover');

function table(rows) {
  const lines = [
    '| fault | what was done | what was checked | units restarted (expected) | acknowledged writes lost | time to recover |',
    '|---|---|---|---:|---:|---|',
  ];
  for (const r of rows) {
    const restarted =
      r.unitsExpectedToStart > 0
        ? `${r.unitsRestarted} (${r.unitsExpectedToStart} had to)`
        : `**${r.unitsRestarted}**`;
    lines.push(
      `| ${cell(r.fault)} | ${cell(r.done)} | ${cell(r.checked)} | ${restarted} | **${r.writesLost}** of ${r.writesAcked} | ${secs(r.recoverMs)}: ${cell(r.recovery)} |`,
    );
  }
  return lines.join('\n');
}

function main() {
  const args = process.argv.slice(2);
  const write = args.includes('--write');
  const files = args.filter((a) => !a.startsWith('--'));
  const text =
    files.length > 0
      ? files.map((f) => fs.readFileSync(f, 'utf8')).join('\n')
      : fs.readFileSync(0, 'utf8');
  const rows = results(text);
  if (rows.length === 0) {
    console.error(
      'no FAULT-RESULT lines found (run `npx jest --selectProjects faults` and pass its output)',
    );
    process.exit(1);
  }
  const out = table(rows);
  if (!write) {
    console.log(out);
    return;
  }
  const doc = fs.readFileSync(DOC, 'utf8');
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) {
    console.error(`${DOC}: markers ${BEGIN} … ${END} not found`);
    process.exit(1);
  }
  fs.writeFileSync(DOC, `${doc.slice(0, a + BEGIN.length)}\n${out}\n${doc.slice(b)}`);
  console.log(`${DOC}: ${rows.length} rows written`);
}

main();
