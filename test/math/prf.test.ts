import { describe, expect, it } from 'vitest';
import ndarray from 'ndarray';
import { attention } from '../../src/engine/attention.js';
import { resolveConfig, type AttentionConfig, type FeatureSpec } from '../../src/engine/config.js';
import { plainFeatures } from '../../src/math/features.js';
import { Rng } from '../../src/math/rng.js';

const d = 8;
const m = 64;
const SEEDS = 400;

function unit(v: number[]): number[] {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** phi(q).phi(k) for one seed, from the formula (plainFeatures) and a projection drawn by resolveConfig. */
function kernelEstimate(seed: number, orthogonal: boolean, q: Float64Array, k: Float64Array): number {
  const cfg = resolveConfig({
    heads: 1,
    keyDim: d,
    valueDim: 1,
    features: { kind: 'prf', count: m, seed, normalize: 'l2', orthogonal },
    rpe: { past: { bias: [0] } },
  });
  const pq = new Float64Array(m);
  const pk = new Float64Array(m);
  plainFeatures(cfg.features, d, q, 1, pq);
  plainFeatures(cfg.features, d, k, 1, pk);
  return dot(pq, pk);
}

describe('positive random features: unbiased estimate of exp(q~.k~)', () => {
  const qUnit = unit([1, 0.5, -0.3, 0.2, 0, 0.7, -0.1, 0.4]);
  const kUnit = unit([0.8, 0.6, -0.5, 0.1, 0.3, 0.4, 0.2, 0.1]);
  const cases: [string, number[], number[]][] = [
    ['correlated', qUnit, kUnit],
    ['anti-correlated', qUnit, qUnit.map((x, i) => -0.9 * x + 0.1 * kUnit[i]!)],
  ];

  for (const orthogonal of [true, false]) {
    for (const [label, qv, kv] of cases) {
      it(`${label}, orthogonal: ${orthogonal}: mean of ${SEEDS} seeds within 4 standard errors`, () => {
        // l2 normalization: raw inputs of any length give the same features as the unit vectors
        const q = Float64Array.from(qv, (x) => 3.7 * x);
        const k = Float64Array.from(kv, (x) => 0.2 * x);
        const target = Math.exp(dot(unit(qv), unit(kv)));
        const samples: number[] = [];
        for (let seed = 0; seed < SEEDS; seed++) samples.push(kernelEstimate(seed * 7919 + 1, orthogonal, q, k));
        const mean = samples.reduce((a, b) => a + b, 0) / SEEDS;
        const variance = samples.reduce((a, b) => a + (b - mean) ** 2, 0) / (SEEDS - 1);
        const se = Math.sqrt(variance / SEEDS);
        expect(se).toBeGreaterThan(0);
        expect(samples.every((s) => s > 0 && Number.isFinite(s))).toBe(true);
        expect(Math.abs(mean - target)).toBeLessThan(4 * se);
        // the test has power: the standard error is a few percent of the target, not huge
        expect(se / target).toBeLessThan(0.05);
      });
    }
  }
});

describe('feature maps stay finite for large finite inputs', () => {
  const heads = 2;
  const n = 48;
  const dv = 3;

  function bigTensor(rng: Rng, shape: number[]): ndarray.NdArray<Float64Array> {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      // magnitudes from 1e-3 to 1e6, both signs, some exact +-1e6
      const r = rng.nextFloat64();
      data[i] = r < 0.1 ? (r < 0.05 ? 1e6 : -1e6) : (rng.nextFloat64() < 0.5 ? -1 : 1) * Math.pow(10, -3 + 9 * rng.nextFloat64());
    }
    return ndarray(data, shape);
  }

  const features: FeatureSpec[] = [
    { kind: 'prf', count: 16, seed: 2, normalize: 'none' },
    { kind: 'prf', count: 16, seed: 2, normalize: 'scale' },
    { kind: 'prf', count: 16, seed: 2, normalize: 'l2' },
    { kind: 'elu+1' },
    { kind: 'relu' },
  ];

  for (const f of features) {
    const label = f.kind === 'prf' ? `prf/${f.normalize}` : f.kind;
    it(`${label}: outputs finite and inside the range of the values`, () => {
      const rng = new Rng(17);
      const q = bigTensor(rng, [heads, n, d]);
      const k = bigTensor(rng, [heads, n, d]);
      const v = bigTensor(rng, [heads, n, dv]);
      for (const causal of [true, false]) {
        for (const method of ['direct', 'fft'] as const) {
          const config: AttentionConfig = {
            heads,
            keyDim: d,
            valueDim: dv,
            causal,
            features: f,
            rpe: { past: { bias: [0, -0.5, -1], tail: { decay: 0.01 } } },
          };
          const z = attention(config, q, k, v, { method, block: 16 });
          for (let h = 0; h < heads; h++) {
            for (let i = 0; i < n; i++) {
              for (let c = 0; c < dv; c++) {
                const value = z.get(h, i, c);
                expect(Number.isFinite(value)).toBe(true);
                // z_i is a convex combination of visible v_j (or exactly 0 when no weight survives)
                let lo = Infinity;
                let hi = -Infinity;
                for (let j = 0; j < (causal ? i + 1 : n); j++) {
                  lo = Math.min(lo, v.get(h, j, c));
                  hi = Math.max(hi, v.get(h, j, c));
                }
                const slack = 1e-9 * Math.max(Math.abs(lo), Math.abs(hi));
                if (value !== 0) {
                  expect(value).toBeGreaterThanOrEqual(lo - slack);
                  expect(value).toBeLessThanOrEqual(hi + slack);
                }
              }
            }
          }
        }
      }
    });
  }
});
