// Property: for random small configs, sequences and groupings, every stream path (attend, grouped attend,
// attendChunks, attendAsync) gives attention() of the whole sequence within 1e-12 (absolute).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray, { type NdArray } from 'ndarray';
import { from, lastValueFrom, toArray } from 'rxjs';
import { attention, type AttentionConfig, type Tail } from '../../src/index.js';
import { Rng } from '../../src/math/rng.js';
import { attend, attendAsync, attendChunks, type Attended, type Token } from '../../src/stream/index.js';

function setup(seed: number, heads: number, d: number, dv: number, n: number, K: number, kind: 'prf' | 'elu+1' | 'relu', tail: Tail) {
  const rng = new Rng(seed);
  const bias = Array.from({ length: K }, () => -rng.nextFloat64() * 2);
  const config: AttentionConfig = { heads, keyDim: d, valueDim: dv, features: kind === 'prf' ? { kind, count: 5, seed } : { kind }, rpe: { past: { bias, tail } } };
  const t = (dim: number): NdArray<Float64Array> => ndarray(Float64Array.from({ length: heads * n * dim }, () => rng.nextGaussian() * 0.7), [heads, n, dim]);
  const q = t(d);
  const k = t(d);
  const v = t(dv);
  const slice = (x: NdArray<Float64Array>, r0: number, r1: number, single: boolean): NdArray<Float64Array> => {
    const dim = x.shape[2]!;
    const L = r1 - r0;
    const out = new Float64Array(heads * L * dim);
    for (let h = 0; h < heads; h++) for (let i = 0; i < L; i++) for (let c = 0; c < dim; c++) out[(h * L + i) * dim + c] = x.get(h, r0 + i, c);
    return ndarray(out, single ? [heads, dim] : [heads, L, dim]);
  };
  const tokens: Token[] = Array.from({ length: n }, (_, i) => ({ q: slice(q, i, i + 1, true), k: slice(k, i, i + 1, true), v: slice(v, i, i + 1, true) }));
  const whole = attention(config, q, k, v);
  return { config, tokens, whole, slice, q, k, v };
}

function worstOf(outs: Attended[], whole: NdArray<Float64Array>): number {
  let worst = 0;
  const [heads, , dv] = whole.shape as [number, number, number];
  outs.forEach((o, i) => {
    expect(o.position).toBe(i);
    for (let h = 0; h < heads; h++) for (let c = 0; c < dv; c++) worst = Math.max(worst, Math.abs(o.z.get(h, c) - whole.get(h, i, c)));
  });
  return worst;
}

describe('stream paths equal attention() (property)', () => {
  it('random configs, lengths and groupings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          seed: fc.integer({ min: 0, max: 1e6 }),
          heads: fc.integer({ min: 1, max: 3 }),
          d: fc.integer({ min: 1, max: 4 }),
          dv: fc.integer({ min: 1, max: 3 }),
          n: fc.integer({ min: 1, max: 40 }),
          K: fc.integer({ min: 1, max: 12 }),
          kind: fc.constantFrom('prf' as const, 'elu+1' as const, 'relu' as const),
          tail: fc.constantFrom<Tail>('clip', 'zero', { decay: 0.3 }),
          count: fc.integer({ min: 2, max: 9 }),
          chunk: fc.integer({ min: 1, max: 13 }),
        }),
        async ({ seed, heads, d, dv, n, K, kind, tail, count, chunk }) => {
          const { config, tokens, whole, slice, q, k, v } = setup(seed, heads, d, dv, n, K, kind, tail);
          const plain = await lastValueFrom(from(tokens).pipe(attend(config), toArray()));
          expect(worstOf(plain, whole)).toBeLessThanOrEqual(1e-12);
          const grouped = await lastValueFrom(from(tokens).pipe(attend(config, { group: { count } }), toArray()));
          expect(worstOf(grouped, whole)).toBeLessThanOrEqual(1e-12);
          const pulled: Attended[] = [];
          for await (const a of attendAsync(config, tokens, { group: { count } })) pulled.push(a);
          expect(worstOf(pulled, whole)).toBeLessThanOrEqual(1e-12);
          const chunks = [];
          for (let s = 0; s < n; s += chunk) chunks.push({ q: slice(q, s, Math.min(n, s + chunk), false), k: slice(k, s, Math.min(n, s + chunk), false), v: slice(v, s, Math.min(n, s + chunk), false) });
          const outs = await lastValueFrom(from(chunks).pipe(attendChunks(config), toArray()));
          const rows: Attended[] = [];
          for (const c of outs) {
            const L = c.z.shape[1]!;
            for (let i = 0; i < L; i++) rows.push({ position: c.position + i, z: ndarray(Float64Array.from({ length: heads * dv }, (_, j) => c.z.get(Math.floor(j / dv), i, j % dv)), [heads, dv]) });
          }
          expect(worstOf(rows, whole)).toBeLessThanOrEqual(1e-12);
        },
      ),
      { numRuns: 60, seed: 20261125 },
    );
  });
});
