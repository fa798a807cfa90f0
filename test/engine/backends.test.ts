// The two backends through the public API: outputs within 1e-12 of each other, row by row (attention, step,
// chunk), over every tail ('clip', 'zero', decay), every feature map (PRF with l2 / scale / none normalization,
// elu+1, relu), both directions (causal; bidirectional with mirrored or explicit future sides), tables with
// -Infinity biases; each backend bit-for-bit reproducible, and a snapshot restoring onto its backend.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { NdArray } from 'ndarray';
import { attention, Decoder, type AttentionConfig, type RpeSide } from '../../src/index.js';
import { resolveConfig } from '../../src/engine/config.js';
import { referenceHead } from '../../src/math/reference.js';
import { wasmSupported } from '../../src/backend/wasm.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor, sliceRows } from '../helpers.js';
import { featureArb, side as sideOf, sideSpecArb, type SideSpec } from '../arbitraries.js';

/** DESIGN section 10: the JS and WASM backends agree to 1e-12. */
const PROMISE = 1e-12;

/**
 * Per row i of [heads, n, dv] outputs: max_col |a - b| / s_i, where s_i is the oracle's magnitude-weighted
 * mean of |v| in that row (the normwise scale of z_i, free of cancellation); a row whose scale is 0 (no
 * visible key) must be equal exactly. Returns the worst row.
 */
function rowDiff(config: AttentionConfig, q: NdArray, k: NdArray, v: NdArray, a: ArrayLike<number>, b: ArrayLike<number>, rows: [number, number] = [0, q.shape[1]!]): number {
  const cfg = resolveConfig(config);
  const n = q.shape[1]!;
  const { heads, keyDim: d, valueDim: dv } = cfg;
  const flat = (t: NdArray, h: number, dim: number): Float64Array => Float64Array.from({ length: n * dim }, (_, i) => t.get(h, Math.floor(i / dim), i % dim));
  const ref = new Float64Array(n * dv);
  const abs = new Float64Array(n * dv);
  const [r0, r1] = rows;
  const L = r1 - r0;
  let worst = 0;
  for (let h = 0; h < heads; h++) {
    referenceHead(cfg, h, flat(q, h, d), flat(k, h, d), flat(v, h, dv), n, ref, abs);
    for (let i = r0; i < r1; i++) {
      let e = 0;
      let s = 0;
      for (let c = 0; c < dv; c++) {
        const at = (h * L + i - r0) * dv + c;
        e = Math.max(e, Math.abs(a[at]! - b[at]!));
        s = Math.max(s, abs[i * dv + c]!);
      }
      const r = s === 0 ? (e === 0 ? 0 : Infinity) : e / s;
      if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
    }
  }
  return worst;
}

/** A side of K biases in [-10, 2], about 1 in 8 of them -Infinity (all of them, sometimes). */
const sideArb = (maxK: number): fc.Arbitrary<SideSpec> => sideSpecArb(maxK, [0, 0.125, 0.125, 1]);
const side = (s: SideSpec): RpeSide => sideOf(s, -10, 2);

describe('backends', () => {
  it('WASM SIMD is available in this Node (the suite would otherwise test JS twice)', () => {
    expect(wasmSupported()).toBe(true);
  });

  it('attention: JS and WASM agree to 1e-12 per row over every tail, feature map and direction, methods and blocks; each is reproducible', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 300 }),
          heads: fc.integer({ min: 1, max: 2 }),
          d: fc.integer({ min: 1, max: 6 }),
          dv: fc.integer({ min: 1, max: 5 }),
          features: featureArb,
          past: sideArb(350),
          // bidirectional: the future side mirrors the past (null) or has its own table and tail
          direction: fc.oneof(fc.constant('causal' as const), fc.constant(null), sideArb(350)),
          method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          block: fc.constantFrom(0, 16, 64),
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          const causal = c.direction === 'causal';
          const rpe = { past: side(c.past), ...(c.direction !== 'causal' && c.direction !== null ? { future: side(c.direction) } : {}) };
          const config: AttentionConfig = { heads: c.heads, keyDim: c.d, valueDim: c.dv, causal, features: c.features, rpe };
          const q = randomTensor(rng, [c.heads, c.n, c.d]);
          const k = randomTensor(rng, [c.heads, c.n, c.d]);
          const v = randomTensor(rng, [c.heads, c.n, c.dv]);
          const opts = { method: c.method, ...(c.block > 0 ? { block: c.block } : {}) };
          const js = attention(config, q, k, v, { ...opts, backend: 'js' }).data;
          const wasm = attention(config, q, k, v, { ...opts, backend: 'wasm' }).data;
          const again = attention(config, q, k, v, { ...opts, backend: 'wasm' }).data;
          const err = rowDiff(config, q, k, v, wasm, js);
          if (!(err <= PROMISE)) throw new Error(`JS and WASM differ by ${err} in a row (normwise), over the ${PROMISE} promise`);
          expect(Array.from(again)).toEqual(Array.from(wasm));
        },
      ),
      { numRuns: 120, seed: 21 },
    );
  });

  it('decoder steps and chunks: JS and WASM agree to 1e-12 per row over every tail and feature map', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 200 }),
          heads: fc.integer({ min: 1, max: 3 }),
          d: fc.integer({ min: 1, max: 6 }),
          dv: fc.integer({ min: 1, max: 5 }),
          features: featureArb,
          sides: fc.array(sideArb(120), { minLength: 1, maxLength: 3 }),
          method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          sizes: fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 70 })), { minLength: 1, maxLength: 12 }),
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          // one RPE per head (heads beyond the drawn sides reuse the last)
          const rpe = Array.from({ length: c.heads }, (_, h) => ({ past: side(c.sides[Math.min(h, c.sides.length - 1)]!) }));
          const config: AttentionConfig = { heads: c.heads, keyDim: c.d, valueDim: c.dv, features: c.features, rpe };
          const q = randomTensor(rng, [c.heads, c.n, c.d]);
          const k = randomTensor(rng, [c.heads, c.n, c.d]);
          const v = randomTensor(rng, [c.heads, c.n, c.dv]);
          const out = (backend: 'js' | 'wasm'): Float64Array => {
            const dec = new Decoder(config, { backend, method: c.method });
            const z = new Float64Array(c.heads * c.n * c.dv);
            for (let p = 0, i = 0; p < c.n; i++) {
              const size = c.sizes[i % c.sizes.length]!;
              const L = Math.min(size, c.n - p);
              const part = size === 1 ? dec.step(sliceRows(q, p, p + 1, true), sliceRows(k, p, p + 1, true), sliceRows(v, p, p + 1, true)).data : dec.chunk(sliceRows(q, p, p + L), sliceRows(k, p, p + L), sliceRows(v, p, p + L)).data;
              for (let h = 0; h < c.heads; h++) z.set(part.subarray(h * L * c.dv, (h + 1) * L * c.dv), (h * c.n + p) * c.dv);
              p += L;
            }
            return z;
          };
          const err = rowDiff(config, q, k, v, out('wasm'), out('js'));
          if (!(err <= PROMISE)) throw new Error(`JS and WASM decoders differ by ${err} in a row (normwise), over the ${PROMISE} promise`);
        },
      ),
      { numRuns: 80, seed: 5 },
    );
  });

  it('a WASM snapshot restores onto WASM and continues bit for bit; both continuations stay within 1e-12 of JS per row', () => {
    const rng = new Rng(4);
    const config: AttentionConfig = { heads: 3, keyDim: 16, valueDim: 12, features: { kind: 'prf', count: 24, seed: 2 }, rpe: [{ past: { bias: Array.from({ length: 512 }, (_, t) => -0.01 * t) } }, { past: { bias: [0, -1, -2], tail: { decay: 0.1 } } }, { past: { bias: Array.from({ length: 100 }, () => -rng.nextFloat64()), tail: 'zero' } }] };
    const n = 900;
    const q = randomTensor(rng, [3, n, 16]);
    const k = randomTensor(rng, [3, n, 16]);
    const v = randomTensor(rng, [3, n, 12]);
    /** outputs of rows [from, to) as [heads, to - from, dv] */
    const run = (dec: Decoder, from: number, to: number): Float64Array => {
      const z = new Float64Array(3 * (to - from) * 12);
      for (let p = from; p < to; ) {
        const L = p % 7 === 3 ? 1 : Math.min(to - p, 97);
        const part = L === 1 ? dec.step(sliceRows(q, p, p + 1, true), sliceRows(k, p, p + 1, true), sliceRows(v, p, p + 1, true)).data : dec.chunk(sliceRows(q, p, p + L), sliceRows(k, p, p + L), sliceRows(v, p, p + L)).data;
        for (let h = 0; h < 3; h++) z.set(part.subarray(h * L * 12, (h + 1) * L * 12), (h * (to - from) + p - from) * 12);
        p += L;
      }
      return z;
    };
    const js = new Decoder(config, { backend: 'js' });
    const wasm = new Decoder(config, { backend: 'wasm' });
    expect(wasm.backend).toBe('wasm');
    expect(rowDiff(config, q, k, v, run(wasm, 0, 600), run(js, 0, 600), [0, 600])).toBeLessThanOrEqual(PROMISE);
    const restored = Decoder.restore(wasm.snapshot());
    expect(restored.backend).toBe('wasm');
    const tail = run(wasm, 600, n);
    expect(Array.from(run(restored, 600, n))).toEqual(Array.from(tail));
    expect(rowDiff(config, q, k, v, tail, run(js, 600, n), [600, n])).toBeLessThanOrEqual(PROMISE);
  });
});
