// c[M, N] (+)= a[M, K] . b[N, K]^T, row-major (a linear layer y = x W^T with W: [out, in]).
// Blocked like GotoBLAS with fixed block sizes (so the arithmetic never depends on where the arrays live):
// depth blocks of GEMM_KC, row blocks of GEMM_MC packed into 4-row panels ([k][4]), 4-column panels of b
// packed per block ([k][4]), and a 4 x 4 microkernel holding the tile in eight f64x2 registers. Each tile sums
// its depth block from zero and then adds it to c (c = tile for the first block when not accumulating).
//
// Weights that serve many products (a model's linear layers) are packed once, whole: packPanels lays W [N, K]
// out as ceil(N / 4) panels of [K][4] (zero padded), whose depth block p0 is exactly the panel gemm packs per
// call. gemmPacked runs gemm's loops on them without packing b, and gemvPacked is the one-row product (token
// generation) with no packing at all. Every output entry is summed in the same order in all three kernels, so
// they are bit-identical to each other for the same operands. Weights that are exactly float32 (a model file's F32
// tensors) may be packed as f32 panels ([K][4] f32, same layout): gemmPacked32 and gemvPacked32 widen them exactly
// on load, so they give the same bits again while streaming half the bytes.
import { GEMM_A, GEMM_B, GEMM_KC, GEMM_MC, GEMM_T } from './layout';

/**
 * One 4-row panel: rows [0, rows) of src (stride K8 bytes) over depth [0, kc), to dst as [kc][4] (rows >= `rows`
 * are zeros). Returns the byte after the panel.
 */
function packPanel(src: usize, K8: usize, rows: i32, kc: i32, dst: usize): usize {
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
    return dst;
  }
  for (let k = 0; k < kc; k++) {
    for (let r = 0; r < 4; r++) {
      store<f64>(dst + (<usize>r << 3), r < rows ? load<f64>(src + <usize>r * K8 + (<usize>k << 3)) : 0);
    }
    dst += 32;
  }
  return dst;
}

/** Pack rows [i0, i0 + mc) x depth [p0, p0 + kc) of a (stride K) into 4-row panels at GEMM_A (zero padded). */
function packA(a: usize, K: i32, M: i32, i0: i32, mc: i32, p0: i32, kc: i32): void {
  const K8 = <usize>K << 3;
  let dst = GEMM_A;
  for (let i = 0; i < mc; i += 4) {
    dst = packPanel(a + <usize>(i0 + i) * K8 + (<usize>p0 << 3), K8, min(4, M - (i0 + i)), kc, dst);
  }
}

/** Pack columns [j0, j0 + 4) x depth [p0, p0 + kc) of b (rows of b, stride K) into GEMM_B (zero padded). */
function packB(b: usize, K: i32, N: i32, j0: i32, p0: i32, kc: i32): void {
  const K8 = <usize>K << 3;
  packPanel(b + <usize>j0 * K8 + (<usize>p0 << 3), K8, min(4, N - j0), kc, GEMM_B);
}

/** Bytes of W [N, K] packed by packPanels: ceil(N / 4) panels of [K][4] f64. */
export function packedBytes(N: i32, K: i32): usize {
  return (<usize>((N + 3) >> 2) * <usize>K) << 5;
}

/** Pack W [N, K] (row-major) whole into dst: panel j (columns 4j .. 4j + 3) is [K][4] at dst + 32 K j. */
export function packPanels(w: usize, N: i32, K: i32, dst: usize): void {
  const K8 = <usize>K << 3;
  for (let j0 = 0; j0 < N; j0 += 4) dst = packPanel(w + <usize>j0 * K8, K8, min(4, N - j0), K, dst);
}

/**
 * Columns 2 half .. 2 half + 1 of a packed panel row at p, as f64x2: f64 panels ([k][4] f64) are loaded as they
 * are, f32 panels ([k][4] f32) widened exactly (every float32 is a float64), so the products are the same bits.
 */
// @ts-ignore: decorator
@inline function pairOf<T>(p: usize, half: usize): v128 {
  if (sizeof<T>() == 8) return v128.load(p + (half << 4));
  return f64x2.promote_low_f32x4(v128.load64_zero(p + (half << 3)));
}

/**
 * The 4 x 4 tile at c (stride ldc bytes) from a packed A panel (ap) and a packed B panel (bp, [kc][4] of T): tile =
 * sum_k a_k b_k^T, then c = tile (add = false) or c += tile. Only rows < mr and columns < nr are written.
 */
// @ts-ignore: decorator
@inline function micro<T>(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, mr: i32, nr: i32, add: bool): void {
  const zero = f64x2.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero;
  let c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  for (let k = 0; k < kc; k++) {
    const b0 = pairOf<T>(bp, 0);
    const b1 = pairOf<T>(bp, 1);
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
    bp += sizeof<T>() << 2;
  }
  store4x4(c, ldc, mr, nr, add, c00, c01, c10, c11, c20, c21, c30, c31);
}

/** Write a 4 x 4 tile (rows of two f64x2) to c: c = tile, or c += tile when add; rows < mr, columns < nr only. */
function store4x4(c: usize, ldc: usize, mr: i32, nr: i32, add: bool, c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128): void {
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
          micro<f64>(ap, GEMM_B, kc, c + <usize>(i0 + i) * ldc + (<usize>j0 << 3), ldc, min(4, mc - i), nr, add);
          ap += <usize>kc << 5;
        }
      }
    }
  }
}

/**
 * gemm with b packed whole by packPanels (bp, panels of T): the same loops and microkernel, the panels read in
 * place. Bit-identical to gemm on the unpacked b (f32 panels: on b widened to float64).
 */
// @ts-ignore: decorator
@inline function gemmPackedT<T>(a: usize, bp: usize, c: usize, M: i32, N: i32, K: i32, accumulate: i32): void {
  if (M <= 0 || N <= 0) return;
  const ldc = <usize>N << 3;
  if (K <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>M * ldc);
    return;
  }
  const row = <usize>sizeof<T>() << 2; // bytes of one k of a panel
  const panel = <usize>K * row;
  for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
    const kc = min(GEMM_KC, K - p0);
    const add = accumulate != 0 || p0 > 0;
    for (let i0 = 0; i0 < M; i0 += GEMM_MC) {
      const mc = min(GEMM_MC, M - i0);
      packA(a, K, M, i0, mc, p0, kc);
      for (let j0 = 0; j0 < N; j0 += 4) {
        let bpj = bp + <usize>(j0 >> 2) * panel + <usize>p0 * row;
        if (sizeof<T>() == 4 && mc > 4) {
          // f32 panels serving several row panels: widened once per block into the b scratch (as gemm packs b)
          for (let k = 0; k < kc; k++) {
            v128.store(GEMM_B + (<usize>k << 5), pairOf<T>(bpj + (<usize>k << 4), 0));
            v128.store(GEMM_B + (<usize>k << 5), pairOf<T>(bpj + (<usize>k << 4), 1), 16);
          }
          bpj = GEMM_B;
        }
        const nr = min(4, N - j0);
        let ap = GEMM_A;
        for (let i = 0; i < mc; i += 4) {
          if (sizeof<T>() == 4 && mc > 4) micro<f64>(ap, bpj, kc, c + <usize>(i0 + i) * ldc + (<usize>j0 << 3), ldc, min(4, mc - i), nr, add);
          else micro<T>(ap, bpj, kc, c + <usize>(i0 + i) * ldc + (<usize>j0 << 3), ldc, min(4, mc - i), nr, add);
          ap += <usize>kc << 5;
        }
      }
    }
  }
}

export function gemmPacked(a: usize, bp: usize, c: usize, M: i32, N: i32, K: i32, accumulate: i32): void {
  gemmPackedT<f64>(a, bp, c, M, N, K, accumulate);
}

/** gemmPacked on f32 panels (weights that are exactly float32, packed by src/math/gemm.ts into a Float32Array). */
export function gemmPacked32(a: usize, bp: usize, c: usize, M: i32, N: i32, K: i32, accumulate: i32): void {
  gemmPackedT<f32>(a, bp, c, M, N, K, accumulate);
}

/**
 * One row: c[N] (+)= x[K] . W^T with W packed whole by packPanels (bp, panels of T). No packing and no padding of
 * the row: six or four panels (24 or 16 columns, independent f64x2 sums) per pass over x, then one at a time. Every entry
 * is summed as in gemm (depth blocks of GEMM_KC from zero, in k order, then added to c), so it is bit-identical to
 * gemm with M = 1. The f32 panels halve the bytes streamed per product (a model's weights do not fit in L2: the
 * one-row product is bound by the stream), the widening costs less than the bytes it saves.
 */
// @ts-ignore: decorator
@inline function gemvPackedT<T>(x: usize, bp: usize, c: usize, N: i32, K: i32, accumulate: i32): void {
  if (N <= 0) return;
  if (K <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>N << 3);
    return;
  }
  const row = <usize>sizeof<T>() << 2; // bytes of one k of a panel
  const panel = <usize>K * row;
  const panels = (N + 3) >> 2;
  const full = N >> 2; // panels whose four columns are all real
  const zero = f64x2.splat(0);
  let j = 0;
  // six panels per pass (24 columns, twelve sums: the most that stay in the 16 xmm registers; ~10% faster than four
  // in L2 for f32 panels, whose widening makes the kernel ALU-bound), then four, then one at a time
  for (; j + 6 <= full; j += 6) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + <usize>p0 * row;
      let xp = x + (<usize>p0 << 3);
      let s0 = zero, s1 = zero, s2 = zero, s3 = zero, s4 = zero, s5 = zero;
      let s6 = zero, s7 = zero, s8 = zero, s9 = zero, s10 = zero, s11 = zero;
      for (let k = 0; k < kc; k++) {
        const a = v128.load64_splat(xp);
        const b1 = b0 + panel;
        const b2 = b1 + panel;
        const b3 = b2 + panel;
        const b4 = b3 + panel;
        const b5 = b4 + panel;
        s0 = f64x2.add(s0, f64x2.mul(a, pairOf<T>(b0, 0)));
        s1 = f64x2.add(s1, f64x2.mul(a, pairOf<T>(b0, 1)));
        s2 = f64x2.add(s2, f64x2.mul(a, pairOf<T>(b1, 0)));
        s3 = f64x2.add(s3, f64x2.mul(a, pairOf<T>(b1, 1)));
        s4 = f64x2.add(s4, f64x2.mul(a, pairOf<T>(b2, 0)));
        s5 = f64x2.add(s5, f64x2.mul(a, pairOf<T>(b2, 1)));
        s6 = f64x2.add(s6, f64x2.mul(a, pairOf<T>(b3, 0)));
        s7 = f64x2.add(s7, f64x2.mul(a, pairOf<T>(b3, 1)));
        s8 = f64x2.add(s8, f64x2.mul(a, pairOf<T>(b4, 0)));
        s9 = f64x2.add(s9, f64x2.mul(a, pairOf<T>(b4, 1)));
        s10 = f64x2.add(s10, f64x2.mul(a, pairOf<T>(b5, 0)));
        s11 = f64x2.add(s11, f64x2.mul(a, pairOf<T>(b5, 1)));
        xp += 8;
        b0 += row;
      }
      if (accumulate != 0 || p0 > 0) {
        s0 = f64x2.add(v128.load(cj), s0);
        s1 = f64x2.add(v128.load(cj, 16), s1);
        s2 = f64x2.add(v128.load(cj, 32), s2);
        s3 = f64x2.add(v128.load(cj, 48), s3);
        s4 = f64x2.add(v128.load(cj, 64), s4);
        s5 = f64x2.add(v128.load(cj, 80), s5);
        s6 = f64x2.add(v128.load(cj, 96), s6);
        s7 = f64x2.add(v128.load(cj, 112), s7);
        s8 = f64x2.add(v128.load(cj, 128), s8);
        s9 = f64x2.add(v128.load(cj, 144), s9);
        s10 = f64x2.add(v128.load(cj, 160), s10);
        s11 = f64x2.add(v128.load(cj, 176), s11);
      }
      v128.store(cj, s0);
      v128.store(cj, s1, 16);
      v128.store(cj, s2, 32);
      v128.store(cj, s3, 48);
      v128.store(cj, s4, 64);
      v128.store(cj, s5, 80);
      v128.store(cj, s6, 96);
      v128.store(cj, s7, 112);
      v128.store(cj, s8, 128);
      v128.store(cj, s9, 144);
      v128.store(cj, s10, 160);
      v128.store(cj, s11, 176);
    }
  }
  for (; j + 4 <= full; j += 4) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + <usize>p0 * row;
      let xp = x + (<usize>p0 << 3);
      let s0 = zero, s1 = zero, s2 = zero, s3 = zero, s4 = zero, s5 = zero, s6 = zero, s7 = zero;
      for (let k = 0; k < kc; k++) {
        const a = v128.load64_splat(xp);
        const b1 = b0 + panel;
        const b2 = b1 + panel;
        const b3 = b2 + panel;
        s0 = f64x2.add(s0, f64x2.mul(a, pairOf<T>(b0, 0)));
        s1 = f64x2.add(s1, f64x2.mul(a, pairOf<T>(b0, 1)));
        s2 = f64x2.add(s2, f64x2.mul(a, pairOf<T>(b1, 0)));
        s3 = f64x2.add(s3, f64x2.mul(a, pairOf<T>(b1, 1)));
        s4 = f64x2.add(s4, f64x2.mul(a, pairOf<T>(b2, 0)));
        s5 = f64x2.add(s5, f64x2.mul(a, pairOf<T>(b2, 1)));
        s6 = f64x2.add(s6, f64x2.mul(a, pairOf<T>(b3, 0)));
        s7 = f64x2.add(s7, f64x2.mul(a, pairOf<T>(b3, 1)));
        xp += 8;
        b0 += row;
      }
      if (accumulate != 0 || p0 > 0) {
        s0 = f64x2.add(v128.load(cj), s0);
        s1 = f64x2.add(v128.load(cj, 16), s1);
        s2 = f64x2.add(v128.load(cj, 32), s2);
        s3 = f64x2.add(v128.load(cj, 48), s3);
        s4 = f64x2.add(v128.load(cj, 64), s4);
        s5 = f64x2.add(v128.load(cj, 80), s5);
        s6 = f64x2.add(v128.load(cj, 96), s6);
        s7 = f64x2.add(v128.load(cj, 112), s7);
      }
      v128.store(cj, s0);
      v128.store(cj, s1, 16);
      v128.store(cj, s2, 32);
      v128.store(cj, s3, 48);
      v128.store(cj, s4, 64);
      v128.store(cj, s5, 80);
      v128.store(cj, s6, 96);
      v128.store(cj, s7, 112);
    }
  }
  // the last panels: one at a time, the edge panel (N not a multiple of 4) through the tile scratch
  for (; j < panels; j++) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    const nr = min(4, N - (j << 2));
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + <usize>p0 * row;
      let xp = x + (<usize>p0 << 3);
      let s0 = zero, s1 = zero;
      for (let k = 0; k < kc; k++) {
        const a = v128.load64_splat(xp);
        s0 = f64x2.add(s0, f64x2.mul(a, pairOf<T>(b0, 0)));
        s1 = f64x2.add(s1, f64x2.mul(a, pairOf<T>(b0, 1)));
        xp += 8;
        b0 += row;
      }
      const add = accumulate != 0 || p0 > 0;
      if (nr == 4) {
        if (add) {
          s0 = f64x2.add(v128.load(cj), s0);
          s1 = f64x2.add(v128.load(cj, 16), s1);
        }
        v128.store(cj, s0);
        v128.store(cj, s1, 16);
      } else {
        v128.store(GEMM_T, s0);
        v128.store(GEMM_T, s1, 16);
        for (let r = 0; r < nr; r++) {
          const t = load<f64>(GEMM_T + (<usize>r << 3));
          const p = cj + (<usize>r << 3);
          store<f64>(p, add ? load<f64>(p) + t : t);
        }
      }
    }
  }
}

export function gemvPacked(x: usize, bp: usize, c: usize, N: i32, K: i32, accumulate: i32): void {
  gemvPackedT<f64>(x, bp, c, N, K, accumulate);
}

/** gemvPacked on f32 panels. */
export function gemvPacked32(x: usize, bp: usize, c: usize, N: i32, K: i32, accumulate: i32): void {
  gemvPackedT<f32>(x, bp, c, N, K, accumulate);
}

/** Widen f32 lanes 0,1 and 2,3 of s and add them to the f64 entries at p (add != 0) or store them there. */
// @ts-ignore: decorator
@inline function widenStore(p: usize, s: v128, add: bool): void {
  let lo = f64x2.promote_low_f32x4(s);
  let hi = f64x2.promote_low_f32x4(v128.shuffle<i32>(s, s, 2, 3, 0, 1));
  if (add) {
    lo = f64x2.add(v128.load(p), lo);
    hi = f64x2.add(v128.load(p, 16), hi);
  }
  v128.store(p, lo);
  v128.store(p, hi, 16);
}

/**
 * One row in float32 (a float32 model session): c[N] (f64) (+)= x[K] . W^T with x rounded to float32 into xs
 * (K f32, 16-byte aligned scratch) and W's f32 panels. Each panel's four columns are one f32x4 sum (multiply,
 * add) over a depth block of GEMM_KC in k order, widened exactly and added to c in float64 block by block: a
 * fixed order, so the same bits on every run. Eight panels (32 columns, eight sums) per pass, then one at a time.
 */
export function gemvPackedF32(x: usize, xs: usize, bp: usize, c: usize, N: i32, K: i32, accumulate: i32): void {
  if (N <= 0) return;
  if (K <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>N << 3);
    return;
  }
  for (let k = 0; k < K; k++) store<f32>(xs + (<usize>k << 2), <f32>load<f64>(x + (<usize>k << 3)));
  const panel = <usize>K << 4; // bytes of one f32 panel
  const panels = (N + 3) >> 2;
  const full = N >> 2;
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 8 <= full; j += 8) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + (<usize>p0 << 4);
      let xp = xs + (<usize>p0 << 2);
      let s0 = zero, s1 = zero, s2 = zero, s3 = zero, s4 = zero, s5 = zero, s6 = zero, s7 = zero;
      for (let k = 0; k < kc; k++) {
        const a = v128.load32_splat(xp);
        s0 = f32x4.add(s0, f32x4.mul(a, v128.load(b0)));
        s1 = f32x4.add(s1, f32x4.mul(a, v128.load(b0 + panel)));
        s2 = f32x4.add(s2, f32x4.mul(a, v128.load(b0 + 2 * panel)));
        s3 = f32x4.add(s3, f32x4.mul(a, v128.load(b0 + 3 * panel)));
        s4 = f32x4.add(s4, f32x4.mul(a, v128.load(b0 + 4 * panel)));
        s5 = f32x4.add(s5, f32x4.mul(a, v128.load(b0 + 5 * panel)));
        s6 = f32x4.add(s6, f32x4.mul(a, v128.load(b0 + 6 * panel)));
        s7 = f32x4.add(s7, f32x4.mul(a, v128.load(b0 + 7 * panel)));
        xp += 4;
        b0 += 16;
      }
      const add = accumulate != 0 || p0 > 0;
      widenStore(cj, s0, add);
      widenStore(cj + 32, s1, add);
      widenStore(cj + 64, s2, add);
      widenStore(cj + 96, s3, add);
      widenStore(cj + 128, s4, add);
      widenStore(cj + 160, s5, add);
      widenStore(cj + 192, s6, add);
      widenStore(cj + 224, s7, add);
    }
  }
  for (; j + 4 <= full; j += 4) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + (<usize>p0 << 4);
      let xp = xs + (<usize>p0 << 2);
      let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      for (let k = 0; k < kc; k++) {
        const a = v128.load32_splat(xp);
        s0 = f32x4.add(s0, f32x4.mul(a, v128.load(b0)));
        s1 = f32x4.add(s1, f32x4.mul(a, v128.load(b0 + panel)));
        s2 = f32x4.add(s2, f32x4.mul(a, v128.load(b0 + 2 * panel)));
        s3 = f32x4.add(s3, f32x4.mul(a, v128.load(b0 + 3 * panel)));
        xp += 4;
        b0 += 16;
      }
      const add = accumulate != 0 || p0 > 0;
      widenStore(cj, s0, add);
      widenStore(cj + 32, s1, add);
      widenStore(cj + 64, s2, add);
      widenStore(cj + 96, s3, add);
    }
  }
  for (; j < panels; j++) {
    const pj = bp + <usize>j * panel;
    const cj = c + (<usize>j << 5);
    const nr = min(4, N - (j << 2));
    for (let p0 = 0; p0 < K; p0 += GEMM_KC) {
      const kc = min(GEMM_KC, K - p0);
      let b0 = pj + (<usize>p0 << 4);
      let xp = xs + (<usize>p0 << 2);
      let s0 = zero;
      for (let k = 0; k < kc; k++) {
        s0 = f32x4.add(s0, f32x4.mul(v128.load32_splat(xp), v128.load(b0)));
        xp += 4;
        b0 += 16;
      }
      const add = accumulate != 0 || p0 > 0;
      if (nr == 4) widenStore(cj, s0, add);
      else {
        widenStore(GEMM_T, s0, false);
        for (let r = 0; r < nr; r++) {
          const t = load<f64>(GEMM_T + (<usize>r << 3));
          const p = cj + (<usize>r << 3);
          store<f64>(p, add ? load<f64>(p) + t : t);
        }
      }
    }
  }
}
