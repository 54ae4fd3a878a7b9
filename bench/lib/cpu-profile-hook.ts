/**
 * Preloaded with `NODE_OPTIONS=--require …/cpu-profile-hook.js` (Node refuses `--cpu-prof` in
 * NODE_OPTIONS): profiles the whole process with the inspector and writes
 * `<FLOTILLA_BENCH_CPU_PROF>/<name>-<pid>.cpuprofile` when it exits (not on SIGKILL).
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.FLOTILLA_BENCH_CPU_PROF;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  const name = path.basename(process.argv[1] ?? 'node', '.js');
  process.on('exit', () => {
    // The in-process session answers synchronously, so this completes inside 'exit'.
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(
        path.join(dir, `${name}-${process.pid}.cpuprofile`),
        JSON.stringify(res.profile),
      );
    });
  });
}
