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
