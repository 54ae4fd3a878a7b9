/**
 * What a benchmark is, apart from the list of them (bench/registry.ts), so that a benchmark's
 * module and the registry do not import each other.
 */
export interface BenchOptions {
  /** Small sizes, a few seconds, nothing written to docs/benchmarks.md. */
  smoke: boolean;
}

export interface Benchmark {
  name: string;
  description: string;
  run(opts: BenchOptions): Promise<void>;
}
