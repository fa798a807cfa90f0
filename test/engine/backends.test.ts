// The two backends through the public API: outputs within 1e-12 of each other (attention, step, chunk), each
// backend bit-for-bit reproducible, and a snapshot restoring onto the backend it was made on.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { attention, Decoder, type AttentionConfig } from '../../src/index.js';
import { wasmSupported } from '../../src/backend/wasm.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor, sliceRows } from '../helpers.js';

/** max |a - b| / max |b|, per head-row scale */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? e : e / s;
}

describe('backends', () => {
  it('WASM SIMD is available in this Node (the suite would otherwise test JS twice)', () => {
    expect(wasmSupported()).toBe(true);
  });

  it('attention: JS and WASM agree to 1e-12 over random configs, methods and blocks; each is reproducible', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 600 }),
          K: fc.integer({ min: 1, max: 700 }),
          heads: fc.integer({ min: 1, max: 3 }),
          d: fc.integer({ min: 1, max: 9 }),
          dv: fc.integer({ min: 1, max: 9 }),
          m: fc.integer({ min: 1, max: 17 }),
          causal: fc.boolean(),
          method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          block: fc.constantFrom(0, 16, 32, 128),
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          const bias = Array.from({ length: c.K }, () => -10 + 12 * rng.nextFloat64());
          const config: AttentionConfig = { heads: c.heads, keyDim: c.d, valueDim: c.dv, causal: c.causal, features: { kind: 'prf', count: c.m, seed: c.seed }, rpe: { past: { bias, tail: 'clip' } } };
          const q = randomTensor(rng, [c.heads, c.n, c.d]);
          const k = randomTensor(rng, [c.heads, c.n, c.d]);
          const v = randomTensor(rng, [c.heads, c.n, c.dv]);
          const opts = { method: c.method, ...(c.block > 0 ? { block: c.block } : {}) };
          const js = attention(config, q, k, v, { ...opts, backend: 'js' }).data;
          const wasm = attention(config, q, k, v, { ...opts, backend: 'wasm' }).data;
          const again = attention(config, q, k, v, { ...opts, backend: 'wasm' }).data;
          expect(relDiff(wasm, js)).toBeLessThan(1e-12);
          expect(Array.from(again)).toEqual(Array.from(wasm));
        },
      ),
      { numRuns: 60, seed: 21 },
    );
  });

  it('decoder steps and chunks: JS and WASM agree to 1e-12; a WASM snapshot restores onto WASM and continues bit for bit', () => {
    const rng = new Rng(4);
    const config: AttentionConfig = { heads: 3, keyDim: 16, valueDim: 12, features: { kind: 'prf', count: 24, seed: 2 }, rpe: [{ past: { bias: Array.from({ length: 512 }, (_, t) => -0.01 * t) } }, { past: { bias: [0, -1, -2], tail: { decay: 0.1 } } }, { past: { bias: Array.from({ length: 100 }, () => -rng.nextFloat64()), tail: 'zero' } }] };
    const n = 900;
    const q = randomTensor(rng, [3, n, 16]);
    const k = randomTensor(rng, [3, n, 16]);
    const v = randomTensor(rng, [3, n, 12]);
    const run = (dec: Decoder, from: number, to: number): number[] => {
      const out: number[] = [];
      for (let p = from; p < to; ) {
        if (p % 7 === 3) {
          const z = dec.step(sliceRows(q, p, p + 1, true), sliceRows(k, p, p + 1, true), sliceRows(v, p, p + 1, true));
          out.push(...z.data);
          p++;
        } else {
          const L = Math.min(to - p, 97);
          out.push(...dec.chunk(sliceRows(q, p, p + L), sliceRows(k, p, p + L), sliceRows(v, p, p + L)).data);
          p += L;
        }
      }
      return out;
    };
    const js = new Decoder(config, { backend: 'js' });
    const wasm = new Decoder(config, { backend: 'wasm' });
    expect(wasm.backend).toBe('wasm');
    const zj = run(js, 0, 600);
    const zw = run(wasm, 0, 600);
    expect(relDiff(zw, zj)).toBeLessThan(1e-12);
    const restored = Decoder.restore(wasm.snapshot());
    expect(restored.backend).toBe('wasm');
    const tail = run(wasm, 600, n);
    expect(run(restored, 600, n)).toEqual(tail);
    expect(relDiff(tail, run(js, 600, n))).toBeLessThan(1e-12);
  });
});
