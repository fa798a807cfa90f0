// PRF logits: out[i, r] = w_r . x~_i - |x~_i|^2 / 2 with x~ = normalize(x_i); returns the largest logit.
//   mode 0 'none': x~ = x;   mode 1 'scale': x~ = x / d^(1/4);   mode 2 'l2': x~ = y / |y| with y = x / 2^e, 2^e the
//   power of two at or below max |x| (an exact scaling, so nothing overflows or underflows however large or
//   small x is; a zero row gives scale 0 and logits 0).
// Four rows of x against two rows of W per register tile; dot products run along d in f64x2 lanes.

import { PRF_F } from './layout';

const MODE_SCALE = 1;
const MODE_L2 = 2;

/** Power of two 2^-e with max |x| 2^-e in [1, 2) (clamped so that it stays a normal number). */
@inline function invPow2(mx: f64): f64 {
  let e = <i32>((reinterpret<u64>(mx) >> 52) & 0x7ff);
  if (e < 1) e = 1;
  if (e > 2045) e = 2045;
  return reinterpret<f64>(<u64>(2046 - e) << 52);
}

/** Row factors: logit = (w . x) * pre * post - half. Writes post and half to factors at f. */
function rowFactors(x: usize, d: i32, mode: i32, fixed: f64, f: usize): f64 {
  let pre: f64 = 1;
  let post: f64 = 1;
  let half: f64 = 0;
  if (mode == MODE_L2) {
    let mx: f64 = 0;
    for (let c = 0; c < d; c++) mx = max(mx, abs(load<f64>(x + (<usize>c << 3))));
    if (mx == 0 || !isFinite(mx)) {
      pre = mx == 0 ? 0 : 1;
      post = mx == 0 ? 0 : NaN;
      half = mx == 0 ? 0 : NaN;
    } else {
      pre = invPow2(mx);
      let sq: f64 = 0;
      for (let c = 0; c < d; c++) {
        const y = load<f64>(x + (<usize>c << 3)) * pre;
        sq += y * y;
      }
      post = 1 / Math.sqrt(sq);
      half = (sq * post * post) / 2;
    }
  } else {
    let sq: f64 = 0;
    for (let c = 0; c < d; c++) {
      const y = load<f64>(x + (<usize>c << 3));
      sq += y * y;
    }
    post = mode == MODE_SCALE ? fixed : 1;
    half = (sq * post * post) / 2;
  }
  store<f64>(f, post);
  store<f64>(f, half, 8);
  return pre;
}

export function prfLogits(W: usize, m: i32, d: i32, mode: i32, x: usize, n: i32, out: usize): f64 {
  const fixed = 1 / Math.sqrt(Math.sqrt(<f64>d));
  const d8 = <usize>d << 3;
  const m8 = <usize>m << 3;
  const d2 = d & ~1;
  const dEnd = <usize>d2 << 3;
  const F = PRF_F; // post, half of the four rows of a block
  let best = -Infinity;
  const zero = f64x2.splat(0);
  for (let i0 = 0; i0 < n; i0 += 4) {
    const rows = min(4, n - i0);
    if (rows < 4) {
      // the last rows one at a time (the same operations per logit as the four-row tile)
      for (let i = i0; i < n; i++) best = prfRow(W, m, d, mode, fixed, x + <usize>i * d8, out + <usize>i * m8, best);
      break;
    }
    // rows past the end repeat the last row (computed, never stored)
    const x0 = x + <usize>i0 * d8;
    const x1 = rows > 1 ? x0 + d8 : x0;
    const x2 = rows > 2 ? x1 + d8 : x1;
    const x3 = rows > 3 ? x2 + d8 : x2;
    const pre0 = rowFactors(x0, d, mode, fixed, F);
    const pre1 = rowFactors(x1, d, mode, fixed, F + 16);
    const pre2 = rowFactors(x2, d, mode, fixed, F + 32);
    const pre3 = rowFactors(x3, d, mode, fixed, F + 48);
    const post01 = f64x2(load<f64>(F) * pre0, load<f64>(F, 16) * pre1);
    const post23 = f64x2(load<f64>(F, 32) * pre2, load<f64>(F, 48) * pre3);
    const half01 = f64x2(load<f64>(F, 8), load<f64>(F, 24));
    const half23 = f64x2(load<f64>(F, 40), load<f64>(F, 56));
    // pre is an exact power of two, so (w . x) pre = w . (x pre) bit for bit unless w . x overflows or underflows:
    // only rows of extreme magnitude need the scaled products
    const big = mode == MODE_L2 && (min(min(pre0, pre1), min(pre2, pre3)) < 1e-150 || max(max(pre0, pre1), max(pre2, pre3)) > 1e150);
    const p0 = f64x2.splat(big ? pre0 : 1);
    const p1 = f64x2.splat(big ? pre1 : 1);
    const p2 = f64x2.splat(big ? pre2 : 1);
    const p3 = f64x2.splat(big ? pre3 : 1);
    const postA01 = big ? f64x2(load<f64>(F), load<f64>(F, 16)) : post01;
    const postA23 = big ? f64x2(load<f64>(F, 32), load<f64>(F, 48)) : post23;
    const o0 = out + <usize>i0 * m8;
    for (let r = 0; r < m; r += 2) {
      const two = r + 1 < m;
      const wa = W + <usize>r * d8;
      const wb = two ? wa + d8 : wa;
      let s0a = zero, s1a = zero, s2a = zero, s3a = zero;
      let s0b = zero, s1b = zero, s2b = zero, s3b = zero;
      for (let c: usize = 0; c < dEnd; c += 16) {
        const u = v128.load(wa + c);
        const w = v128.load(wb + c);
        let xv = v128.load(x0 + c);
        if (big) xv = f64x2.mul(xv, p0);
        s0a = f64x2.add(s0a, f64x2.mul(xv, u));
        s0b = f64x2.add(s0b, f64x2.mul(xv, w));
        xv = v128.load(x1 + c);
        if (big) xv = f64x2.mul(xv, p1);
        s1a = f64x2.add(s1a, f64x2.mul(xv, u));
        s1b = f64x2.add(s1b, f64x2.mul(xv, w));
        xv = v128.load(x2 + c);
        if (big) xv = f64x2.mul(xv, p2);
        s2a = f64x2.add(s2a, f64x2.mul(xv, u));
        s2b = f64x2.add(s2b, f64x2.mul(xv, w));
        xv = v128.load(x3 + c);
        if (big) xv = f64x2.mul(xv, p3);
        s3a = f64x2.add(s3a, f64x2.mul(xv, u));
        s3b = f64x2.add(s3b, f64x2.mul(xv, w));
      }
      let a01 = f64x2.add(v128.shuffle<f64>(s0a, s1a, 0, 2), v128.shuffle<f64>(s0a, s1a, 1, 3));
      let a23 = f64x2.add(v128.shuffle<f64>(s2a, s3a, 0, 2), v128.shuffle<f64>(s2a, s3a, 1, 3));
      let b01 = f64x2.add(v128.shuffle<f64>(s0b, s1b, 0, 2), v128.shuffle<f64>(s0b, s1b, 1, 3));
      let b23 = f64x2.add(v128.shuffle<f64>(s2b, s3b, 0, 2), v128.shuffle<f64>(s2b, s3b, 1, 3));
      if (d2 < d) {
        let x01 = f64x2(load<f64>(x0 + dEnd), load<f64>(x1 + dEnd));
        let x23 = f64x2(load<f64>(x2 + dEnd), load<f64>(x3 + dEnd));
        if (big) {
          x01 = f64x2.mul(x01, f64x2(pre0, pre1));
          x23 = f64x2.mul(x23, f64x2(pre2, pre3));
        }
        const u = f64x2.splat(load<f64>(wa + dEnd));
        const w = f64x2.splat(load<f64>(wb + dEnd));
        a01 = f64x2.add(a01, f64x2.mul(x01, u));
        a23 = f64x2.add(a23, f64x2.mul(x23, u));
        b01 = f64x2.add(b01, f64x2.mul(x01, w));
        b23 = f64x2.add(b23, f64x2.mul(x23, w));
      }
      // logits of rows 0..3 for W rows r (a) and r + 1 (b)
      a01 = f64x2.sub(f64x2.mul(a01, postA01), half01);
      a23 = f64x2.sub(f64x2.mul(a23, postA23), half23);
      b01 = f64x2.sub(f64x2.mul(b01, postA01), half01);
      b23 = f64x2.sub(f64x2.mul(b23, postA23), half23);
      const o = o0 + (<usize>r << 3);
      best = put(o, f64x2.extract_lane(a01, 0), best);
      if (two) best = put(o, f64x2.extract_lane(b01, 0), best, 8);
      if (rows > 1) {
        best = put(o + m8, f64x2.extract_lane(a01, 1), best);
        if (two) best = put(o + m8, f64x2.extract_lane(b01, 1), best, 8);
      }
      if (rows > 2) {
        best = put(o + 2 * m8, f64x2.extract_lane(a23, 0), best);
        if (two) best = put(o + 2 * m8, f64x2.extract_lane(b23, 0), best, 8);
      }
      if (rows > 3) {
        best = put(o + 3 * m8, f64x2.extract_lane(a23, 1), best);
        if (two) best = put(o + 3 * m8, f64x2.extract_lane(b23, 1), best, 8);
      }
    }
  }
  return best;
}

/** One row of x against all of W (tiles of four W rows); returns the running maximum. */
function prfRow(W: usize, m: i32, d: i32, mode: i32, fixed: f64, x: usize, out: usize, best: f64): f64 {
  const F = PRF_F;
  const d8 = <usize>d << 3;
  const d2 = d & ~1;
  const dEnd = <usize>d2 << 3;
  const pre = rowFactors(x, d, mode, fixed, F);
  const big = mode == MODE_L2 && (pre < 1e-150 || pre > 1e150);
  const post = f64x2.splat(big ? load<f64>(F) : load<f64>(F) * pre);
  const half = f64x2.splat(load<f64>(F, 8));
  const p = f64x2.splat(pre);
  const zero = f64x2.splat(0);
  for (let r = 0; r < m; r += 4) {
    const cnt = min(4, m - r);
    const w0 = W + <usize>r * d8;
    const w1 = cnt > 1 ? w0 + d8 : w0;
    const w2 = cnt > 2 ? w1 + d8 : w1;
    const w3 = cnt > 3 ? w2 + d8 : w2;
    let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (let c: usize = 0; c < dEnd; c += 16) {
      let xv = v128.load(x + c);
      if (big) xv = f64x2.mul(xv, p);
      s0 = f64x2.add(s0, f64x2.mul(xv, v128.load(w0 + c)));
      s1 = f64x2.add(s1, f64x2.mul(xv, v128.load(w1 + c)));
      s2 = f64x2.add(s2, f64x2.mul(xv, v128.load(w2 + c)));
      s3 = f64x2.add(s3, f64x2.mul(xv, v128.load(w3 + c)));
    }
    let a01 = f64x2.add(v128.shuffle<f64>(s0, s1, 0, 2), v128.shuffle<f64>(s0, s1, 1, 3));
    let a23 = f64x2.add(v128.shuffle<f64>(s2, s3, 0, 2), v128.shuffle<f64>(s2, s3, 1, 3));
    if (d2 < d) {
      let xs = load<f64>(x + dEnd);
      if (big) xs *= pre;
      const xv = f64x2.splat(xs);
      a01 = f64x2.add(a01, f64x2.mul(xv, f64x2(load<f64>(w0 + dEnd), load<f64>(w1 + dEnd))));
      a23 = f64x2.add(a23, f64x2.mul(xv, f64x2(load<f64>(w2 + dEnd), load<f64>(w3 + dEnd))));
    }
    a01 = f64x2.sub(f64x2.mul(a01, post), half);
    a23 = f64x2.sub(f64x2.mul(a23, post), half);
    const o = out + (<usize>r << 3);
    best = put(o, f64x2.extract_lane(a01, 0), best);
    if (cnt > 1) best = put(o, f64x2.extract_lane(a01, 1), best, 8);
    if (cnt > 2) best = put(o, f64x2.extract_lane(a23, 0), best, 16);
    if (cnt > 3) best = put(o, f64x2.extract_lane(a23, 1), best, 24);
  }
  return best;
}

@inline function put(p: usize, a: f64, best: f64, off: usize = 0): f64 {
  store<f64>(p + off, a);
  return a > best ? a : best;
}
