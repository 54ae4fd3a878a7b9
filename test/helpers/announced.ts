/**
 * The ports a flotillad started on port 0 listens on, read from what it announces at startup (its
 * info-level log lines, text or JSON): `API listening addresses=…` (gRPC), `fleet API v1
 * listening addresses=…`, `HTTP listening … address=…`. Tests start daemons on port 0 and read the
 * port back, rather than handing over a port probed free a moment before (another process may
 * take it in between).
 */
export type Listener = 'API' | 'fleet API v1' | 'HTTP';

const MESSAGES: Record<Listener, string> = {
  API: 'API listening',
  'fleet API v1': 'fleet API v1 listening',
  HTTP: 'HTTP listening (/healthz, /readyz, /metrics, /ui/)',
};

/** The first TCP port `what` announced in `output`, or undefined until it has. */
export function announcedPort(output: string, what: Listener): number | undefined {
  const msg = MESSAGES[what];
  for (const line of output.split('\n')) {
    let addresses: string | undefined;
    if (line.startsWith('{')) {
      try {
        const rec = JSON.parse(line) as { msg?: string; addresses?: string; address?: string };
        if (rec.msg === msg) addresses = rec.addresses ?? rec.address;
      } catch {
        continue;
      }
    } else {
      const at = line.indexOf(` ${msg} `);
      if (at < 0) continue;
      addresses = /\baddress(?:es)?=(\S+)/.exec(line.slice(at + msg.length + 1))?.[1];
    }
    for (const a of addresses?.split(',') ?? []) {
      const m = /^(?:tcp:\/\/)?(?:[\d.]+|\[[0-9a-fA-F:]+\]|localhost):(\d+)$/.exec(a);
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}
