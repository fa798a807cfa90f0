import { describe, expect, it } from 'vitest';
import { attention, referenceAttention } from '../../src/engine/attention.js';
import { resolveConfig, type AttentionConfig, type RpeSpec } from '../../src/engine/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { alibiSlopes, rpe, t5Bucket } from '../../src/engine/rpe.js';
import { plainFeatures } from '../../src/math/features.js';
import { kernelLogAt } from '../../src/math/kernel.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';

function config(r: RpeSpec | RpeSpec[], causal = true, heads = 1): AttentionConfig {
  return { heads, keyDim: 4, valueDim: 3, causal, features: { kind: 'prf', count: 8, seed: 3 }, rpe: r };
}

describe('t5Bucket', () => {
  // Hand-computed from T5's _relative_position_bucket (relative_position = -lag):
  // bidirectional, 32 buckets, max 128: 16 per side, 8 exact, then 8 + floor(2 log2(n / 8)), capped at 15.
  const bi = { numBuckets: 32, maxDistance: 128, bidirectional: true };
  // unidirectional: 16 exact, then 16 + floor((16 / 3) log2(n / 16)) (31 from n = 16 * 2^(45/16) = 112.4), capped
  // at 31; future lags -> 0.
  const uni = { numBuckets: 32, maxDistance: 128, bidirectional: false };

  it('bidirectional 32/128 past lags', () => {
    const want: [number, number][] = [
      [0, 0], [1, 1], [7, 7], [8, 8], [11, 8], [12, 9], [15, 9], [16, 10], [22, 10], [23, 11], [31, 11],
      [32, 12], [45, 12], [46, 13], [63, 13], [64, 14], [90, 14], [91, 15], [127, 15], [128, 15], [200, 15],
    ];
    for (const [lag, b] of want) expect([lag, t5Bucket(lag, bi)]).toEqual([lag, b]);
  });

  it('bidirectional 32/128 future lags use the upper half', () => {
    const want: [number, number][] = [
      [-1, 17], [-7, 23], [-8, 24], [-12, 25], [-16, 26], [-32, 28], [-64, 30], [-91, 31], [-200, 31],
    ];
    for (const [lag, b] of want) expect([lag, t5Bucket(lag, bi)]).toEqual([lag, b]);
  });

  it('unidirectional 32/128', () => {
    const want: [number, number][] = [
      [0, 0], [15, 15], [16, 16], [20, 17], [24, 19], [32, 21], [45, 23], [64, 26], [91, 29], [100, 30],
      [112, 30], [113, 31], [127, 31], [128, 31], [200, 31], [-1, 0], [-50, 0],
    ];
    for (const [lag, b] of want) expect([lag, t5Bucket(lag, uni)]).toEqual([lag, b]);
  });

  it('is monotone within each side and stays in range', () => {
    for (const o of [bi, uni, { numBuckets: 8, maxDistance: 20, bidirectional: true }, { numBuckets: 5, maxDistance: 3, bidirectional: false }]) {
      const half = o.bidirectional ? Math.floor(o.numBuckets / 2) : o.numBuckets;
      let prev = 0;
      for (let t = 0; t <= 600; t++) {
        const b = t5Bucket(t, o);
        expect(b).toBeGreaterThanOrEqual(prev);
        expect(b).toBeLessThan(half);
        prev = b;
      }
      expect(prev).toBe(half - 1);
    }
  });

  it('refuses bad options', () => {
    expect(() => t5Bucket(0, { numBuckets: 3, maxDistance: 128, bidirectional: true })).toThrow(ConfigError);
    expect(() => t5Bucket(0, { numBuckets: 3, maxDistance: 128, bidirectional: true })).toThrow(/numBuckets must be an integer in \[4, .*got 3/);
    expect(() => t5Bucket(0, { numBuckets: 32, maxDistance: 8, bidirectional: true })).toThrow(/maxDistance must be an integer in \[9, .*got 8/);
    expect(() => t5Bucket(0.5, bi)).toThrow(/lag must be an integer, got 0.5/);
    expect(() => t5Bucket(0, { numBuckets: 32, maxDistance: 128 } as never)).toThrow(/bidirectional must be a boolean, got undefined/);
  });
});

describe('rpe.t5', () => {
  const bucketBias = Array.from({ length: 32 }, (_, i) => Math.sin(1.7 * i) - 0.01 * i);

  for (const bidirectional of [true, false]) {
    it(`expanded table agrees with t5Bucket for every lag up to 3 x maxDistance (bidirectional ${bidirectional})`, () => {
      const opts = { numBuckets: 32, maxDistance: 128, bidirectional };
      const spec = rpe.t5({ bucketBias, ...opts });
      const past = resolveConfig(config(spec, true)).past[0]!;
      const future = resolveConfig(config(spec, false)).future[0]!;
      expect(future).not.toBeNull();
      for (let t = 0; t <= 3 * 128; t++) {
        expect([t, kernelLogAt(past, t)]).toEqual([t, bucketBias[t5Bucket(t, opts)]]);
        if (t >= 1) expect([-t, kernelLogAt(future, t)]).toEqual([-t, bucketBias[t5Bucket(-t, opts)]]);
      }
      // the table stops where the bucket saturates
      const K = spec.past.bias.length;
      expect(t5Bucket(K - 1, opts)).toBe(bidirectional ? 15 : 31);
      expect(t5Bucket(K - 2, opts)).toBeLessThan(bidirectional ? 15 : 31);
      expect(spec.past.tail).toBe('clip');
    });
  }

  it('attention with the expanded T5 table matches the reference', () => {
    const rng = new Rng(11);
    const spec = rpe.t5({ bucketBias: Array.from({ length: 8 }, (_, i) => -0.3 * i), numBuckets: 8, maxDistance: 16, bidirectional: true });
    const cfg = config(spec, false);
    const n = 40;
    const q = randomTensor(rng, [1, n, 4]);
    const k = randomTensor(rng, [1, n, 4]);
    const v = randomTensor(rng, [1, n, 3]);
    const z = attention(cfg, q, k, v);
    const ref = referenceAttention(cfg, q, k, v);
    for (let i = 0; i < z.data.length; i++) expect(z.data[i]!).toBeCloseTo(ref.data[i]!, 10);
  });

  it('refuses bucketBias of the wrong length or with NaN', () => {
    expect(() => rpe.t5({ bucketBias: [0, 1, 2], numBuckets: 32, maxDistance: 128, bidirectional: true })).toThrow(ConfigError);
    expect(() => rpe.t5({ bucketBias: [0, 1, 2], numBuckets: 32, maxDistance: 128, bidirectional: true })).toThrow(/numBuckets = 32 entries, got 3/);
    expect(() => rpe.t5({ bucketBias: [0, NaN, 2, 3], numBuckets: 4, maxDistance: 8, bidirectional: true })).toThrow(/bucketBias\[1\] must be a finite number or -Infinity, got NaN/);
  });
});

describe('ALiBi and decay presets', () => {
  it('8 heads: slopes 1/2, 1/4, ..., 1/256', () => {
    const slopes = alibiSlopes(8);
    expect(slopes).toEqual([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
    const specs = rpe.alibi(8);
    expect(specs).toHaveLength(8);
    const cfg = resolveConfig(config(specs, true, 8));
    for (let h = 0; h < 8; h++) {
      for (const t of [0, 1, 5, 100]) expect(kernelLogAt(cfg.past[h]!, t)).toBeCloseTo(-slopes[h]! * t, 12);
    }
  });

  it('non-power-of-two heads interleave as in the ALiBi paper', () => {
    // 12 heads: the 8 slopes of 8 heads, then slopes 1, 3, 5, 7 (1-based odd) of 16 heads
    const s8 = alibiSlopes(8);
    const s16 = alibiSlopes(16);
    expect(alibiSlopes(12)).toEqual([...s8, s16[0], s16[2], s16[4], s16[6]]);
    expect(alibiSlopes(6)).toEqual([...alibiSlopes(4), alibiSlopes(8)[0], alibiSlopes(8)[2]]);
    expect(alibiSlopes(1)).toEqual([1 / 256]);
  });

  it('decay, retnet, window and table lower to the right kernels', () => {
    const dec = resolveConfig(config(rpe.decay(0.25))).past[0]!;
    expect(kernelLogAt(dec, 8)).toBeCloseTo(-2, 14);
    const ret = resolveConfig(config(rpe.retnet(0.5))).past[0]!;
    expect(Math.exp(kernelLogAt(ret, 3))).toBeCloseTo(0.125, 14);
    expect(rpe.retnet(1)).toEqual({ past: { bias: [0], tail: { decay: 0 } } });
    const win = resolveConfig(config(rpe.window(3, -1))).past[0]!;
    expect([0, 1, 2, 3, 10].map((t) => kernelLogAt(win, t))).toEqual([-1, -1, -1, -Infinity, -Infinity]);
    const tab = resolveConfig(config(rpe.table([0, -1, -2], { decay: 1 }))).past[0]!;
    expect([0, 2, 4].map((t) => kernelLogAt(tab, t))).toEqual([0, -2, -4]);
    expect(rpe.table(new Float64Array([0, -Infinity]))).toEqual({ past: { bias: [0, -Infinity], tail: 'clip' } });
    expect(rpe.none()).toEqual({ past: { bias: [0], tail: 'clip' } });
  });

  it('refuses bad preset arguments with ConfigError', () => {
    expect(() => rpe.decay(-1)).toThrow(ConfigError);
    expect(() => rpe.decay(-1)).toThrow(/rate must be a finite number >= 0, got -1/);
    expect(() => rpe.decay(NaN)).toThrow(/got NaN/);
    expect(() => rpe.retnet(0)).toThrow(/gamma must be a number in \(0, 1\], got 0/);
    expect(() => rpe.retnet(1.5)).toThrow(/gamma must be a number in \(0, 1\], got 1.5/);
    expect(() => rpe.alibi(0)).toThrow(/heads must be an integer in \[1, 4096\], got 0/);
    expect(() => rpe.window(0)).toThrow(/K must be an integer in \[1, \d+\], got 0/);
    expect(() => rpe.window(4, NaN)).toThrow(/bias must be a finite number or -Infinity, got NaN/);
    expect(() => rpe.table([])).toThrow(/bias must hold 1 to \d+ entries, got 0/);
    expect(() => rpe.table([0, Infinity])).toThrow(/bias\[1\] must be a finite number or -Infinity, got Infinity/);
    expect(() => rpe.table([0], 'wrap' as never)).toThrow(/tail must be 'clip', 'zero' or \{ decay: rate \}, got "wrap"/);
  });
});

describe('rpe.none()', () => {
  it('attention equals plain causal linear attention', () => {
    const rng = new Rng(5);
    const cfg = config(rpe.none(), true, 2);
    const n = 50;
    const d = 4;
    const dv = 3;
    const q = randomTensor(rng, [2, n, d]);
    const k = randomTensor(rng, [2, n, d]);
    const v = randomTensor(rng, [2, n, dv]);
    const resolved = resolveConfig(cfg);
    const m = resolved.featureDim;
    for (const method of ['direct', 'fft', 'auto'] as const) {
      const z = attention(cfg, q, k, v, { method });
      for (let h = 0; h < 2; h++) {
        const qh = new Float64Array(n * d);
        const kh = new Float64Array(n * d);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < d; c++) {
            qh[i * d + c] = q.get(h, i, c);
            kh[i * d + c] = k.get(h, i, c);
          }
        }
        const pq = new Float64Array(n * m);
        const pk = new Float64Array(n * m);
        plainFeatures(resolved.features, d, qh, n, pq);
        plainFeatures(resolved.features, d, kh, n, pk);
        // running sums S = sum_j phi(k_j) v_j^T, s = sum_j phi(k_j)
        const S = new Float64Array(m * dv);
        const s = new Float64Array(m);
        for (let i = 0; i < n; i++) {
          for (let r = 0; r < m; r++) {
            s[r] = s[r]! + pk[i * m + r]!;
            for (let c = 0; c < dv; c++) S[r * dv + c] = S[r * dv + c]! + pk[i * m + r]! * v.get(h, i, c);
          }
          let den = 0;
          for (let r = 0; r < m; r++) den += pq[i * m + r]! * s[r]!;
          for (let c = 0; c < dv; c++) {
            let num = 0;
            for (let r = 0; r < m; r++) num += pq[i * m + r]! * S[r * dv + c]!;
            expect(Math.abs(z.get(h, i, c) - num / den)).toBeLessThan(1e-10);
          }
        }
      }
    }
  });
});
