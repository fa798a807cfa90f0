// Every fast path against the O(n^2) float64 oracle, over random shapes, lengths, RPEs, features and methods.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray from 'ndarray';
import { attention, referenceAttention } from '../../src/index.js';
import type { AttentionConfig, RpeSide, Tail } from '../../src/engine/config.js';
import { Rng } from '../../src/math/rng.js';
import { maxRowError, randomTensor } from '../helpers.js';

/** Every oracle and property test runs on both backends. */
const BACKENDS = ['js', 'wasm'] as const;

// Accuracy bar of DESIGN section 4: per row, max |z - zref| / max zAbs <= 1e-9 (see maxRowError in helpers.ts)
const BAR = 1e-9;

const tailArb: fc.Arbitrary<Tail> = fc.oneof(fc.constant<Tail>('clip'), fc.constant<Tail>('zero'), fc.double({ min: 0, max: 2, noNaN: true }).map((r) => ({ decay: r })));

function sideArb(maxK: number): fc.Arbitrary<RpeSide> {
  return fc.record({
    K: fc.integer({ min: 1, max: maxK }),
    tail: tailArb,
    seed: fc.integer(),
    negInf: fc.double({ min: 0, max: 0.3, noNaN: true }),
  }).map(({ K, tail, seed, negInf }) => {
    const rng = new Rng(seed);
    const bias = Array.from({ length: K }, () => (rng.nextFloat64() < negInf ? -Infinity : -20 + 25 * rng.nextFloat64()));
    return { bias, tail };
  });
}

const featureArb = fc.oneof(
  fc.record({ count: fc.integer({ min: 1, max: 12 }), seed: fc.integer(), normalize: fc.constantFrom('l2', 'scale', 'none') as fc.Arbitrary<'l2' | 'scale' | 'none'> })
    .map((f) => ({ kind: 'prf' as const, ...f })),
  fc.constant({ kind: 'elu+1' as const }),
  fc.constant({ kind: 'relu' as const }),
);

const caseArb = fc.record({
  n: fc.oneof(fc.constantFrom(1, 2, 3, 5, 7, 13, 31, 32, 33, 64, 97), fc.integer({ min: 1, max: 400 })),
  heads: fc.integer({ min: 1, max: 3 }),
  d: fc.integer({ min: 1, max: 6 }),
  dv: fc.integer({ min: 1, max: 5 }),
  causal: fc.boolean(),
  perHead: fc.boolean(),
  explicitFuture: fc.boolean(),
  features: featureArb,
  past: fc.array(sideArb(420), { minLength: 3, maxLength: 3 }),
  future: fc.array(sideArb(420), { minLength: 3, maxLength: 3 }),
  block: fc.constantFrom(16, 32, 64, 0),
  seed: fc.integer(),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function buildConfig(c: Case): AttentionConfig {
  const spec = (h: number) => ({ past: c.past[h]!, ...(c.explicitFuture ? { future: c.future[h]! } : {}) });
  return {
    heads: c.heads,
    keyDim: c.d,
    valueDim: c.dv,
    causal: c.causal,
    features: c.features,
    rpe: c.perHead ? Array.from({ length: c.heads }, (_, h) => spec(h)) : spec(0),
  };
}

for (const backend of BACKENDS) describe(`attention vs the O(n^2) oracle (${backend})`, () => {
  it('fft and direct paths meet the bar on random configs', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const config = buildConfig(c);
        const rng = new Rng(c.seed);
        const q = randomTensor(rng, [c.heads, c.n, c.d]);
        const k = randomTensor(rng, [c.heads, c.n, c.d]);
        const v = randomTensor(rng, [c.heads, c.n, c.dv]);
        for (const method of ['fft', 'direct', 'auto'] as const) {
          const z = attention(config, q, k, v, { backend, method, ...(method === 'fft' && c.block > 0 ? { block: c.block } : {}) });
          for (const x of z.data) expect(Number.isFinite(x)).toBe(true);
          const err = maxRowError(config, q, k, v, z);
          if (!(err <= BAR)) throw new Error(`${method}: row error ${err} > ${BAR}`);
        }
      }),
      { numRuns: 200, seed: 20261125 },
    );
  });

  it('long sequences (primes and powers of two, up to 3001) with full tables, several blocks', () => {
    const rng = new Rng(7);
    for (const [n, block, causal] of [[1024, 64, true], [2048, 256, false], [3001, 128, true]] as const) {
      const bias = Array.from({ length: n }, () => -20 + 25 * rng.nextFloat64());
      const config: AttentionConfig = { heads: 1, keyDim: 4, valueDim: 3, causal, features: { kind: 'prf', count: 8, seed: n }, rpe: { past: { bias } } };
      const q = randomTensor(rng, [1, n, 4]);
      const k = randomTensor(rng, [1, n, 4]);
      const v = randomTensor(rng, [1, n, 3]);
      let repaired = 0;
      const z = attention(config, q, k, v, { backend, method: 'fft', block, onStats: (s) => { repaired += s.repairedRows; } });
      expect(maxRowError(config, q, k, v, z)).toBeLessThanOrEqual(BAR);
      // repairs stay rare on random tables: the FFT does the work
      expect(repaired).toBeLessThan(n / 10);
    }
  });

  it('positive values: the bar is the plain per-output relative error', () => {
    const rng = new Rng(3);
    const n = 700;
    const bias = Array.from({ length: n }, () => -20 + 25 * rng.nextFloat64());
    const config: AttentionConfig = { heads: 2, keyDim: 5, valueDim: 4, features: { kind: 'prf', count: 16 }, rpe: { past: { bias, tail: { decay: 0.01 } } } };
    const q = randomTensor(rng, [2, n, 5]);
    const k = randomTensor(rng, [2, n, 5]);
    const v = randomTensor(rng, [2, n, 4]);
    for (let i = 0; i < v.data.length; i++) v.data[i] = Math.abs(v.data[i]!) + 0.1;
    const ref = referenceAttention(config, q, k, v);
    for (const method of ['fft', 'direct'] as const) {
      const z = attention(config, q, k, v, { backend, method, block: 64 });
      let worst = 0;
      for (let i = 0; i < z.data.length; i++) worst = Math.max(worst, Math.abs(z.data[i]! - ref.data[i]!) / Math.abs(ref.data[i]!));
      expect(worst).toBeLessThanOrEqual(BAR);
    }
  });

  it('a step table (tiny then huge weights) is repaired row by row, not returned inaccurate', () => {
    const rng = new Rng(4);
    const n = 600;
    const bias = Array.from({ length: n }, (_, t) => (t < 300 ? -20 : 5));
    const config: AttentionConfig = { heads: 1, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8 }, rpe: { past: { bias } } };
    const q = randomTensor(rng, [1, n, 4]);
    const k = randomTensor(rng, [1, n, 4]);
    const v = randomTensor(rng, [1, n, 3]);
    let repaired = 0;
    const z = attention(config, q, k, v, { backend, method: 'fft', block: 128, onStats: (s) => { repaired += s.repairedRows; } });
    expect(maxRowError(config, q, k, v, z)).toBeLessThanOrEqual(BAR);
    expect(repaired).toBeGreaterThan(0);
  });

  it('Float32 inputs and strided views give the same result as their Float64 copies', () => {
    const rng = new Rng(5);
    const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 6 }, rpe: { past: { bias: [0, -1, -2], tail: 'clip' } } };
    const q32 = randomTensor(rng, [2, 50, 3], 1, 'f32');
    const k32 = randomTensor(rng, [2, 50, 3], 1, 'f32');
    const v32 = randomTensor(rng, [2, 50, 2], 1, 'f32');
    const to64 = (t: typeof q32) => ndarray(Float64Array.from(t.data), t.shape.slice());
    const a = attention(config, q32, k32, v32, { backend });
    const b = attention(config, to64(q32), to64(k32), to64(v32), { backend });
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    // a transposed view [n, heads, d] -> [heads, n, d]
    const qT = ndarray(new Float64Array(2 * 50 * 3), [50, 2, 3]);
    for (let h = 0; h < 2; h++) for (let i = 0; i < 50; i++) for (let c = 0; c < 3; c++) qT.set(i, h, c, q32.get(h, i, c));
    const c = attention(config, qT.transpose(1, 0, 2), to64(k32), to64(v32), { backend });
    expect(Array.from(c.data)).toEqual(Array.from(b.data));
  });

  it('rows with no visible key give zero vectors, never NaN', () => {
    const rng = new Rng(6);
    const n = 80;
    // lags 0..9 invisible, window of 20: rows 0..9 see nothing
    const bias = Array.from({ length: 30 }, (_, t) => (t < 10 ? -Infinity : 0));
    const q = randomTensor(rng, [1, n, 3]);
    const k = randomTensor(rng, [1, n, 3]);
    const v = randomTensor(rng, [1, n, 2]);
    for (const kind of ['prf', 'relu'] as const) {
      const config: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, features: kind === 'prf' ? { kind, count: 4 } : { kind }, rpe: { past: { bias, tail: 'zero' } } };
      for (const method of ['fft', 'direct'] as const) {
        const z = attention(config, q, k, v, { backend, method, block: 16 });
        for (let i = 0; i < 10; i++) expect([z.get(0, i, 0), z.get(0, i, 1)]).toEqual([0, 0]);
        for (const x of z.data) expect(Number.isNaN(x)).toBe(false);
        expect(maxRowError(config, q, k, v, z)).toBeLessThanOrEqual(BAR);
      }
    }
    // every bias -Infinity: all outputs zero
    const none: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, causal: false, features: { kind: 'prf', count: 4 }, rpe: { past: { bias: [-Infinity], tail: 'clip' } } };
    expect(Array.from(attention(none, q, k, v, { backend }).data).every((x) => x === 0)).toBe(true);
  });

  it('empty sequences give empty outputs', () => {
    const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'elu+1' }, rpe: { past: { bias: [0] } } };
    const e = (dim: number) => ndarray(new Float64Array(0), [2, 0, dim]);
    expect(attention(config, e(3), e(3), e(2)).shape).toEqual([2, 0, 2]);
  });
});
