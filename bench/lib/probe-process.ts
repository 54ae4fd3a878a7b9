/**
 * A latency probe in its own process, so what it measures is the leader's answer time and not
 * the benchmark's own event loop (busy decoding the watch stream and the burst's replies).
 *   argv: <kind: mutate|list> <endpoint>
 *   → "ready"
 *   ← "stop"
 *   → {"ms": [...], "sizes": [...]}   then exits
 * `mutate`: one single-unit CreateUnits every 50 ms; `list`: ListUnits over every page, then
 * 500 ms pause, again (see submit.ts).
 */
import readline from 'node:readline';
import { connectApi } from '../../src/api/client';
import { listingProbe, mutationProbe } from './submit';

async function main(): Promise<void> {
  const [kind, endpoint] = process.argv.slice(2);
  const api = connectApi(endpoint, { requestTimeoutMs: 120_000 });
  const probe =
    kind === 'mutate'
      ? (() => {
          const p = mutationProbe(api);
          return { stop: async () => ({ ms: await p.stop(), sizes: [] as number[] }) };
        })()
      : listingProbe(api);
  process.stdout.write('ready\n');
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (line === 'stop') break;
  }
  const res = await probe.stop();
  process.stdout.write(JSON.stringify(res) + '\n');
  api.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`probe: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
