// Complex FFT of size N = 2^p (N >= 2), interleaved (re, im): one complex number per f64x2.
// Same definition as fft.js: forward X_k = sum_j x_j e^{-2 pi i jk/N}; inverse includes 1/N.
//
// Radix-4 decimation in time, with a radix-2 first pass when p is odd. The bit reversal is fused into the
// first pass: it reads the input in bit-reversed order and writes the first butterflies into `out`, so the
// input is never written (out !== input) and there is no separate permutation sweep. Later passes run in place
// on `out`. In bit-reversed order the four sub-transforms of a radix-4 group sit at offsets 0, L, 2L, 3L for
// the residues 0, 2, 1, 3.
//
// Plan layout (bytes from `plan`), see fftPlanBytes: for each radix-4 stage of sub-length L (L = R, 4R, ...,
// N/4 with R the first radix) and k < L, the three twiddles w^k, w^2k, w^3k (w = e^{-2 pi i/(4L)}), each
// stored as the two vectors (wr, wr) and (-wi, wi) (a w = a (wr, wr) + swap(a) (-wi, wi)); then the first
// pass's table of bit-reversed input indices (u32, N / R entries).
// The inverse uses the same tables (conjugate twiddles: subtract instead of add). The 1/N of the inverse is
// applied in the first pass; it is a power of two, so the result is the same as dividing at the end.

import { SPEC_BYTES, SPEC_S } from './layout';

const TWO_PI: f64 = 6.283185307179586;

@inline function firstRadix(n: i32): i32 {
  return (ctz(n) & 1) != 0 ? 2 : 4;
}

function twiddleBytes(n: i32): i32 {
  let sumL = 0;
  for (let L = firstRadix(n); 4 * L <= n; L *= 4) sumL += L;
  return sumL * 12 * 8;
}

/** Bytes of a plan for size n (a multiple of 16). */
export function fftPlanBytes(n: i32): i32 {
  if (n < 2) return 16;
  return (twiddleBytes(n) + (n / firstRadix(n)) * 4 + 15) & ~15;
}

/** (cos, sin) of the last unitRoot() call (globals: AssemblyScript returns one value). */
export let rootCos: f64 = 1;
export let rootSin: f64 = 0;

/**
 * (cos, sin) of 2 pi j / n for 0 <= j < n into (rootCos, rootSin), from angles in the first octant only, so that
 * symmetric values are exactly symmetric (w^{n/4} = -i exactly). Shared by the float32 plans (fft32.ts).
 */
export function unitRoot(j: i32, n: i32): void {
  let c: f64 = 1;
  let s: f64 = 0;
  if (n >= 4) {
    const q = n >> 2;
    const quad = j / q;
    const r = j - quad * q;
    if (2 * r <= q) {
      const th = (TWO_PI * <f64>r) / <f64>n;
      c = Math.cos(th);
      s = Math.sin(th);
    } else {
      const th = (TWO_PI * <f64>(q - r)) / <f64>n;
      c = Math.sin(th);
      s = Math.cos(th);
    }
    // rotate by quad quarter turns: (c, s) -> (-s, c)
    for (let t = 0; t < quad; t++) {
      const c0 = c;
      c = -s;
      s = c0;
    }
  } else if (n == 2 && j == 1) {
    c = -1;
  }
  rootCos = c;
  rootSin = s;
}

/** Stores w = e^{-2 pi i j/n} as (wr, wr, -wi, wi) at `dst`. */
function storeTwiddle(dst: usize, j: i32, n: i32): void {
  unitRoot(j, n);
  const wr = rootCos;
  const wi = -rootSin;
  store<f64>(dst, wr);
  store<f64>(dst, wr, 8);
  store<f64>(dst, -wi, 16);
  store<f64>(dst, wi, 24);
}

/** Fill a plan for size n at `plan` (fftPlanBytes(n) bytes). */
export function fftInit(plan: usize, n: i32): void {
  if (n < 2) return;
  const R = firstRadix(n);
  let tw = plan;
  for (let L = R; 4 * L <= n; L *= 4) {
    const step = n / (4 * L);
    for (let k = 0; k < L; k++) {
      storeTwiddle(tw, k * step, n);
      storeTwiddle(tw + 32, 2 * k * step, n);
      storeTwiddle(tw + 64, 3 * k * step, n);
      tw += 96;
    }
  }
  // first pass: group g covers outputs [R g, R g + R); its inputs start at bitrev_p(R g) = bitrev_{p - log2 R}(g)
  const bits = ctz(n) - ctz(R);
  const G = n / R;
  for (let g = 0; g < G; g++) {
    let r = 0;
    let x = g;
    for (let b = 0; b < bits; b++) {
      r = (r << 1) | (x & 1);
      x >>= 1;
    }
    store<u32>(tw + (<usize>g << 2), <u32>r);
  }
}

// -i z (forward) or +i z (inverse)
@inline function rot(z: v128, inverse: bool): v128 {
  const s = v128.shuffle<f64>(z, z, 1, 0);
  return inverse ? f64x2.mul(s, f64x2(-1, 1)) : f64x2.mul(s, f64x2(1, -1));
}

// a w (forward) or a conj(w) (inverse), with w stored as (wr, wr), (-wi, wi)
@inline function cmul(a: v128, wr: v128, wi: v128, inverse: bool): v128 {
  const s = f64x2.mul(v128.shuffle<f64>(a, a, 1, 0), wi);
  const t = f64x2.mul(a, wr);
  return inverse ? f64x2.sub(t, s) : f64x2.add(t, s);
}

// one radix-4 butterfly at p (sub-transforms at p, p + L16, p + 2 L16, p + 3 L16) with the twiddles at w
@inline function butterfly(p: usize, L16: usize, w: usize, inverse: bool): void {
  const a = v128.load(p);
  const c = cmul(v128.load(p + L16), v128.load(w, 32), v128.load(w, 48), inverse);
  const b = cmul(v128.load(p + 2 * L16), v128.load(w), v128.load(w, 16), inverse);
  const d = cmul(v128.load(p + 3 * L16), v128.load(w, 64), v128.load(w, 80), inverse);
  const t0 = f64x2.add(a, c);
  const t1 = f64x2.sub(a, c);
  const t2 = f64x2.add(b, d);
  const t3 = rot(f64x2.sub(b, d), inverse);
  v128.store(p, f64x2.add(t0, t2));
  v128.store(p + L16, f64x2.add(t1, t3));
  v128.store(p + 2 * L16, f64x2.sub(t0, t2));
  v128.store(p + 3 * L16, f64x2.sub(t1, t3));
}

/** First pass (bit reversal fused) for the groups of outputs [g0, g1) (each group R outputs). */
@inline function firstPass(rev: usize, n: i32, R: i32, g0: i32, g1: i32, out: usize, inp: usize, inverse: bool): void {
  const sc = f64x2.splat(1.0 / <f64>n);
  if (R == 4) {
    const Q = <usize>(n >> 2) << 4; // bytes of N/4 complex numbers
    let o = out + (<usize>g0 << 6);
    for (let g = g0; g < g1; g++) {
      const base = inp + (<usize>load<u32>(rev + (<usize>g << 2)) << 4);
      let y0 = v128.load(base);
      let y1 = v128.load(base + Q);
      let y2 = v128.load(base + 2 * Q);
      let y3 = v128.load(base + 3 * Q);
      if (inverse) {
        y0 = f64x2.mul(y0, sc);
        y1 = f64x2.mul(y1, sc);
        y2 = f64x2.mul(y2, sc);
        y3 = f64x2.mul(y3, sc);
      }
      const t0 = f64x2.add(y0, y2);
      const t1 = f64x2.sub(y0, y2);
      const t2 = f64x2.add(y1, y3);
      const t3 = rot(f64x2.sub(y1, y3), inverse);
      v128.store(o, f64x2.add(t0, t2));
      v128.store(o, f64x2.add(t1, t3), 16);
      v128.store(o, f64x2.sub(t0, t2), 32);
      v128.store(o, f64x2.sub(t1, t3), 48);
      o += 64;
    }
  } else {
    const H = <usize>(n >> 1) << 4;
    let o = out + (<usize>g0 << 5);
    for (let g = g0; g < g1; g++) {
      const base = inp + (<usize>load<u32>(rev + (<usize>g << 2)) << 4);
      let y0 = v128.load(base);
      let y1 = v128.load(base + H);
      if (inverse) {
        y0 = f64x2.mul(y0, sc);
        y1 = f64x2.mul(y1, sc);
      }
      v128.store(o, f64x2.add(y0, y1));
      v128.store(o, f64x2.sub(y0, y1), 16);
      o += 32;
    }
  }
}

/**
 * Cache blocking: the first pass and every stage whose groups fit in FFT_BLOCK complex numbers run block by
 * block while the block is in cache; the remaining (large) stages sweep the whole array. Only the order of independent butterflies changes: the
 * arithmetic (and so every bit of the result) is the same for any blocking.
 */
const FFT_BLOCK: i32 = 8192;

@inline function transform(plan: usize, n: i32, out: usize, inp: usize, inverse: bool): void {
  if (n < 2) {
    if (n == 1) v128.store(out, v128.load(inp));
    return;
  }
  const R = firstRadix(n);
  const rev = plan + <usize>twiddleBytes(n);
  const B = min(n, FFT_BLOCK);
  // stages with 4 L <= B inside each block
  for (let s = 0; s < n; s += B) {
    firstPass(rev, n, R, s / R, (s + B) / R, out, inp, inverse);
    let tw = plan;
    for (let L = R; 4 * L <= B; L *= 4) {
      const L16 = <usize>L << 4;
      const span = L16 << 2;
      const end = out + (<usize>(s + B) << 4);
      for (let base = out + (<usize>s << 4); base < end; base += span) {
        let w = tw;
        const pEnd = base + L16;
        for (let p = base; p < pEnd; p += 16) {
          butterfly(p, L16, w, inverse);
          w += 96;
        }
      }
      tw += <usize>L * 96;
    }
  }
  // the large stages over the whole array
  let tw = plan;
  for (let L = R; 4 * L <= n; L *= 4) {
    if (4 * L > B) {
      const L16 = <usize>L << 4;
      const span = L16 << 2;
      const end = out + (<usize>n << 4);
      for (let base = out; base < end; base += span) {
        let w = tw;
        const pEnd = base + L16;
        for (let p = base; p < pEnd; p += 16) {
          butterfly(p, L16, w, inverse);
          w += 96;
        }
      }
    }
    tw += <usize>L * 96;
  }
}

export function fftForward(plan: usize, n: i32, out: usize, inp: usize): void {
  transform(plan, n, out, inp, false);
}

export function fftInverse(plan: usize, n: i32, out: usize, inp: usize): void {
  transform(plan, n, out, inp, true);
}

/** Y[0 .. 2N) += X * H, complex and interleaved (the same rounding as the JS loop, bin by bin). */
export function spectralMac(y: usize, x: usize, h: usize, n: i32): void {
  const sign = f64x2(-1, 1);
  const end = y + (<usize>n << 4);
  while (y < end) {
    const xv = v128.load(x);
    const hv = v128.load(h);
    // (xr hr, xr hi) + (xi (-hi), xi hr) = (xr hr - xi hi, xr hi + xi hr)
    const t = f64x2.mul(v128.shuffle<f64>(xv, xv, 0, 0), hv);
    const s = f64x2.mul(v128.shuffle<f64>(xv, xv, 1, 1), f64x2.mul(v128.shuffle<f64>(hv, hv, 1, 0), sign));
    v128.store(y, f64x2.add(v128.load(y), f64x2.add(t, s)));
    x += 16;
    h += 16;
    y += 16;
  }
}

// ---------------------------------------------------------------- many spectral products at once

/**
 * Y[r] = sum_p X[r0 + r - p] H[p] over p in [0, P) with 0 <= r0 + r - p < nx, for output blocks r < ny.
 * X: [nx][n], H: [P][n], Y: [ny][n] complex interleaved (overwritten). Per bin the terms are added in ascending p
 * from zero: the same bits as Y.fill(0) followed by spectralMac for p = 0, 1, ... (skipping invalid blocks).
 * This is the frequency-domain core of a uniformly partitioned convolution (every output block of one channel
 * pair in one call). Chunks of four bins of every block are first packed (re and im split) into SPEC_S so the
 * products run from contiguous scratch (the blocks are a power-of-two apart: read in place they collide in cache).
 */
export function spectralConv(y: usize, x: usize, h: usize, n: i32, nx: i32, P: i32, ny: i32, r0: i32): void {
  if (ny <= 0 || n <= 0) return;
  const blk = <usize>n << 4;
  if ((n & 3) != 0 || <usize>(nx + P) * 64 > SPEC_BYTES) {
    spectralConvPlain(y, x, h, n, nx, P, ny, r0);
    return;
  }
  const XS = SPEC_S;
  const HS = SPEC_S + (<usize>nx << 6);
  const zero = f64x2.splat(0);
  for (let k: usize = 0; k < blk; k += 64) {
    // pack: per block [re(k, k+1), im(k, k+1), re(k+2, k+3), im(k+2, k+3)]
    pack4(XS, x + k, blk, nx);
    pack4(HS, h + k, blk, P);
    for (let half: usize = 0; half < 64; half += 32) {
      const xs = XS + half;
      const hs = HS + half;
      let r = 0;
      for (; r + 2 <= ny; r += 2) {
        // output A = r, B = r + 1; p ranges [loA, hiA], [loB, hiB] with loA <= loB, hiA <= hiB
        const loA = max(0, r0 + r - nx + 1);
        const hiA = min(P - 1, r0 + r);
        const loB = max(0, r0 + r + 2 - nx);
        const hiB = min(P - 1, r0 + r + 1);
        let aR = zero, aI = zero, bR = zero, bI = zero;
        let p = loA;
        if (p < loB && p <= hiA) {
          // only A
          const xo = xs + (<usize>(r0 + r - p) << 6);
          const ho = hs + (<usize>p << 6);
          const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
          aR = f64x2.add(aR, f64x2.sub(f64x2.mul(xr, hr), f64x2.mul(xi, hi)));
          aI = f64x2.add(aI, f64x2.add(f64x2.mul(xr, hi), f64x2.mul(xi, hr)));
          p++;
        }
        p = max(p, loB);
        const both = min(hiA, hiB);
        if (p <= both) {
          // B at p reads the block A read at p - 1
          let ob = xs + (<usize>(r0 + r + 1 - p) << 6);
          let bxr = v128.load(ob), bxi = v128.load(ob, 16);
          for (; p <= both; p++) {
            const xo = xs + (<usize>(r0 + r - p) << 6);
            const ho = hs + (<usize>p << 6);
            const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
            aR = f64x2.add(aR, f64x2.sub(f64x2.mul(xr, hr), f64x2.mul(xi, hi)));
            aI = f64x2.add(aI, f64x2.add(f64x2.mul(xr, hi), f64x2.mul(xi, hr)));
            bR = f64x2.add(bR, f64x2.sub(f64x2.mul(bxr, hr), f64x2.mul(bxi, hi)));
            bI = f64x2.add(bI, f64x2.add(f64x2.mul(bxr, hi), f64x2.mul(bxi, hr)));
            bxr = xr;
            bxi = xi;
          }
        }
        for (; p <= hiB; p++) {
          // only B (p > hiA)
          if (p < loB) continue;
          const xo = xs + (<usize>(r0 + r + 1 - p) << 6);
          const ho = hs + (<usize>p << 6);
          const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
          bR = f64x2.add(bR, f64x2.sub(f64x2.mul(xr, hr), f64x2.mul(xi, hi)));
          bI = f64x2.add(bI, f64x2.add(f64x2.mul(xr, hi), f64x2.mul(xi, hr)));
        }
        const ya = y + <usize>r * blk + k + (half);
        v128.store(ya, v128.shuffle<f64>(aR, aI, 0, 2));
        v128.store(ya, v128.shuffle<f64>(aR, aI, 1, 3), 16);
        const yb = ya + blk;
        v128.store(yb, v128.shuffle<f64>(bR, bI, 0, 2));
        v128.store(yb, v128.shuffle<f64>(bR, bI, 1, 3), 16);
      }
      if (r < ny) {
        const lo = max(0, r0 + r - nx + 1);
        const hi = min(P - 1, r0 + r);
        let aR = zero, aI = zero;
        for (let p = lo; p <= hi; p++) {
          const xo = xs + (<usize>(r0 + r - p) << 6);
          const ho = hs + (<usize>p << 6);
          const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
          aR = f64x2.add(aR, f64x2.sub(f64x2.mul(xr, hr), f64x2.mul(xi, hi)));
          aI = f64x2.add(aI, f64x2.add(f64x2.mul(xr, hi), f64x2.mul(xi, hr)));
        }
        const ya = y + <usize>r * blk + k + (half);
        v128.store(ya, v128.shuffle<f64>(aR, aI, 0, 2));
        v128.store(ya, v128.shuffle<f64>(aR, aI, 1, 3), 16);
      }
    }
  }
}

/** dst[j] = four bins of block j of src (stride blk bytes), re and im split: [re0 re1][im0 im1][re2 re3][im2 im3]. */
@inline function pack4(dst: usize, src: usize, blk: usize, count: i32): void {
  for (let j = 0; j < count; j++) {
    const v0 = v128.load(src);
    const v1 = v128.load(src, 16);
    const v2 = v128.load(src, 32);
    const v3 = v128.load(src, 48);
    v128.store(dst, v128.shuffle<f64>(v0, v1, 0, 2));
    v128.store(dst, v128.shuffle<f64>(v0, v1, 1, 3), 16);
    v128.store(dst, v128.shuffle<f64>(v2, v3, 0, 2), 32);
    v128.store(dst, v128.shuffle<f64>(v2, v3, 1, 3), 48);
    src += blk;
    dst += 64;
  }
}

/** The same sums bin by bin (spectralMac per term), for sizes the packed path does not take. */
function spectralConvPlain(y: usize, x: usize, h: usize, n: i32, nx: i32, P: i32, ny: i32, r0: i32): void {
  const blk = <usize>n << 4;
  for (let r = 0; r < ny; r++) {
    const yr = y + <usize>r * blk;
    memory.fill(yr, 0, blk);
    const lo = max(0, r0 + r - nx + 1);
    const hi = min(P - 1, r0 + r);
    for (let p = lo; p <= hi; p++) spectralMac(yr, x + <usize>(r0 + r - p) * blk, h + <usize>p * blk, n);
  }
}
