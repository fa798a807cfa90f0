// Complex FFT in float32 for convolutions (f32x4: two complex numbers (re, im) per vector), size N = 2^p.
// The forward transform is decimation in frequency (natural order in, bit-reversed order out) and the inverse is
// decimation in time (bit-reversed order in, natural order out): neither permutes, and the pointwise products
// between them do not care about the order. The inverse omits 1/N: the kernel spectra carry it (src/backend/wasm.ts
// kernelSpectra32 scales them, a power of two, so exactly).
// Twiddles are computed in float64 (unitRoot of fft.ts, first-octant angles) and rounded once to float32.
//
// Plan layout (fft32PlanBytes): for each radix-4 stage in forward order (quarter L = N/4, N/16, ... while L >= 2)
// and k = 0, 2, 4, ... < L, six vectors (96 bytes): (w1r, w1i, w2r, w2i, w3r, w3i) for w^{jk} and w^{j(k+1)},
// w = e^{-2 pi i/(4L)}, as wjr = (c_k, c_k, c_k1, c_k1) and wji = (s_k, -s_k, s_k1, -s_k1) (w^{jk} = c - i s), so
// a w = a wjr + swap(a) wji. The last stage (radix-4 with L = 1, or radix-2) needs no twiddle.

import { unitRoot, rootCos, rootSin } from './fft';

/** Complex numbers per cache block: stages whose groups fit run block by block (32 KB of float32 pairs). */
const BLK: i32 = 4096;

/** Bytes of a float32 plan for size n (a multiple of 16). */
export function fft32PlanBytes(n: i32): i32 {
  let sumL = 0;
  for (let L = n >> 2; L >= 2; L >>= 2) sumL += L;
  return max(16, sumL * 48);
}

/** Fill a float32 plan for size n at `plan` (fft32PlanBytes(n) bytes). */
export function fft32Init(plan: usize, n: i32): void {
  let tw = plan;
  for (let L = n >> 2; L >= 2; L >>= 2) {
    const step = n / (4 * L);
    for (let k = 0; k < L; k += 2) {
      for (let j = 1; j <= 3; j++) {
        unitRoot(j * k * step, n);
        const c0 = <f32>rootCos;
        const s0 = <f32>rootSin;
        unitRoot(j * (k + 1) * step, n);
        const c1 = <f32>rootCos;
        const s1 = <f32>rootSin;
        const o = tw + <usize>(j - 1) * 32;
        v128.store(o, f32x4(c0, c0, c1, c1));
        v128.store(o, f32x4(s0, -s0, s1, -s1), 16);
      }
      tw += 96;
    }
  }
}

@inline function swap(a: v128): v128 {
  return v128.shuffle<f32>(a, a, 1, 0, 3, 2);
}

// a w (w stored as wr, wi; see the plan layout)
@inline function cmul(a: v128, wr: v128, wi: v128): v128 {
  return f32x4.add(f32x4.mul(a, wr), f32x4.mul(swap(a), wi));
}

// a conj(w)
@inline function cmulc(a: v128, wr: v128, wi: v128): v128 {
  return f32x4.sub(f32x4.mul(a, wr), f32x4.mul(swap(a), wi));
}

// sign flips by xor (off the multiplier's port): lanes whose mask has the sign bit are negated
const NEG_ODD = i32x4(0, 0x80000000, 0, 0x80000000);
const NEG_EVEN = i32x4(0x80000000, 0, 0x80000000, 0);
const NEG_HI = i32x4(0, 0, 0x80000000, 0x80000000);
const NEG_MID = i32x4(0, 0x80000000, 0x80000000, 0);
const NEG_2 = i32x4(0, 0, 0x80000000, 0);

// -i z
@inline function rotF(z: v128): v128 {
  return v128.xor(swap(z), NEG_ODD);
}

// +i z
@inline function rotI(z: v128): v128 {
  return v128.xor(swap(z), NEG_EVEN);
}

/** One forward radix-4 stage (quarter L >= 2) over bytes [lo, hi) of `out`, in place. */
@inline function difStage(out: usize, lo: usize, hi: usize, L: i32, tw: usize): void {
  const L8 = <usize>L << 3;
  const span = L8 << 2;
  for (let base = out + lo; base < out + hi; base += span) {
    let w = tw;
    const pEnd = base + L8;
    for (let p = base; p < pEnd; p += 16) {
      const a = v128.load(p);
      const b = v128.load(p + L8);
      const c = v128.load(p + 2 * L8);
      const d = v128.load(p + 3 * L8);
      const t0 = f32x4.add(a, c);
      const t1 = f32x4.sub(a, c);
      const t2 = f32x4.add(b, d);
      const t3 = rotF(f32x4.sub(b, d));
      v128.store(p, f32x4.add(t0, t2));
      v128.store(p + L8, cmul(f32x4.sub(t0, t2), v128.load(w, 32), v128.load(w, 48)));
      v128.store(p + 2 * L8, cmul(f32x4.add(t1, t3), v128.load(w), v128.load(w, 16)));
      v128.store(p + 3 * L8, cmul(f32x4.sub(t1, t3), v128.load(w, 64), v128.load(w, 80)));
      w += 96;
    }
  }
}

/** One inverse radix-4 stage (quarter L >= 2): the exact reverse of difStage with conjugate twiddles (times 4). */
@inline function ditStage(buf: usize, lo: usize, hi: usize, L: i32, tw: usize): void {
  const L8 = <usize>L << 3;
  const span = L8 << 2;
  for (let base = buf + lo; base < buf + hi; base += span) {
    let w = tw;
    const pEnd = base + L8;
    for (let p = base; p < pEnd; p += 16) {
      const u0 = v128.load(p);
      const u2 = cmulc(v128.load(p + L8), v128.load(w, 32), v128.load(w, 48));
      const u1 = cmulc(v128.load(p + 2 * L8), v128.load(w), v128.load(w, 16));
      const u3 = cmulc(v128.load(p + 3 * L8), v128.load(w, 64), v128.load(w, 80));
      const s0 = f32x4.add(u0, u2);
      const s1 = f32x4.sub(u0, u2);
      const s2 = f32x4.add(u1, u3);
      const s3 = rotI(f32x4.sub(u1, u3));
      v128.store(p, f32x4.add(s0, s2));
      v128.store(p + L8, f32x4.add(s1, s3));
      v128.store(p + 2 * L8, f32x4.sub(s0, s2));
      v128.store(p + 3 * L8, f32x4.sub(s1, s3));
      w += 96;
    }
  }
}

/** Last forward stage, radix 4 with L = 1: groups of four consecutive numbers x0..x3 -> (y0, y2, y1, y3). */
@inline function lastRadix4F(p: usize, bytes: usize): void {
  const end = p + bytes;
  for (; p < end; p += 32) {
    const v0 = v128.load(p);
    const v1 = v128.load(p, 16);
    const s = f32x4.add(v0, v1); // (t0, t2)
    const d = f32x4.sub(v0, v1); // (t1, b - d)
    v128.store(p, f32x4.add(v128.shuffle<f32>(s, s, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(s, s, 2, 3, 2, 3), NEG_HI)));
    v128.store(p, f32x4.add(v128.shuffle<f32>(d, d, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(d, d, 3, 2, 3, 2), NEG_MID)), 16);
  }
}

/**
 * lastRadix4F writing the spectrum packed for spectralConv32 instead of in place: bins j..j+3 (bit-reversed order)
 * of this transform go to dst + (j / 8) stride + ((j / 4) & 1) 32 as [re j..j+3][im j..j+3]. p: the block's bytes
 * from bin j0 (a multiple of 8) on.
 */
@inline function lastRadix4FP(p: usize, bytes: usize, dst: usize, stride: usize): void {
  const end = p + bytes;
  for (; p < end; p += 64) {
    for (let g: usize = 0; g < 64; g += 32) {
      const v0 = v128.load(p + g);
      const v1 = v128.load(p + g, 16);
      const s = f32x4.add(v0, v1);
      const d = f32x4.sub(v0, v1);
      const o0 = f32x4.add(v128.shuffle<f32>(s, s, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(s, s, 2, 3, 2, 3), NEG_HI));
      const o1 = f32x4.add(v128.shuffle<f32>(d, d, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(d, d, 3, 2, 3, 2), NEG_MID));
      v128.store(dst + g, v128.shuffle<f32>(o0, o1, 0, 2, 4, 6));
      v128.store(dst + g, v128.shuffle<f32>(o0, o1, 1, 3, 5, 7), 16);
    }
    dst += stride;
  }
}

/** lastRadix2 writing packed, as lastRadix4FP. */
@inline function lastRadix2P(p: usize, bytes: usize, dst: usize, stride: usize): void {
  const end = p + bytes;
  for (; p < end; p += 64) {
    for (let g: usize = 0; g < 64; g += 32) {
      const a = v128.load(p + g);
      const b = v128.load(p + g, 16);
      const ra = f32x4.add(v128.shuffle<f32>(a, a, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(a, a, 2, 3, 2, 3), NEG_HI));
      const rb = f32x4.add(v128.shuffle<f32>(b, b, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(b, b, 2, 3, 2, 3), NEG_HI));
      v128.store(dst + g, v128.shuffle<f32>(ra, rb, 0, 2, 4, 6));
      v128.store(dst + g, v128.shuffle<f32>(ra, rb, 1, 3, 5, 7), 16);
    }
    dst += stride;
  }
}

/** First inverse stage, radix 4 with L = 1: the reverse of lastRadix4F (times 4). */
@inline function lastRadix4I(p: usize, bytes: usize): void {
  const end = p + bytes;
  for (; p < end; p += 32) {
    const v0 = v128.load(p); // (u0, u2)
    const v1 = v128.load(p, 16); // (u1, u3)
    const P = f32x4.add(v128.shuffle<f32>(v0, v0, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(v0, v0, 2, 3, 2, 3), NEG_HI)); // (s0, s1)
    const Q1 = f32x4.add(v128.shuffle<f32>(v1, v1, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(v1, v1, 2, 3, 2, 3), NEG_HI)); // (s2, u1 - u3)
    const Q = v128.xor(v128.shuffle<f32>(Q1, Q1, 0, 1, 3, 2), NEG_2); // (s2, s3)
    v128.store(p, f32x4.add(P, Q));
    v128.store(p, f32x4.sub(P, Q), 16);
  }
}

/** Radix 2 with L = 1 (forward and inverse alike): pairs (x0, x1) -> (x0 + x1, x0 - x1). */
@inline function lastRadix2(p: usize, bytes: usize): void {
  const end = p + bytes;
  for (; p < end; p += 16) {
    const v = v128.load(p);
    v128.store(p, f32x4.add(v128.shuffle<f32>(v, v, 0, 1, 0, 1), v128.xor(v128.shuffle<f32>(v, v, 2, 3, 2, 3), NEG_HI)));
  }
}

/** First forward stage (L = n/4 >= 2) of an input whose second half is zero: reads n/2 numbers at inp, writes n at out. */
function firstHalfStage(out: usize, inp: usize, L: i32, tw: usize): void {
  const L8 = <usize>L << 3;
  let w = tw;
  for (let o: usize = 0; o < L8; o += 16) {
    const a = v128.load(inp + o);
    const b = v128.load(inp + o + L8);
    const rb = rotF(b);
    v128.store(out + o, f32x4.add(a, b));
    v128.store(out + o + L8, cmul(f32x4.sub(a, b), v128.load(w, 32), v128.load(w, 48)));
    v128.store(out + o + 2 * L8, cmul(f32x4.add(a, rb), v128.load(w), v128.load(w, 16)));
    v128.store(out + o + 3 * L8, cmul(f32x4.sub(a, rb), v128.load(w, 64), v128.load(w, 80)));
    w += 96;
  }
}

// one first-stage butterfly pair (two numbers per vector) of a zero-padded input: a at out, b at out + L8
@inline function halfButterfly(o: usize, L8: usize, a: v128, b: v128, w: usize): void {
  const rb = rotF(b);
  v128.store(o, f32x4.add(a, b));
  v128.store(o + L8, cmul(f32x4.sub(a, b), v128.load(w, 32), v128.load(w, 48)));
  v128.store(o + 2 * L8, cmul(f32x4.add(a, rb), v128.load(w), v128.load(w, 16)));
  v128.store(o + 3 * L8, cmul(f32x4.sub(a, rb), v128.load(w, 64), v128.load(w, 80)));
}

/**
 * fft32ForwardTo of a zero-padded block of two real channels formed on the fly, x_u = ka[u] va[u] + i kb[u] vb[u] for
 * u < n/2 and 0 after (float32 rows; va or vb 0: a factor 1; kb 0: no second channel): the first stage reads the
 * channels directly, so no input block is written and read back. out: n complex of work space; n >= 16.
 */
export function fft32ForwardChannels(plan: usize, n: i32, out: usize, ka: usize, va: usize, kb: usize, vb: usize, packed: usize, stride: usize): void {
  const L = n >> 2;
  const L8 = <usize>L << 3;
  const L4 = <usize>L << 2;
  const zero = f32x4.splat(0);
  let w = plan;
  for (let k = 0; k < L; k += 4) {
    const ro = <usize>k << 2;
    let a0 = v128.load(ka + ro);
    let a1 = v128.load(ka + ro + L4);
    if (va != 0) {
      a0 = f32x4.mul(a0, v128.load(va + ro));
      a1 = f32x4.mul(a1, v128.load(va + ro + L4));
    }
    let b0 = zero;
    let b1 = zero;
    if (kb != 0) {
      b0 = v128.load(kb + ro);
      b1 = v128.load(kb + ro + L4);
      if (vb != 0) {
        b0 = f32x4.mul(b0, v128.load(vb + ro));
        b1 = f32x4.mul(b1, v128.load(vb + ro + L4));
      }
    }
    const o = out + (<usize>k << 3);
    halfButterfly(o, L8, v128.shuffle<f32>(a0, b0, 0, 4, 1, 5), v128.shuffle<f32>(a1, b1, 0, 4, 1, 5), w);
    halfButterfly(o + 16, L8, v128.shuffle<f32>(a0, b0, 2, 6, 3, 7), v128.shuffle<f32>(a1, b1, 2, 6, 3, 7), w + 96);
    w += 192;
  }
  dif(out, n, L >> 2, plan + <usize>L * 48, packed, stride);
}

/**
 * Forward stages from quarter L on (twiddles at tw), in place on out: the large ones over the whole array, then block
 * by block. packed != 0 (n a multiple of 8): the last stage writes the spectrum packed at `packed` (see lastRadix4FP).
 */
function dif(out: usize, n: i32, L: i32, tw: usize, packed: usize, stride: usize): void {
  const bytes = <usize>n << 3;
  while (L >= 2 && L << 2 > BLK) {
    difStage(out, 0, bytes, L, tw);
    tw += <usize>L * 48;
    L >>= 2;
  }
  const blkBytes = <usize>min(n, BLK) << 3;
  for (let s: usize = 0; s < bytes; s += blkBytes) {
    let l = L;
    let t = tw;
    while (l >= 2) {
      difStage(out, s, s + blkBytes, l, t);
      t += <usize>l * 48;
      l >>= 2;
    }
    if (packed != 0) {
      const dst = packed + (s >> 6) * stride;
      if (l == 1) lastRadix4FP(out + s, blkBytes, dst, stride);
      else lastRadix2P(out + s, blkBytes, dst, stride);
    } else if (l == 1) lastRadix4F(out + s, blkBytes);
    else lastRadix2(out + s, blkBytes);
  }
}

/**
 * Forward transform of n complex float32 (bit-reversed output order) from inp to out (no overlap). half != 0: inp
 * holds only the first n/2 numbers, the rest are zero (a zero-padded convolution block; fewer operations).
 */
export function fft32Forward(plan: usize, n: i32, out: usize, inp: usize, half: i32): void {
  fft32ForwardTo(plan, n, out, inp, half, 0, 0);
}

/**
 * fft32Forward with `out` as work space and the spectrum written packed by chunks of 8 bins at `packed` (chunk c at
 * packed + c stride: [re 0..3][im 0..3][re 4..7][im 4..7]), the layout spectralConv32 reads; n >= 8.
 */
export function fft32ForwardTo(plan: usize, n: i32, out: usize, inp: usize, half: i32, packed: usize, stride: usize): void {
  if (n < 2) {
    if (n == 1) store<u64>(out, half != 0 ? 0 : load<u64>(inp));
    return;
  }
  let L = n >> 2;
  let tw = plan;
  if (half != 0 && L >= 2) {
    firstHalfStage(out, inp, L, tw);
    tw += <usize>L * 48;
    L >>= 2;
  } else {
    const bytes = <usize>n << 3;
    if (half != 0) {
      memory.copy(out, inp, bytes >> 1);
      memory.fill(out + (bytes >> 1), 0, bytes >> 1);
    } else memory.copy(out, inp, bytes);
  }
  dif(out, n, L, tw, packed, stride);
}

/** Inverse transform in place (bit-reversed input order, natural output order), without the 1/n factor. */
export function fft32Inverse(plan: usize, n: i32, buf: usize): void {
  if (n < 2) return;
  const bytes = <usize>n << 3;
  let total: usize = 0;
  let lastL = n >> 2;
  while (lastL >= 2) {
    total += <usize>lastL * 48;
    lastL >>= 2;
  }
  // the smallest radix-4 stage with twiddles and its offset in the plan (stages are stored largest first)
  const l0 = lastL == 1 ? 4 : 2;
  const off0 = total - <usize>l0 * 48;
  const blkBytes = <usize>min(n, BLK) << 3;
  for (let s: usize = 0; s < bytes; s += blkBytes) {
    if (lastL == 1) lastRadix4I(buf + s, blkBytes);
    else lastRadix2(buf + s, blkBytes);
    let l = l0;
    let off = off0;
    while (l <= n >> 2 && l << 2 <= BLK) {
      ditStage(buf, s, s + blkBytes, l, plan + off);
      l <<= 2;
      off -= <usize>l * 48;
    }
  }
  let l = l0;
  let off = off0;
  while (l <= n >> 2) {
    if (l << 2 > BLK) ditStage(buf, 0, bytes, l, plan + off);
    l <<= 2;
    off -= <usize>l * 48;
  }
}
