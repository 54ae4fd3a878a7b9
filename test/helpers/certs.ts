import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Certificates made by openssl for one test run, in `dir`: `<name>.pem` and `<name>.key`.
 * A role (docs/security.md) goes in a URI SAN `flotilla:role:<role>`, or with `ou` in the
 * subject's OU.
 */
export class TestPki {
  constructor(readonly dir: string) {}

  f(name: string): string {
    return path.join(this.dir, name);
  }

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  /** `openssl req` with a new key and the subject: a CA (`-x509`) or a signing request. */
  private request(name: string, subject: string, ...rest: string[]): void {
    const key = ['-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', `${name}.key`];
    this.openssl('req', ...key, ...rest);
  }

  /**
   * The usual set: CA `ca`, a daemon certificate `server` and a client `client` (both with the
   * operator role: daemons forward writes), and an `intruder` signed by another CA (`rogue`).
   */
  makeBasics(client = 'client'): void {
    this.makeCa('ca');
    this.makeCa('rogue');
    this.makeCert('server', 'ca', { server: true, role: 'operator' });
    this.makeCert(client, 'ca', { server: false, role: 'operator' });
    this.makeCert('intruder', 'rogue', { server: false, role: 'operator' });
  }

  /** flotillad's flags for mTLS with the `server` certificate and CA `ca` (after makeBasics). */
  daemonTlsFlags(): string[] {
    return [
      '--grpc-tls-cert',
      this.f('server.pem'),
      '--grpc-tls-key',
      this.f('server.key'),
      '--grpc-tls-ca',
      this.f('ca.pem'),
    ];
  }

  makeCa(name: string): void {
    this.request(name, `/CN=${name}`, '-x509', '-days', '2', '-out', `${name}.pem`);
  }

  /**
   * A certificate signed by `ca`: a daemon's (`server`: for 127.0.0.1, server and client
   * authentication, as it presents it when forwarding) or a client's.
   */
  makeCert(name: string, ca: string, o: { server: boolean; role?: string; ou?: string }): void {
    this.request(name, `/CN=${name}${o.ou ? `/OU=${o.ou}` : ''}`, '-out', `${name}.csr`);
    const sans = [
      ...(o.server ? ['IP:127.0.0.1', 'DNS:localhost'] : []),
      ...(o.role ? [`URI:flotilla:role:${o.role}`] : []),
    ];
    fs.writeFileSync(
      this.f(`${name}.ext`),
      (sans.length > 0 ? `subjectAltName=${sans.join(',')}\n` : '') +
        `extendedKeyUsage=${o.server ? 'serverAuth,clientAuth' : 'clientAuth'}\n`,
    );
    const sign = ['-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2'];
    this.openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      ...sign,
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    );
  }
}
