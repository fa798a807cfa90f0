// Matrix product for linear layers: c[M, N] (+)= a[M, K] . b[N, K]^T, all row-major (b is a weight
// [out, in], so y = x W^T reads both operands along contiguous rows). The plain reference kernel; the WASM
// backend packs panels for SIMD. Rows of b are taken four at a time so each a row is read once per four
// outputs.
import type { GemmArgs } from './kernelArgs.js';

export function gemm(g: GemmArgs): void {
  const { a, aOff, b, bOff, c, cOff, M, N, K, accumulate } = g;
  for (let i = 0; i < M; i++) {
    const ao = aOff + i * K;
    const co = cOff + i * N;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = a[ao + k]!;
        s0 += x * b[b0 + k]!;
        s1 += x * b[b1 + k]!;
        s2 += x * b[b2 + k]!;
        s3 += x * b[b3 + k]!;
      }
      if (accumulate) {
        c[co + j] = c[co + j]! + s0;
        c[co + j + 1] = c[co + j + 1]! + s1;
        c[co + j + 2] = c[co + j + 2]! + s2;
        c[co + j + 3] = c[co + j + 3]! + s3;
      } else {
        c[co + j] = s0;
        c[co + j + 1] = s1;
        c[co + j + 2] = s2;
        c[co + j + 3] = s3;
      }
    }
    for (; j < N; j++) {
      const bo = bOff + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ao + k]! * b[bo + k]!;
      c[co + j] = accumulate ? c[co + j]! + s : s;
    }
  }
}

// ---------------------------------------------------------------- weights packed once

/**
 * Float64 entries of W [N, K] packed by packPanels: ceil(N / 4) panels of [K][4] (columns 4j .. 4j + 3 of the
 * product, zero padded past N).
 */
export function packedLength(N: number, K: number): number {
  return Math.ceil(N / 4) * K * 4;
}

/** Panels of packed weights: float64, or float32 for weights that are exactly float32 (half the bytes). */
export type Panels = Float64Array | Float32Array;

/** gemm's arguments with b packed by packPanels (GemmArgs' b and bOff address the panels, of either type). */
export interface PackedGemmArgs extends Omit<GemmArgs, 'b'> {
  b: Panels;
}

/** The first i < len with W[off + i] not a float32 value (f32 panels would round it), or -1: f32 panels are exact. */
export function firstInexactFloat32(W: Float64Array, off = 0, len = W.length - off): number {
  for (let i = 0; i < len; i++) {
    const w = W[off + i]!;
    if (Math.fround(w) !== w && w === w) return i; // a NaN is a float32 NaN too
  }
  return -1;
}

/**
 * out[outOff ..] <- W[wOff ..] ([N, K] row-major) packed: out[(j K + k) 4 + r] = W[4j + r, k], zeros past N.
 * Float32 panels hold the same values (a RangeError names the first entry of W that is not exactly float32).
 */
export function packPanels(W: Float64Array, wOff: number, N: number, K: number, out: Panels, outOff = 0): void {
  if (out instanceof Float32Array) {
    const i = firstInexactFloat32(W, wOff, N * K);
    if (i >= 0) throw new RangeError(`packPanels: float32 panels need weights that are exactly float32; W[${i}] (row ${Math.floor(i / K)}, column ${i % K}) is ${W[wOff + i]}`);
  }
  const panels = Math.ceil(N / 4);
  for (let j = 0; j < panels; j++) {
    for (let r = 0; r < 4; r++) {
      const row = 4 * j + r;
      let o = outOff + j * K * 4 + r;
      if (row >= N) {
        for (let k = 0; k < K; k++, o += 4) out[o] = 0;
        continue;
      }
      const w = wOff + row * K;
      for (let k = 0; k < K; k++, o += 4) out[o] = W[w + k]!;
    }
  }
}

/**
 * gemm with b packed by packPanels (GemmArgs' b and bOff address the packed panels): c[M, N] (+)= a[M, K] W^T.
 * The panels are read front to back, four columns at a time; every entry is summed over k in order from zero and
 * then stored or added, exactly as gemm does, so the two are bit-identical (float32 panels: to gemm on W widened,
 * i.e. on the same values). M = 1 is the one-row product (GEMV) of token generation.
 */
export function gemmPacked(g: PackedGemmArgs): void {
  const { a, aOff, b, bOff, c, cOff, M, N, K, accumulate } = g;
  const panels = Math.ceil(N / 4);
  const full = N >> 2; // panels with four real columns
  for (let i = 0; i < M; i++) {
    const ao = aOff + i * K;
    const co = cOff + i * N;
    let j = 0;
    // two full panels per pass (eight independent sums: ~8% faster than one in V8)
    for (; j + 2 <= full; j += 2) {
      let p = bOff + j * K * 4;
      let q = p + K * 4;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let s4 = 0;
      let s5 = 0;
      let s6 = 0;
      let s7 = 0;
      for (let k = 0; k < K; k++, p += 4, q += 4) {
        const x = a[ao + k]!;
        s0 += x * b[p]!;
        s1 += x * b[p + 1]!;
        s2 += x * b[p + 2]!;
        s3 += x * b[p + 3]!;
        s4 += x * b[q]!;
        s5 += x * b[q + 1]!;
        s6 += x * b[q + 2]!;
        s7 += x * b[q + 3]!;
      }
      const o = co + 4 * j;
      if (accumulate) {
        c[o] = c[o]! + s0;
        c[o + 1] = c[o + 1]! + s1;
        c[o + 2] = c[o + 2]! + s2;
        c[o + 3] = c[o + 3]! + s3;
        c[o + 4] = c[o + 4]! + s4;
        c[o + 5] = c[o + 5]! + s5;
        c[o + 6] = c[o + 6]! + s6;
        c[o + 7] = c[o + 7]! + s7;
      } else {
        c[o] = s0;
        c[o + 1] = s1;
        c[o + 2] = s2;
        c[o + 3] = s3;
        c[o + 4] = s4;
        c[o + 5] = s5;
        c[o + 6] = s6;
        c[o + 7] = s7;
      }
    }
    for (; j < panels; j++) {
      let p = bOff + j * K * 4;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++, p += 4) {
        const x = a[ao + k]!;
        s0 += x * b[p]!;
        s1 += x * b[p + 1]!;
        s2 += x * b[p + 2]!;
        s3 += x * b[p + 3]!;
      }
      const o = co + 4 * j;
      const nr = Math.min(4, N - 4 * j);
      if (accumulate) {
        c[o] = c[o]! + s0;
        if (nr > 1) c[o + 1] = c[o + 1]! + s1;
        if (nr > 2) c[o + 2] = c[o + 2]! + s2;
        if (nr > 3) c[o + 3] = c[o + 3]! + s3;
      } else {
        c[o] = s0;
        if (nr > 1) c[o + 1] = s1;
        if (nr > 2) c[o + 2] = s2;
        if (nr > 3) c[o + 3] = s3;
      }
    }
  }
}
