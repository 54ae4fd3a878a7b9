// Apart from tls.ts so that the CLI can install it without loading grpc-js.

/**
 * Drops Node's DEP0123 warning ("Setting the TLS ServerName to an IP address is not permitted by
 * RFC 6066"): grpc-js passes the endpoint's host as the server name, so every TLS connection to
 * an address such as 10.0.0.1:7070 printed two lines on stderr — and the CLI promises one-line
 * errors. The certificate is still checked against the IP (its subjectAltName). Other warnings
 * pass. Idempotent.
 */
export function quietIpServerNameWarning(): void {
  const p = process as NodeJS.Process & { flotillaQuietTls?: boolean };
  if (p.flotillaQuietTls) return;
  p.flotillaQuietTls = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code =
      typeof rest[1] === 'string' ? rest[1] : (rest[0] as { code?: unknown } | undefined)?.code;
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
