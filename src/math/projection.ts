// Seeded projection matrix W of the positive random features (PRF) map.
//
// Orthogonal variant as Performer's `gaussian_orthogonal_random_matrix(m, d, scaling=0)`: orthonormal
// d x d blocks (Haar-distributed, from Gaussian matrices by Gram-Schmidt), rows rescaled by chi(d)
// norms so each row has the same marginal law as an i.i.d. Gaussian row, while rows within a block
// are exactly orthogonal (lower-variance kernel estimate).
//
// Only + - * / and Math.sqrt are used on top of the seeded generator, so W is bit-identical everywhere.

import { ConfigError, describe } from '../core/errors.js';
import { MAX_PROJECTION_ENTRIES } from '../core/limits.js';
import { Rng } from './rng.js';

function isPositiveInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

/** Orthonormalize row i of `block` ([d, d] row-major) against rows 0..i-1 (already orthonormal). */
function orthonormalizeRow(block: Float64Array, d: number, i: number): number {
  const ri = i * d;
  // Modified Gram-Schmidt, two passes ("twice is enough", Kahan/Parlett) for orthogonality to ~eps.
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < i; j++) {
      const rj = j * d;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += block[ri + c]! * block[rj + c]!;
      for (let c = 0; c < d; c++) block[ri + c]! -= dot * block[rj + c]!;
    }
  }
  let sq = 0;
  for (let c = 0; c < d; c++) sq += block[ri + c]! * block[ri + c]!;
  return Math.sqrt(sq);
}

/**
 * Draw the PRF projection W ([count, keyDim] row-major) from `seed`.
 *
 * `orthogonal = false`: i.i.d. N(0, 1) entries.
 * `orthogonal = true` (default): ceil(m/d) blocks of d orthonormal rows (the last block keeps its first
 * m - d*(blocks-1) rows), then row r is scaled by |g_r|, g_r ~ N(0, I_d), so row norms follow chi(d).
 *
 * Draw order (fixed forever; the pinned values in test/math/projection.test.ts guard it). All draws are
 * consecutive `nextGaussian()` calls of one `new Rng(seed)`:
 *   - orthogonal = false: the m*d entries of W in row-major order.
 *   - orthogonal = true:
 *     1. for each block b = 0 .. ceil(m/d)-1: its full d x d Gaussian matrix in row-major order (d*d
 *        draws, also for the last, partial block); the rows W keeps (all d, or the first m - d*(blocks-1)
 *        of the last block) are then orthonormalized in order by modified Gram-Schmidt, two passes (row i
 *        depends only on rows < i, so rows W does not keep are never worked on: O(rows^2 d), not O(d^3)).
 *        If a row's residual norm falls below 1e-6 of its drawn norm (probability ~0), it is replaced by
 *        d fresh draws and orthonormalized again, before the next row.
 *     2. then for each row r = 0 .. m-1: d draws g_r; row r is multiplied by sqrt(sum g_r^2).
 */
export function drawProjection(count: number, keyDim: number, seed: number, orthogonal = true): Float64Array {
  if (!isPositiveInteger(count)) {
    throw new ConfigError(`features.count must be a positive integer, got ${describe(count)}`);
  }
  if (!isPositiveInteger(keyDim)) {
    throw new ConfigError(`keyDim must be a positive integer, got ${describe(keyDim)}`);
  }
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw new ConfigError(`features.seed must be a finite number, got ${describe(seed)}`);
  }
  if (typeof orthogonal !== 'boolean') {
    throw new ConfigError(`orthogonal must be a boolean, got ${describe(orthogonal)}`);
  }
  if (count * keyDim > MAX_PROJECTION_ENTRIES) {
    throw new ConfigError(`features.count x keyDim = ${count} x ${keyDim} would need ${count * keyDim * 8} bytes for W, more than the limit of ${MAX_PROJECTION_ENTRIES * 8} bytes (${MAX_PROJECTION_ENTRIES} entries)`);
  }
  const m = count;
  const d = keyDim;
  const rng = new Rng(seed);
  // W: [m, d] row-major
  const W = new Float64Array(m * d);

  if (!orthogonal) {
    for (let e = 0; e < m * d; e++) W[e] = rng.nextGaussian();
    return W;
  }

  const blocks = Math.ceil(m / d);
  // block: [d, d] row-major, scratch
  const block = new Float64Array(d * d);
  for (let b = 0; b < blocks; b++) {
    for (let e = 0; e < d * d; e++) block[e] = rng.nextGaussian();
    const rows = Math.min(d, m - b * d);
    for (let i = 0; i < rows; i++) {
      const ri = i * d;
      for (;;) {
        let sq0 = 0;
        for (let c = 0; c < d; c++) sq0 += block[ri + c]! * block[ri + c]!;
        const norm = orthonormalizeRow(block, d, i);
        if (norm > 1e-6 * Math.sqrt(sq0)) {
          const inv = 1 / norm;
          for (let c = 0; c < d; c++) block[ri + c]! *= inv;
          break;
        }
        for (let c = 0; c < d; c++) block[ri + c] = rng.nextGaussian(); // degenerate: redraw
      }
    }
    W.set(block.subarray(0, rows * d), b * d * d);
  }

  for (let r = 0; r < m; r++) {
    let sq = 0;
    for (let c = 0; c < d; c++) {
      const g = rng.nextGaussian();
      sq += g * g;
    }
    const scale = Math.sqrt(sq);
    const rr = r * d;
    for (let c = 0; c < d; c++) W[rr + c]! *= scale;
  }
  return W;
}
