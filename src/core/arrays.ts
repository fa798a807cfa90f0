// Array comparisons the layers share.

/** Same length and, entry by entry, the same number by Object.is (so -0 differs from 0, NaN equals NaN). */
export function sameNumbers(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
