// Streaming == whole sequence: random configs, random partitions of the stream into step and chunk calls.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray, { type NdArray } from 'ndarray';
import { attention, Decoder, ShapeError, StateError } from '../../src/index.js';
import { resolveConfig, type AttentionConfig, type Tail } from '../../src/engine/config.js';
import { referenceHead } from '../../src/math/reference.js';
import { Rng } from '../../src/math/rng.js';
import { maxRowError, randomTensor, sliceRows as rows, streamDecoder } from '../helpers.js';

/** Every oracle and property test runs on both backends. */
const BACKENDS = ['js', 'wasm'] as const;

const BAR = 1e-9;


/**
 * max over rows of max_col |a - b| / zAbs_i, with zAbs_i the oracle's magnitude-weighted mean of |v| in row i (the
 * scale of maxRowError); a row whose scale is 0 must match exactly. a, b: [heads, n, dv].
 */
function maxRowDiff(config: AttentionConfig, q: NdArray, k: NdArray, v: NdArray, a: NdArray<Float64Array>, b: NdArray<Float64Array>): number {
  const cfg = resolveConfig(config);
  const [heads, n] = q.shape as [number, number];
  const { keyDim: d, valueDim: dv } = cfg;
  const flat = (t: NdArray, h: number, dim: number): Float64Array => Float64Array.from({ length: n * dim }, (_, i) => t.get(h, Math.floor(i / dim), i % dim));
  const ref = new Float64Array(n * dv);
  const abs = new Float64Array(n * dv);
  let worst = 0;
  for (let h = 0; h < heads; h++) {
    referenceHead(cfg, h, flat(q, h, d), flat(k, h, d), flat(v, h, dv), n, ref, abs);
    for (let i = 0; i < n; i++) {
      let e = 0;
      let s = 0;
      for (let c = 0; c < dv; c++) {
        e = Math.max(e, Math.abs(a.get(h, i, c) - b.get(h, i, c)));
        s = Math.max(s, abs[i * dv + c]!);
      }
      const r = s === 0 ? (e === 0 ? 0 : Infinity) : e / s;
      if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
    }
  }
  return worst;
}

const tailArb: fc.Arbitrary<Tail> = fc.oneof(fc.constant<Tail>('clip'), fc.constant<Tail>('zero'), fc.double({ min: 0, max: 1, noNaN: true }).map((r) => ({ decay: r })));

for (const backend of BACKENDS) describe(`Decoder (${backend})`, () => {
  it('any mix of step and chunk calls equals whole-sequence attention and the oracle', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 300 }),
          K: fc.integer({ min: 1, max: 350 }),
          heads: fc.integer({ min: 1, max: 3 }),
          d: fc.integer({ min: 1, max: 5 }),
          dv: fc.integer({ min: 1, max: 4 }),
          m: fc.integer({ min: 1, max: 10 }),
          tail: tailArb,
          normalize: fc.constantFrom('l2', 'scale', 'none') as fc.Arbitrary<'l2' | 'scale' | 'none'>,
          sizes: fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 90 })), { minLength: 1, maxLength: 40 }),
          method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          const bias = Array.from({ length: c.K }, () => (rng.nextFloat64() < 0.1 ? -Infinity : -20 + 25 * rng.nextFloat64()));
          const config: AttentionConfig = { heads: c.heads, keyDim: c.d, valueDim: c.dv, features: { kind: 'prf', count: c.m, seed: c.seed, normalize: c.normalize }, rpe: { past: { bias, tail: c.tail } } };
          const q = randomTensor(rng, [c.heads, c.n, c.d]);
          const k = randomTensor(rng, [c.heads, c.n, c.d], 2);
          const v = randomTensor(rng, [c.heads, c.n, c.dv]);
          const sizes = [...c.sizes];
          while (sizes.reduce((a, b) => a + b, 0) < c.n) sizes.push(...c.sizes);
          const dec = new Decoder(config, { backend, method: c.method });
          const z = streamDecoder(dec, q, k, v, sizes);
          expect(dec.position).toBe(c.n);
          const whole = attention(config, q, k, v, { backend });
          const err = maxRowError(config, q, k, v, z);
          if (!(err <= BAR)) throw new Error(`stream row error ${err} against the oracle`);
          // streamed == whole sequence, row by row, both within the bar of the oracle: at most 2 x BAR apart
          const diff = maxRowDiff(config, q, k, v, z, whole);
          if (!(diff <= 2 * BAR)) throw new Error(`stream differs from attention() by ${diff} (row-wise, relative)`);
        },
      ),
      { numRuns: 120, seed: 7 },
    );
  });

  it('state bytes stay constant once the window is full', () => {
    const config: AttentionConfig = { heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8 }, rpe: { past: { bias: new Array(100).fill(0), tail: 'clip' } } };
    const dec = new Decoder(config, { backend });
    const rng = new Rng(1);
    const tok = () => [randomTensor(rng, [2, 4]), randomTensor(rng, [2, 4]), randomTensor(rng, [2, 3])] as const;
    for (let i = 0; i < 150; i++) dec.step(...tok());
    const bytes = dec.stateBytes;
    for (let i = 0; i < 500; i++) dec.step(...tok());
    dec.chunk(randomTensor(rng, [2, 300, 4]), randomTensor(rng, [2, 300, 4]), randomTensor(rng, [2, 300, 3]));
    expect(dec.stateBytes).toBe(bytes);
    expect(bytes).toBeLessThan(2 * (100 * (8 + 3) * 8 + 2 * 8 * 4 * 8) + 1024);
  });

  it('a bad token is refused before anything changes: the stream continues as if it never came', () => {
    const rng = new Rng(9);
    const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 6 }, rpe: { past: { bias: [0, -1, -2, -3], tail: { decay: 0.2 } } } };
    const n = 40;
    const q = randomTensor(rng, [2, n, 3]);
    const k = randomTensor(rng, [2, n, 3]);
    const v = randomTensor(rng, [2, n, 2]);
    const clean = streamDecoder(new Decoder(config, { backend }), q, k, v, new Array(n).fill(1));
    const dec = new Decoder(config, { backend });
    const z = ndarray(new Float64Array(2 * n * 2), [2, n, 2]);
    for (let i = 0; i < n; i++) {
      if (i === 17) {
        const bad = rows(q, i, i + 1, true);
        bad.set(1, 2, NaN);
        expect(() => dec.step(bad, rows(k, i, i + 1, true), rows(v, i, i + 1, true))).toThrow(ShapeError);
        expect(() => dec.step(rows(q, i, i + 1, true), rows(k, i, i + 1, true), ndarray(new Float64Array(3), [1, 3]))).toThrow(/v must have shape \[heads=2, valueDim=2\], got \[1, 3\]/);
        expect(() => dec.chunk(rows(q, i, i + 3), rows(k, i, i + 2), rows(v, i, i + 3))).toThrow(ShapeError);
        expect(dec.position).toBe(17);
      }
      const out = dec.step(rows(q, i, i + 1, true), rows(k, i, i + 1, true), rows(v, i, i + 1, true));
      for (let h = 0; h < 2; h++) for (let c = 0; c < 2; c++) z.set(h, i, c, out.get(h, c));
    }
    expect(Array.from(z.data)).toEqual(Array.from(clean.data));
  });

  it('refuses bidirectional configs', () => {
    expect(() => new Decoder({ heads: 1, keyDim: 2, valueDim: 2, causal: false, features: { kind: 'relu' }, rpe: { past: { bias: [0] } } })).toThrow(StateError);
  });

  it('heads with RPE tables of different lengths and tails: any step/chunk mix equals attention(), and a snapshot at any split continues bit-identically', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 220 }),
          Ks: fc.array(fc.integer({ min: 1, max: 160 }), { minLength: 2, maxLength: 4 }),
          tails: fc.array(tailArb, { minLength: 4, maxLength: 4 }),
          d: fc.integer({ min: 1, max: 4 }),
          dv: fc.integer({ min: 1, max: 3 }),
          m: fc.integer({ min: 1, max: 8 }),
          kind: fc.constantFrom('prf', 'prf', 'elu+1', 'relu') as fc.Arbitrary<'prf' | 'elu+1' | 'relu'>,
          sizes: fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 70 })), { minLength: 1, maxLength: 30 }),
          method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          split: fc.double({ min: 0, max: 1, noNaN: true }),
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          const heads = c.Ks.length;
          const rpe = c.Ks.map((K, h) => ({ past: { bias: Array.from({ length: K }, () => (rng.nextFloat64() < 0.1 ? -Infinity : -8 + 10 * rng.nextFloat64())), tail: c.tails[h]! } }));
          const features = c.kind === 'prf' ? { kind: 'prf' as const, count: c.m, seed: c.seed } : { kind: c.kind };
          const config: AttentionConfig = { heads, keyDim: c.d, valueDim: c.dv, features, rpe };
          const q = randomTensor(rng, [heads, c.n, c.d]);
          const k = randomTensor(rng, [heads, c.n, c.d], 2);
          const v = randomTensor(rng, [heads, c.n, c.dv]);
          const sizes = [...c.sizes];
          while (sizes.reduce((a, b) => a + b, 0) < c.n) sizes.push(...c.sizes);
          const dec = new Decoder(config, { backend, method: c.method });
          const z = streamDecoder(dec, q, k, v, sizes);
          expect(dec.windows).toEqual(c.Ks);
          const err = maxRowError(config, q, k, v, z);
          if (!(err <= BAR)) throw new Error(`per-head windows: stream row error ${err}`);
          // uninterrupted vs snapshot-restore at a split point, same call sizes after it
          const at = Math.floor(c.split * c.n);
          const a = new Decoder(config, { backend, method: c.method });
          streamDecoder(a, rows(q, 0, at), rows(k, 0, at), rows(v, 0, at), sizes);
          const b = Decoder.restore(a.snapshot());
          const rest = [rows(q, at, c.n), rows(k, at, c.n), rows(v, at, c.n)] as const;
          const za = streamDecoder(a, ...rest, sizes);
          const zb = streamDecoder(b, ...rest, sizes);
          expect(Array.from(zb.data)).toEqual(Array.from(za.data));
          expect(b.position).toBe(c.n);
        },
      ),
      { numRuns: 80, seed: 11 },
    );
  });

  it('a long stream does not drift: 200k tokens at small m, dv against exact sums at sampled positions', () => {
    const rng = new Rng(12);
    const K = 16;
    const bias = Array.from({ length: K }, (_, t) => -0.1 * t);
    const config: AttentionConfig = { heads: 1, keyDim: 2, valueDim: 1, features: { kind: 'prf', count: 2, seed: 3 }, rpe: { past: { bias, tail: 'clip' } } };
    const dec = new Decoder(config, { backend, method: 'direct' });
    const total = 200_000;
    const L = 4000;
    // exact running sums (in float64 with Kahan) of the far field, computed independently per sampled query
    const qAll = randomTensor(rng, [1, total, 2]);
    const kAll = randomTensor(rng, [1, total, 2]);
    const vAll = randomTensor(rng, [1, total, 1]);
    let worst = 0;
    for (let p = 0; p < total; p += L) {
      const z = dec.chunk(rows(qAll, p, p + L), rows(kAll, p, p + L), rows(vAll, p, p + L));
      // check the last row of each chunk against an exact O(position) sum through the reference formula
      const i = p + L - 1;
      const zi = z.get(0, L - 1, 0);
      const cfg = dec.config;
      const W = (cfg.features as { projection: Float64Array }).projection;
      const phi = (h: NdArray, j: number) => {
        const x0 = h.get(0, j, 0), x1 = h.get(0, j, 1);
        const nrm = Math.hypot(x0, x1) || 1;
        return [0, 1].map((r) => Math.exp((W[r * 2]! * x0 + W[r * 2 + 1]! * x1) / nrm - 0.5));
      };
      const pq = phi(qAll, i);
      let num = 0, den = 0, cn = 0, cd = 0;
      for (let j = 0; j <= i; j++) {
        const pk = phi(kAll, j);
        const w = Math.exp(bias[Math.min(i - j, K - 1)]!) * (pq[0]! * pk[0]! + pq[1]! * pk[1]!);
        let y = w * vAll.get(0, j, 0) - cn; let t = num + y; cn = (t - num) - y; num = t;
        y = w - cd; t = den + y; cd = (t - den) - y; den = t;
      }
      worst = Math.max(worst, Math.abs(zi - num / den) / Math.abs(num / den));
    }
    expect(worst).toBeLessThan(1e-9);
  });
});
