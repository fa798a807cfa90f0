// c[M, N] (+)= a[M, K] . b[N, K]^T, row-major (a linear layer y = x W^T with W: [out, in]).
// Blocked like GotoBLAS with fixed block sizes (so the arithmetic never depends on where the arrays live):
// depth blocks of GEMM_KC, row blocks of GEMM_MC packed into 4-row panels ([k][4]), 4-column panels of b
// packed per block ([k][4]), and a 4 x 4 microkernel holding the tile in eight f64x2 registers. Each tile sums
// its depth block from zero and then adds it to c (c = tile for the first block when not accumulating).
import { GEMM_A, GEMM_B, GEMM_KC, GEMM_MC, GEMM_T } from './layout';

/** Pack rows [i0, i0 + mc) x depth [p0, p0 + kc) of a (stride K) into 4-row panels at GEMM_A (zero padded). */
function packA(a: usize, K: i32, M: i32, i0: i32, mc: i32, p0: i32, kc: i32): void {
  const K8 = <usize>K << 3;
  let dst = GEMM_A;
  for (let i = 0; i < mc; i += 4) {
    const rows = min(4, M - (i0 + i));
    const src = a + <usize>(i0 + i) * K8 + (<usize>p0 << 3);
    if (rows == 4) {
      const s0 = src;
      const s1 = s0 + K8;
      const s2 = s1 + K8;
      const s3 = s2 + K8;
      let k = 0;
      for (; k + 2 <= kc; k += 2) {
        const o = <usize>k << 3;
        const x0 = v128.load(s0 + o);
        const x1 = v128.load(s1 + o);
        const x2 = v128.load(s2 + o);
        const x3 = v128.load(s3 + o);
        v128.store(dst, v128.shuffle<f64>(x0, x1, 0, 2));
        v128.store(dst, v128.shuffle<f64>(x2, x3, 0, 2), 16);
        v128.store(dst, v128.shuffle<f64>(x0, x1, 1, 3), 32);
        v128.store(dst, v128.shuffle<f64>(x2, x3, 1, 3), 48);
        dst += 64;
      }
      if (k < kc) {
        const o = <usize>k << 3;
        store<f64>(dst, load<f64>(s0 + o));
        store<f64>(dst, load<f64>(s1 + o), 8);
        store<f64>(dst, load<f64>(s2 + o), 16);
        store<f64>(dst, load<f64>(s3 + o), 24);
        dst += 32;
      }
    } else {
      for (let k = 0; k < kc; k++) {
        for (let r = 0; r < 4; r++) {
          store<f64>(dst + (<usize>r << 3), r < rows ? load<f64>(src + <usize>r * K8 + (<usize>k << 3)) : 0);
        }
        dst += 32;
      }
    }
  }
}

/** Pack columns [j0, j0 + 4) x depth [p0, p0 + kc) of b (rows of b, stride K) into GEMM_B (zero padded). */
function packB(b: usize, K: i32, N: i32, j0: i32, p0: i32, kc: i32): void {
  const K8 = <usize>K << 3;
  const cols = min(4, N - j0);
  const src = b + <usize>j0 * K8 + (<usize>p0 << 3);
  let dst = GEMM_B;
  if (cols == 4) {
    const s0 = src;
    const s1 = s0 + K8;
    const s2 = s1 + K8;
    const s3 = s2 + K8;
    let k = 0;
    for (; k + 2 <= kc; k += 2) {
      const o = <usize>k << 3;
      const x0 = v128.load(s0 + o);
      const x1 = v128.load(s1 + o);
      const x2 = v128.load(s2 + o);
      const x3 = v128.load(s3 + o);
      v128.store(dst, v128.shuffle<f64>(x0, x1, 0, 2));
      v128.store(dst, v128.shuffle<f64>(x2, x3, 0, 2), 16);
      v128.store(dst, v128.shuffle<f64>(x0, x1, 1, 3), 32);
      v128.store(dst, v128.shuffle<f64>(x2, x3, 1, 3), 48);
      dst += 64;
    }
    if (k < kc) {
      const o = <usize>k << 3;
      store<f64>(dst, load<f64>(s0 + o));
      store<f64>(dst, load<f64>(s1 + o), 8);
      store<f64>(dst, load<f64>(s2 + o), 16);
      store<f64>(dst, load<f64>(s3 + o), 24);
    }
  } else {
    for (let k = 0; k < kc; k++) {
      for (let r = 0; r < 4; r++) {
        store<f64>(dst + (<usize>r << 3), r < cols ? load<f64>(src + <usize>r * K8 + (<usize>k << 3)) : 0);
      }
      dst += 32;
    }
  }
}

/**
 * The 4 x 4 tile at c (stride ldc bytes) from a packed A panel and the packed B panel: tile = sum_k a_k b_k^T,
 * then c = tile (add = false) or c += tile. Only rows < mr and columns < nr are written.
 */
function micro(ap: usize, kc: i32, c: usize, ldc: usize, mr: i32, nr: i32, add: bool): void {
  let bp = GEMM_B;
  const zero = f64x2.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero;
  let c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let a = v128.load64_splat(ap);
    c00 = f64x2.add(c00, f64x2.mul(a, b0));
    c01 = f64x2.add(c01, f64x2.mul(a, b1));
    a = v128.load64_splat(ap, 8);
    c10 = f64x2.add(c10, f64x2.mul(a, b0));
    c11 = f64x2.add(c11, f64x2.mul(a, b1));
    a = v128.load64_splat(ap, 16);
    c20 = f64x2.add(c20, f64x2.mul(a, b0));
    c21 = f64x2.add(c21, f64x2.mul(a, b1));
    a = v128.load64_splat(ap, 24);
    c30 = f64x2.add(c30, f64x2.mul(a, b0));
    c31 = f64x2.add(c31, f64x2.mul(a, b1));
    ap += 32;
    bp += 32;
  }
  if (mr == 4 && nr == 4) {
    const r0 = c;
    const r1 = r0 + ldc;
    const r2 = r1 + ldc;
    const r3 = r2 + ldc;
    if (add) {
      c00 = f64x2.add(v128.load(r0), c00);
      c01 = f64x2.add(v128.load(r0, 16), c01);
      c10 = f64x2.add(v128.load(r1), c10);
      c11 = f64x2.add(v128.load(r1, 16), c11);
      c20 = f64x2.add(v128.load(r2), c20);
      c21 = f64x2.add(v128.load(r2, 16), c21);
      c30 = f64x2.add(v128.load(r3), c30);
      c31 = f64x2.add(v128.load(r3, 16), c31);
    }
    v128.store(r0, c00);
    v128.store(r0, c01, 16);
    v128.store(r1, c10);
    v128.store(r1, c11, 16);
    v128.store(r2, c20);
    v128.store(r2, c21, 16);
    v128.store(r3, c30);
    v128.store(r3, c31, 16);
    return;
  }
  const T = GEMM_T;
  v128.store(T, c00);
  v128.store(T, c01, 16);
  v128.store(T, c10, 32);
  v128.store(T, c11, 48);
  v128.store(T, c20, 64);
  v128.store(T, c21, 80);
  v128.store(T, c30, 96);
  v128.store(T, c31, 112);
  for (let r = 0; r < mr; r++) {
    const row = c + <usize>r * ldc;
    for (let j = 0; j < nr; j++) {
      const x = load<f64>(T + (<usize>(r * 4 + j) << 3));
      const p = row + (<usize>j << 3);
      store<f64>(p, add ? load<f64>(p) + x : x);
    }
  }
}

/** a, b, c point at element 0 of each matrix (offsets applied by the caller). */
export function gemm(a: usize, b: usize, c: usize, M: i32, N: i32, K: i32, accumulate: i32): void {
  if (M <= 0 || N <= 0) return;
  const ldc = <usize>N << 3;
  if (K <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>M * ldc);
    return;
  }
  for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
    const kc = min(GEMM_KC, K - p0);
    const add = accumulate != 0 || p0 > 0;
    for (let i0 = 0; i0 < M; i0 += GEMM_MC) {
      const mc = min(GEMM_MC, M - i0);
      packA(a, K, M, i0, mc, p0, kc);
      for (let j0 = 0; j0 < N; j0 += 4) {
        packB(b, K, N, j0, p0, kc);
        const nr = min(4, N - j0);
        let ap = GEMM_A;
        for (let i = 0; i < mc; i += 4) {
          micro(ap, kc, c + <usize>(i0 + i) * ldc + (<usize>j0 << 3), ldc, min(4, mc - i), nr, add);
          ap += <usize>kc << 5;
        }
      }
    }
  }
}
