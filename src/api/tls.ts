import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ErrorCode, FlotillaError } from '../errors';

/** PEM files for a TLS endpoint; `what` names the setting in error messages (a flag or key). */
export interface TlsFiles {
  /** Certificate chain (PEM). */
  cert?: string;
  /** Private key of `cert` (PEM). */
  key?: string;
  /** CA bundle (PEM) to verify the other side with. */
  ca?: string;
}

/** A PEM file's bytes; CONFIG_INVALID naming the setting and the file when it cannot be read. */
export function readPem(path: string, what: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `${what}: cannot read ${path}: ${(err as Error).message}`,
      { cause: err, details: { field: what, file: path } },
    );
  }
}

/** CONFIG_INVALID naming the setting, its file and what is wrong with it, on one line. */
function badFile(what: string, file: string, problem: string, cause?: unknown): FlotillaError {
  const why = cause instanceof Error ? ` (${cause.message.replace(/^error:[0-9A-F]+:/i, '')})` : '';
  return new FlotillaError(ErrorCode.ConfigInvalid, `${what} ${file}: ${problem}${why}`, {
    cause,
    details: { field: what, file },
  });
}

/** The first certificate of a PEM file, checked here so that TLS errors name the file. */
function certOf(pem: Buffer, what: string, file: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw badFile(what, file, 'no PEM certificate in it (-----BEGIN CERTIFICATE-----)');
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw badFile(what, file, 'not a valid PEM certificate', err);
  }
}

function keyOf(pem: Buffer, what: string, file: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw badFile(what, file, 'not a valid PEM private key (or it is encrypted)', err);
  }
}

function pair(
  f: TlsFiles,
  names: { cert: string; key: string },
): { cert: Buffer; key: Buffer } | undefined {
  if (!f.cert && !f.key) return undefined;
  if (!f.cert || !f.key) {
    const missing = f.cert ? names.key : names.cert;
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `${missing} is required with ${f.cert ? names.cert : names.key}`,
      { details: { field: missing } },
    );
  }
  const cert = readPem(f.cert, names.cert);
  const key = readPem(f.key, names.key);
  const c = certOf(cert, names.cert, f.cert);
  if (!c.checkPrivateKey(keyOf(key, names.key, f.key)))
    throw new FlotillaError(
      ErrorCode.ConfigInvalid,
      `${names.key} ${f.key} is not the private key of ${names.cert} ${f.cert}`,
      { details: { field: names.key, file: f.key } },
    );
  return { cert, key };
}

/** A CA bundle, checked to hold at least one certificate. */
function caOf(file: string, what: string): Buffer {
  const pem = readPem(file, what);
  certOf(pem, what, file);
  return pem;
}

/**
 * gRPC server credentials: TLS with `cert`/`key`; with `ca` too, mutual TLS (every client must
 * present a certificate signed by it). Undefined when no certificate is configured.
 */
export function serverTls(
  f: TlsFiles,
  names = { cert: 'grpc_tls_cert', key: 'grpc_tls_key', ca: 'grpc_tls_ca' },
): ServerCredentials | undefined {
  const p = pair(f, names);
  if (!p) {
    if (f.ca)
      throw new FlotillaError(
        ErrorCode.ConfigInvalid,
        `${names.ca} needs ${names.cert} and ${names.key} (the server's own certificate)`,
        { details: { field: names.ca } },
      );
    return undefined;
  }
  const ca = f.ca ? caOf(f.ca, names.ca) : null;
  return ServerCredentials.createSsl(ca, [{ cert_chain: p.cert, private_key: p.key }], ca !== null);
}

/**
 * gRPC client credentials: TLS when a CA or a client certificate is given (the CA verifies the
 * server; without one, the system's roots do), with the certificate for mutual TLS. Undefined
 * when nothing is configured (plaintext).
 */
export function clientTls(
  f: TlsFiles,
  names = { cert: 'cert-file', key: 'key-file', ca: 'ca-file' },
): ChannelCredentials | undefined {
  const p = pair(f, names);
  if (!p && !f.ca) return undefined;
  const ca = f.ca ? caOf(f.ca, names.ca) : null;
  return credentials.createSsl(ca, p?.key ?? null, p?.cert ?? null);
}

/**
 * PEM buffers for a Node TLS server (fleet's HTTP API) from the same settings as `serverTls`;
 * undefined when no certificate is configured.
 */
export function serverPem(
  f: TlsFiles,
  names = { cert: 'grpc_tls_cert', key: 'grpc_tls_key', ca: 'grpc_tls_ca' },
): { cert: Buffer; key: Buffer; ca?: Buffer } | undefined {
  const p = pair(f, names);
  if (!p) return undefined;
  return f.ca ? { ...p, ca: caOf(f.ca, names.ca) } : p;
}

export { quietIpServerNameWarning } from './quiet-warning';
