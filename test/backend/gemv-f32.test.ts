// The float32 one-row product of a float32 model session (assembly/gemm.ts gemvPackedF32 through
// Workspace.gemvF32) against a plain float32 emulation of the same order: the row rounded to float32, per output
// an f32 sum (Math.fround after every multiply and add) over depth blocks of 256 in k order, each block widened and
// added to the float64 output. Bit-identical over random shapes (N not a multiple of 4, K over several blocks),
// accumulate or not, operands inside and outside the workspace; and it declines what it does not handle.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createWorkspace } from '../../src/backend/index.js';
import { packedLength } from '../../src/math/gemm.js';

const KC = 256; // assembly/layout.ts GEMM_KC

function reference(x: Float64Array, W: Float32Array, c: Float64Array, N: number, K: number, accumulate: boolean): void {
  const f = Math.fround;
  for (let n = 0; n < N; n++) {
    let out = accumulate ? c[n]! : 0;
    for (let p0 = 0; p0 < K; p0 += KC) {
      let s = 0;
      for (let k = p0; k < Math.min(K, p0 + KC); k++) s = f(s + f(f(x[k]!) * W[n * K + k]!));
      out = p0 === 0 && !accumulate ? s : out + s;
    }
    c[n] = out;
  }
}

describe('gemvF32 (WASM): the float32 one-row product', () => {
  it('is bit-identical to the float32 emulation over random N, K, accumulate, operands in or out of the workspace', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 600 }), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (N, K, accumulate, inside, seed) => {
        let r = seed;
        const rnd = (): number => ((r = (Math.imul(r, 1103515245) + 12345) >>> 0), r / 2 ** 32 - 0.5);
        const ws = createWorkspace('wasm', packedLength(N, K) + 4 * (N + K) + 4096);
        const W = new Float64Array(N * K).map(() => Math.fround(rnd()));
        const panels = ws.f32(packedLength(N, K));
        ws.packPanels(W, 0, N, K, panels);
        const x = inside ? ws.f64(K) : new Float64Array(K);
        x.forEach((_, i) => (x[i] = rnd() * 3));
        const c = inside ? ws.f64(N) : new Float64Array(N);
        c.forEach((_, i) => (c[i] = rnd()));
        const want = c.slice();
        reference(x, Float32Array.from(W), want, N, K, accumulate);
        const done = ws.gemvF32!({ a: x, aOff: 0, b: panels, bOff: 0, c, cOff: 0, M: 1, N, K, accumulate });
        expect(done).toBe(true);
        expect(Array.from(c)).toEqual(Array.from(want));
      }),
      { numRuns: 60 },
    );
  });

  it('declines (returns false, writes nothing) for M > 1 and float64 panels; the JS workspace has none', () => {
    const ws = createWorkspace('wasm', 4096);
    const W = new Float64Array(8 * 5).map((_, i) => Math.fround(i / 7));
    const p32 = ws.f32(packedLength(8, 5));
    ws.packPanels(W, 0, 8, 5, p32);
    const p64 = ws.f64(packedLength(8, 5));
    ws.packPanels(W, 0, 8, 5, p64);
    const c = new Float64Array(16).fill(7);
    expect(ws.gemvF32!({ a: new Float64Array(10), aOff: 0, b: p32, bOff: 0, c, cOff: 0, M: 2, N: 8, K: 5, accumulate: false })).toBe(false);
    expect(ws.gemvF32!({ a: new Float64Array(5), aOff: 0, b: p64, bOff: 0, c, cOff: 0, M: 1, N: 8, K: 5, accumulate: false })).toBe(false);
    expect(Array.from(c)).toEqual(new Array(16).fill(7));
    expect(createWorkspace('js', 0).gemvF32).toBeUndefined();
  });
});
