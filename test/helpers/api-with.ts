import { deriveApi } from '../../src/api/methods';
import type { ClusterApi } from '../../src/api/types';

/**
 * A ClusterApi answering with `methods` and failing every other call ("not used"): a unary call
 * rejects, a stream throws on its first read. Derived from the API's method table, so a new
 * method needs nothing here.
 */
export function apiWith(methods: Partial<ClusterApi>): ClusterApi {
  const unused = (name: string): Error => new Error(`${name}: not used`);
  const fallback = deriveApi({
    unary: (name) => Promise.reject(unused(name)),
    stream: (name) => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(unused(name)) }),
    }),
  });
  return { ...fallback, ...methods };
}
