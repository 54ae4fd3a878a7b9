/** The versions a figure was measured with: Flotilla's commit and the servers' versions. */
import { execFileSync } from 'node:child_process';

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

export function versionsLine(): string {
  const commit = run('git', ['rev-parse', '--short', 'HEAD']).trim() || 'unknown';
  const dirty = run('git', ['status', '--porcelain', '--untracked-files=no', 'src']).trim() !== '';
  const etcd = /etcd Version: (\S+)/.exec(run('etcd', ['--version']))?.[1] ?? '?';
  const nats = /v(\d+\.\d+\.\d+)/.exec(run('nats-server', ['--version']))?.[1] ?? '?';
  const systemd = /systemd (\d+)/.exec(run('systemctl', ['--version']))?.[1] ?? '?';
  return (
    `Flotilla ${commit}${dirty ? ' (with uncommitted changes in src/)' : ''}, etcd ${etcd}, ` +
    `nats-server ${nats}, systemd ${systemd}.`
  );
}
