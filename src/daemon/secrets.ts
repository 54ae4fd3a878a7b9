import fs from 'node:fs';
import { ErrorCode, FlotillaError } from '../errors';
import type { DaemonConfig } from './config';
import { parseConfigFile } from './config';

/** Settings that hold a secret themselves (better kept in a file of their own). */
const INLINE_SECRETS = ['etcd_password', 'nats_password'] as const;
/** Settings naming a file that holds a secret. */
const SECRET_FILES = [
  'etcd_password_file',
  'nats_password_file',
  'nats_nkey_seed_file',
  'nats_creds_file',
  'grpc_tls_key',
  'etcd_keyfile',
  'nats_keyfile',
] as const;

/**
 * A secret kept in a file (a password, an NKey seed): its text without the trailing newline.
 * CONFIG_INVALID naming the setting when it cannot be read or is empty.
 */
export function readSecretFile(file: string, key: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `${key}: cannot read ${file}: ${(err as Error).message}`,
      { cause: err, details: { field: key, file } },
    );
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '')
    throw new FlotillaError(ErrorCode.ConfigInvalid, `${key}: ${file} is empty`, {
      details: { field: key, file },
    });
  return secret;
}

/** "mode 0644" when group or others may read the file, else undefined. */
function readableByOthers(file: string): string | undefined {
  try {
    const mode = fs.statSync(file).mode & 0o777;
    return mode & 0o044 ? `mode 0${mode.toString(8)}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What to warn about at start: a secret on the command line (every user sees it in `ps`), a
 * config file holding a secret that others can read, a secret file others can read.
 */
export function secretWarnings(cfg: DaemonConfig, argv: string[], file?: string): string[] {
  const out: string[] = [];
  for (const key of INLINE_SECRETS) {
    const flag = `--${key.replace(/_/g, '-')}`;
    if (argv.some((a) => a === flag || a.startsWith(`${flag}=`)))
      out.push(
        `${key} is given on the command line, where every local user can read it (ps); use ${key}_file`,
      );
  }
  if (file) {
    let inFile: string[] = [];
    try {
      inFile = parseConfigFile(fs.readFileSync(file, 'utf8'), file)
        .map(([k]) => k)
        .filter((k) => (INLINE_SECRETS as readonly string[]).includes(k));
    } catch {
      // loadConfig has read it already; nothing more to say here.
    }
    const mode = inFile.length > 0 ? readableByOthers(file) : undefined;
    if (mode)
      out.push(
        `${file} holds ${inFile.join(', ')} and other users can read it (${mode}); chmod 600 it or use ${inFile[0]}_file`,
      );
  }
  for (const key of SECRET_FILES) {
    const f = cfg[key];
    const mode = f ? readableByOthers(f) : undefined;
    if (mode) out.push(`${key} ${f} is readable by other users (${mode}); chmod 600 it`);
  }
  return out;
}
