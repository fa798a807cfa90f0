// Helpers of the stream tests: a small config, seeded token sequences, and comparison with attention().
import ndarray, { type NdArray } from 'ndarray';
import { expect } from 'vitest';
import { attention, type AttentionConfig } from '../../src/index.js';
import { Rng } from '../../src/math/rng.js';
import type { Attended, ChunkToken, Token } from '../../src/stream/index.js';
import { sliceRows } from '../helpers.js';

export const HEADS = 2;
export const D = 3;
export const DV = 2;

export function smallConfig(K = 4): AttentionConfig {
  const bias = Array.from({ length: K }, (_, t) => -0.3 * t);
  return { heads: HEADS, keyDim: D, valueDim: DV, features: { kind: 'prf', count: 6, seed: 7 }, rpe: { past: { bias, tail: { decay: 0.1 } } } };
}

export interface Sequence {
  q: NdArray<Float64Array>;
  k: NdArray<Float64Array>;
  v: NdArray<Float64Array>;
  n: number;
}

export function randomSequence(n: number, seed = 1): Sequence {
  const rng = new Rng(seed);
  const make = (dim: number): NdArray<Float64Array> => {
    const data = new Float64Array(HEADS * n * dim);
    for (let i = 0; i < data.length; i++) data[i] = rng.nextGaussian() * 0.5;
    return ndarray(data, [HEADS, n, dim]);
  };
  return { q: make(D), k: make(D), v: make(DV), n };
}

export function tokensOf(s: Sequence): Token[] {
  return Array.from({ length: s.n }, (_, i) => ({ q: sliceRows(s.q, i, i + 1, true), k: sliceRows(s.k, i, i + 1, true), v: sliceRows(s.v, i, i + 1, true) }));
}

export function chunksOf(s: Sequence, sizes: number[]): ChunkToken[] {
  const out: ChunkToken[] = [];
  let pos = 0;
  for (const size of sizes) {
    const L = Math.min(size, s.n - pos);
    if (L <= 0) break;
    out.push({ q: sliceRows(s.q, pos, pos + L), k: sliceRows(s.k, pos, pos + L), v: sliceRows(s.v, pos, pos + L) });
    pos += L;
  }
  return out;
}

/** A token whose q holds NaN (the decoder refuses it with a ShapeError). */
export function badToken(): Token {
  const q = ndarray(new Float64Array(HEADS * D).fill(Number.NaN), [HEADS, D]);
  return { q, k: ndarray(new Float64Array(HEADS * D), [HEADS, D]), v: ndarray(new Float64Array(HEADS * DV), [HEADS, DV]) };
}

/** Whole-sequence attention as rows [heads, dv] per position. */
export function wholeRows(config: AttentionConfig, s: Sequence): number[][] {
  const z = attention(config, s.q, s.k, s.v);
  return Array.from({ length: s.n }, (_, i) => {
    const row: number[] = [];
    for (let h = 0; h < HEADS; h++) for (let c = 0; c < DV; c++) row.push(z.get(h, i, c));
    return row;
  });
}

export function rowOf(a: Attended): number[] {
  const row: number[] = [];
  for (let h = 0; h < HEADS; h++) for (let c = 0; c < DV; c++) row.push(a.z.get(h, c));
  return row;
}

export function expectRowsClose(got: readonly Attended[], want: number[][], offset = 0, tol = 1e-12): void {
  expect(got.map((a) => a.position)).toEqual(want.map((_, i) => offset + i));
  let worst = 0;
  got.forEach((a, i) => {
    const r = rowOf(a);
    const w = want[i]!;
    r.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - w[j]!))));
  });
  expect(worst).toBeLessThanOrEqual(tol);
}
