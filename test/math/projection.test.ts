import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { drawProjection } from '../../src/math/projection.js';
import { Rng } from '../../src/math/rng.js';

function dot(W: Float64Array, d: number, i: number, j: number): number {
  let s = 0;
  for (let c = 0; c < d; c++) s += W[i * d + c]! * W[j * d + c]!;
  return s;
}

/** E[chi(d)] = sqrt(2) Gamma((d+1)/2) / Gamma(d/2), by r(d+1) = (d/2) / r(d), r(1) = 1/sqrt(pi). */
function chiMean(d: number): number {
  let r = 1 / Math.sqrt(Math.PI);
  for (let k = 1; k < d; k++) r = k / 2 / r;
  return Math.SQRT2 * r;
}

describe('drawProjection', () => {
  it('pins W for (count 3, keyDim 4, seed 7) (any change in draw order fails here)', () => {
    // W: [3, 4] row-major
    expect(Array.from(drawProjection(3, 4, 7))).toEqual([
      0.6075582576974896, -1.810470603702919, 0.24348861334707858, -1.6481920691792546,
      -1.1249341209419217, -1.6007466009965405, 0.5184557667305567, 1.4202711989910086,
      1.300614325572494, -0.02971564992780658, 0.945046857198604, 0.6516876601569943,
    ]);
  });

  it('i.i.d. variant: the consecutive Gaussian draws of Rng(seed), row-major', () => {
    const W = drawProjection(5, 3, 9, false);
    const r = new Rng(9);
    expect(W.length).toBe(15);
    for (let e = 0; e < 15; e++) expect(W[e]).toBe(r.nextGaussian());
  });

  it('is deterministic and seed-dependent', () => {
    expect(drawProjection(10, 6, 1)).toEqual(drawProjection(10, 6, 1));
    expect(drawProjection(10, 6, 1)).not.toEqual(drawProjection(10, 6, 2));
    expect(drawProjection(10, 6, 1.5)).not.toEqual(drawProjection(10, 6, 1));
    // same seed and block count: the smaller W is a prefix of the larger (same draws, same order)
    const a = drawProjection(6, 6, 3);
    const b = drawProjection(4, 6, 3);
    expect(a.subarray(0, 24)).toEqual(b);
    // one more block: the block draws shift the norm draws, so rows differ
    expect(drawProjection(7, 6, 3).subarray(0, 24)).not.toEqual(b);
  });

  it('rows within each d x d block are orthogonal to 1e-12', () => {
    for (const [m, d] of [[20, 8], [16, 8], [5, 8], [7, 1], [64, 64], [100, 3]] as const) {
      const W = drawProjection(m, d, 123 + m + d);
      expect(W.length).toBe(m * d);
      for (let b = 0; b * d < m; b++) {
        const lo = b * d;
        const hi = Math.min(m, lo + d);
        for (let i = lo; i < hi; i++) {
          const ni = Math.sqrt(dot(W, d, i, i));
          expect(ni).toBeGreaterThan(0);
          for (let j = lo; j < i; j++) {
            const nj = Math.sqrt(dot(W, d, j, j));
            const rel = Math.abs(dot(W, d, i, j)) / (ni * nj);
            if (rel > 1e-12) throw new Error(`m=${m} d=${d}: rows ${i},${j} cos = ${rel}`);
          }
        }
      }
    }
  });

  it('row norms follow chi(d) (mean and mean square over 4096 rows)', () => {
    for (const orthogonal of [true, false]) {
      const m = 4096;
      const d = 16;
      const W = drawProjection(m, d, 31, orthogonal);
      let sum = 0;
      let sumSq = 0;
      for (let r = 0; r < m; r++) {
        const sq = dot(W, d, r, r);
        sum += Math.sqrt(sq);
        sumSq += sq;
      }
      const mu = chiMean(d); // 3.9378..., about sqrt(d - 1/2)
      const sd = Math.sqrt(d - mu * mu); // ~0.70
      expect(Math.abs(sum / m - mu)).toBeLessThan((5 * sd) / Math.sqrt(m)); // 5 sigma
      expect(Math.abs(sumSq / m - d)).toBeLessThan((5 * Math.sqrt(2 * d)) / Math.sqrt(m));
    }
  });

  it('orthogonal entries are still marginally N(0, 1)', () => {
    const W = drawProjection(2048, 32, 8);
    let sum = 0;
    let sumSq = 0;
    for (const w of W) {
      sum += w;
      sumSq += w * w;
    }
    expect(Math.abs(sum / W.length)).toBeLessThan(0.02);
    expect(Math.abs(sumSq / W.length - 1)).toBeLessThan(0.03);
  });

  it('validates its arguments with ConfigError messages', () => {
    expect(() => drawProjection(0, 4, 1)).toThrow(ConfigError);
    expect(() => drawProjection(0, 4, 1)).toThrow('features.count must be a positive integer, got 0');
    expect(() => drawProjection(-2, 4, 1)).toThrow('features.count must be a positive integer, got -2');
    expect(() => drawProjection(2.5, 4, 1)).toThrow('features.count must be a positive integer, got 2.5');
    expect(() => drawProjection(NaN, 4, 1)).toThrow('features.count must be a positive integer, got NaN');
    expect(() => drawProjection('3' as unknown as number, 4, 1)).toThrow(
      'features.count must be a positive integer, got "3"',
    );
    expect(() => drawProjection(3, 0, 1)).toThrow('keyDim must be a positive integer, got 0');
    expect(() => drawProjection(3, 1.5, 1)).toThrow('keyDim must be a positive integer, got 1.5');
    expect(() => drawProjection(3, 4, NaN)).toThrow('features.seed must be a finite number, got NaN');
    expect(() => drawProjection(3, 4, -Infinity)).toThrow('features.seed must be a finite number, got -Infinity');
    expect(() => drawProjection(3, 4, 1, 'yes' as unknown as boolean)).toThrow(
      'orthogonal must be a boolean, got "yes"',
    );
  });
});
