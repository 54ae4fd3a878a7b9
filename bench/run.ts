/**
 * `npm run bench [-- --smoke] [-- name…]`: runs every benchmark (or the named ones).
 * Each one writes its own section of docs/benchmarks.md; `--smoke` runs small sizes, writes
 * nothing, and exists so CI keeps the benchmarks from rotting.
 */
import { benchmarks } from './registry';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const smoke = args.includes('--smoke');
  const names = args.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !benchmarks.some((b) => b.name === n));
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark(s): ${unknown.join(', ')}; known: ${benchmarks.map((b) => b.name).join(', ')}`,
    );
    process.exit(2);
  }
  for (const b of benchmarks) {
    if (names.length > 0 && !names.includes(b.name)) continue;
    console.log(`\n== ${b.name}${smoke ? ' (smoke)' : ''}: ${b.description}`);
    await b.run({ smoke });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
