// The plain GEMM kernels of src/math/gemm.ts: packPanels lays W out as documented, and gemmPacked (the one-row
// product of generation when M = 1) is bit-identical to gemm on the unpacked W, over odd sizes, offsets and
// accumulation; both against a direct triple loop.
import { describe, expect, it } from 'vitest';
import { firstInexactFloat32, gemm, gemmPacked, packPanels, packedLength } from '../../src/math/gemm.js';
import type { GemmArgs } from '../../src/math/kernelArgs.js';
import { Rng } from '../../src/math/rng.js';

function rand(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat64() * 2 - 1;
  return a;
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

const SHAPES: ReadonlyArray<readonly [number, number, number]> = [
  [1, 1, 1],
  [1, 3, 5],
  [1, 4, 4],
  [1, 5, 7],
  [1, 7, 300],
  [1, 344, 128],
  [1, 128, 344],
  [2, 9, 3],
  [3, 1, 7],
  [5, 6, 0],
  [17, 13, 9],
  [4, 256, 257],
];

describe('packPanels', () => {
  it('puts W[4j + r, k] at ((j K + k) 4 + r), zeros past N, from offsets', () => {
    const rng = new Rng(1);
    for (const [N, K] of [[1, 1], [3, 5], [4, 2], [9, 7], [13, 1]] as const) {
      const W = rand(rng, 2 + N * K);
      const out = new Float64Array(3 + packedLength(N, K)).fill(NaN);
      packPanels(W, 2, N, K, out, 3);
      expect(packedLength(N, K)).toBe(Math.ceil(N / 4) * 4 * K);
      for (let j = 0; j < Math.ceil(N / 4); j++) {
        for (let k = 0; k < K; k++) {
          for (let r = 0; r < 4; r++) {
            const want = 4 * j + r < N ? W[2 + (4 * j + r) * K + k]! : 0;
            expect(out[3 + (j * K + k) * 4 + r]).toBe(want);
          }
        }
      }
      expect(out.subarray(0, 3).every(Number.isNaN)).toBe(true);
    }
  });
});

describe('gemmPacked', () => {
  it('is bit-identical to gemm on the unpacked W (M = 1 included), and close to a direct triple loop', () => {
    const rng = new Rng(2);
    for (const [M, N, K] of SHAPES) {
      for (const accumulate of [false, true]) {
        const [aOff, bOff, cOff] = [3, 5, 2];
        const a = rand(rng, aOff + M * K);
        const W = rand(rng, N * K);
        const c0 = rand(rng, cOff + M * N + 4);
        const packed = new Float64Array(bOff + packedLength(N, K));
        packPanels(W, 0, N, K, packed, bOff);
        const want = c0.slice();
        gemm({ a, aOff, b: W, bOff: 0, c: want, cOff, M, N, K, accumulate });
        const got = c0.slice();
        const g: GemmArgs = { a, aOff, b: packed, bOff, c: got, cOff, M, N, K, accumulate };
        gemmPacked(g);
        expect(sameBits(got, want), `${M}x${N}x${K} accumulate ${accumulate}`).toBe(true);
        expect(got.every(Number.isFinite)).toBe(true);
        // the direct definition, to rounding
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < N; j++) {
            let s = accumulate ? c0[cOff + i * N + j]! : 0;
            let mag = Math.abs(s);
            for (let k = 0; k < K; k++) {
              s += a[aOff + i * K + k]! * W[j * K + k]!;
              mag += Math.abs(a[aOff + i * K + k]! * W[j * K + k]!);
            }
            expect(Math.abs(got[cOff + i * N + j]! - s)).toBeLessThanOrEqual(1e-14 * (mag + 1));
          }
        }
      }
    }
  });

  it('leaves c outside [cOff, cOff + M N) untouched, and K = 0 gives zeros (or c unchanged when accumulating)', () => {
    const c = new Float64Array(10).fill(7);
    gemmPacked({ a: new Float64Array(0), aOff: 0, b: new Float64Array(0), bOff: 0, c, cOff: 2, M: 1, N: 5, K: 0, accumulate: false });
    expect(Array.from(c)).toEqual([7, 7, 0, 0, 0, 0, 0, 7, 7, 7]);
    gemmPacked({ a: new Float64Array(0), aOff: 0, b: new Float64Array(0), bOff: 0, c, cOff: 0, M: 1, N: 2, K: 0, accumulate: true });
    expect(Array.from(c)).toEqual([7, 7, 0, 0, 0, 0, 0, 7, 7, 7]);
  });
});

describe('float32 panels (weights that are exactly float32)', () => {
  const f32 = (a: Float64Array): Float64Array => a.map(Math.fround);

  it('hold the same values as float64 panels, and JS gemmPacked on them gives the bits of gemm on W', () => {
    const rng = new Rng(3);
    for (const [M, N, K] of SHAPES) {
      for (const accumulate of [false, true]) {
        const W = f32(rand(rng, N * K));
        const p64 = new Float64Array(packedLength(N, K));
        const p32 = new Float32Array(2 + packedLength(N, K));
        packPanels(W, 0, N, K, p64);
        packPanels(W, 0, N, K, p32, 2);
        expect(sameBits(Float64Array.from(p32.subarray(2)), p64), `${N}x${K}`).toBe(true);
        const a = rand(rng, M * K);
        const c0 = rand(rng, M * N);
        const want: GemmArgs = { a, aOff: 0, b: W, bOff: 0, c: c0.slice(), cOff: 0, M, N, K, accumulate };
        gemm(want);
        const got = { a, aOff: 0, b: p32, bOff: 2, c: c0.slice(), cOff: 0, M, N, K, accumulate };
        gemmPacked(got);
        expect(sameBits(got.c, want.c), `${M}x${N}x${K} accumulate ${accumulate}`).toBe(true);
      }
    }
  });

  it('refuse a weight that float32 would round, naming it, and leave the panels untouched', () => {
    expect(firstInexactFloat32(Float64Array.of(0.5, -0, NaN, Infinity, 2 ** -149, 3.4028234663852886e38))).toBe(-1);
    expect(firstInexactFloat32(Float64Array.of(0.5, 0.1, 0.25))).toBe(1);
    expect(firstInexactFloat32(Float64Array.of(0.1, 0.5, 0.25, 1e-46), 1)).toBe(2); // below float32's subnormals
    const W = Float64Array.of(1, 2, 3, 4, 5, 6 + 2 ** -30);
    const out = new Float32Array(packedLength(2, 3)).fill(7);
    expect(() => packPanels(W, 0, 2, 3, out)).toThrow(/exactly float32; W\[5\] \(row 1, column 2\) is 6\.0000000009/);
    expect(out.every((x) => x === 7)).toBe(true);
    expect(() => packPanels(W, 0, 2, 3, new Float64Array(packedLength(2, 3)))).not.toThrow();
  });
});
