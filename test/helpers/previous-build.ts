import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './cli';

/**
 * The commit the rolling-upgrade test runs beside the current code: the previous release, or
 * while there is none the main branch's head when the deployment work began. Override with
 * FLOTILLA_UPGRADE_FROM=<commit>. Move it forward at each release.
 */
export const PREVIOUS_COMMIT =
  process.env.FLOTILLA_UPGRADE_FROM ?? 'df4037100959f42599c34a35fab9fce313268054';

/**
 * Builds `commit` of this repository into a temp directory (cached there by commit) and returns
 * the path of its flotillad. Reads the repository only (`git archive`), links this checkout's
 * node_modules (the old lockfile's packages are a subset here), and runs the old build's
 * proto generation and tsc.
 */
export function buildPrevious(commit = PREVIOUS_COMMIT): string {
  const full = execFileSync('git', ['rev-parse', `${commit}^{commit}`], { cwd: REPO_ROOT })
    .toString()
    .trim();
  const dir = path.join(os.tmpdir(), `flotilla-prev-${full.slice(0, 12)}`);
  const daemon = path.join(dir, 'dist', 'src', 'daemon', 'main.js');
  if (fs.existsSync(path.join(dir, '.built'))) return daemon;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tar = path.join(dir, 'src.tar');
  execFileSync('git', ['archive', '--format=tar', '-o', tar, full], { cwd: REPO_ROOT });
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  fs.rmSync(tar);
  fs.symlinkSync(
    fs.realpathSync(path.join(REPO_ROOT, 'node_modules')),
    path.join(dir, 'node_modules'),
  );
  execFileSync(process.execPath, ['scripts/gen-proto.js'], { cwd: dir, stdio: 'ignore' });
  execFileSync(
    process.execPath,
    [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    {
      cwd: dir,
      stdio: 'ignore',
    },
  );
  fs.writeFileSync(path.join(dir, '.built'), `${full}\n`);
  return daemon;
}
