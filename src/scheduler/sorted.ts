/**
 * Sorted arrays of strings (code-unit order, the same order `<` gives): binary search, insert,
 * remove and prefix ranges. Used where sets must be iterated deterministically and small enough
 * that an O(n) splice is cheaper than a tree.
 */

/** Index of the first element >= `key`. */
export function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function hasSorted(arr: readonly string[], key: string): boolean {
  const i = lowerBound(arr, key);
  return i < arr.length && arr[i] === key;
}

/** Inserts `key` unless present; returns true when inserted. */
export function insertSorted(arr: string[], key: string): boolean {
  const i = lowerBound(arr, key);
  if (i < arr.length && arr[i] === key) return false;
  if (i === arr.length) arr.push(key);
  else arr.splice(i, 0, key);
  return true;
}

/** Removes `key` if present; returns true when removed. */
export function removeSorted(arr: string[], key: string): boolean {
  const i = lowerBound(arr, key);
  if (i >= arr.length || arr[i] !== key) return false;
  if (i === 0) arr.shift();
  else arr.splice(i, 1);
  return true;
}
