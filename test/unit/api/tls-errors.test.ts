/**
 * TLS failures are one line naming the problem: a bad PEM file names its setting and path, a
 * handshake failure says what it means, and Node's DEP0123 warning (an IP as TLS server name,
 * which grpc-js sets for every IP endpoint) is not printed. Certificates come from openssl.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { transportReason } from '../../../src/api/errors';
import { clientTls, quietIpServerNameWarning, serverTls } from '../../../src/api/tls';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flotilla-tls-'));
const f = (name: string) => path.join(dir, name);

function selfSigned(name: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.crt`),
    ],
    { stdio: 'ignore' },
  );
}

beforeAll(() => {
  selfSigned('a');
  selfSigned('b');
  fs.writeFileSync(f('garbage.pem'), 'not a certificate\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('TLS files', () => {
  it('accepts a matching certificate and key, and a CA bundle', () => {
    expect(clientTls({ cert: f('a.crt'), key: f('a.key'), ca: f('b.crt') })).toBeDefined();
    expect(serverTls({ cert: f('a.crt'), key: f('a.key') })).toBeDefined();
  });

  it.each([
    [{ ca: f('garbage.pem') }, /^ca-file .*garbage\.pem: no PEM certificate in it/],
    [{ cert: f('garbage.pem'), key: f('a.key') }, /^cert-file .*garbage\.pem: no PEM certificate/],
    [
      { cert: f('a.crt'), key: f('garbage.pem') },
      /^key-file .*garbage\.pem: not a valid PEM private key/,
    ],
    [
      { cert: f('a.crt'), key: f('b.key') },
      /^key-file .*b\.key is not the private key of cert-file .*a\.crt$/,
    ],
  ])('refuses %j with one line naming the setting and the file', (files, want) => {
    let msg = '';
    try {
      clientTls(files);
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toMatch(want);
    expect(msg).not.toContain('\n');
  });

  it('names the daemon keys for the server side', () => {
    expect(() => serverTls({ cert: f('a.crt'), key: f('b.key') })).toThrow(
      /^grpc_tls_key .*b\.key is not the private key of grpc_tls_cert/,
    );
  });
});

describe('transport failures', () => {
  it.each([
    [
      'No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ',
      "TLS: the server's certificate is not signed by a trusted CA (check --ca-file): unable to verify the first certificate",
    ],
    [
      'No connection established. Last error: Failed to connect (2026-12-06T19:54:58.188Z). Resolution note:',
      'connection failed during setup (a TLS server needs --ca-file)',
    ],
    [
      'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070 (2026-12-06T19:54:58.188Z). Resolution note:',
      'connection refused',
    ],
    [
      "No connection established. Last error: Error: Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1",
      "TLS: the server's certificate does not name this endpoint (its subjectAltName): Hostname/IP does not match certificate's altnames: IP: 127.0.0.2 is not in the cert's list: 127.0.0.1",
    ],
  ])('%s', (details, want) => {
    expect(transportReason(details)).toBe(want);
  });
});

describe('quietIpServerNameWarning', () => {
  it('drops DEP0123 only', () => {
    const original = process.emitWarning;
    const seen: unknown[] = [];
    process.emitWarning = ((...args: unknown[]) =>
      void seen.push(args)) as typeof process.emitWarning;
    try {
      quietIpServerNameWarning();
      process.emitWarning(
        'Setting the TLS ServerName to an IP address',
        'DeprecationWarning',
        'DEP0123',
      );
      process.emitWarning('something else', { code: 'X1' });
      process.emitWarning('old style', 'DeprecationWarning', 'DEP0005');
      expect(seen).toEqual([
        ['something else', { code: 'X1' }],
        ['old style', 'DeprecationWarning', 'DEP0005'],
      ]);
    } finally {
      process.emitWarning = original;
    }
  });
});
