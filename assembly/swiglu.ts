// SwiGLU of the model's feed-forward layer, h1[i] <- silu(h1[i]) * h3[i] with silu(u) = u / (1 + exp(-u)), and the
// exp it needs: fdlibm's e_exp.c as V8 ships it for Math.exp (v8/src/base/ieee754.cc, including its exp(1) = E
// special case), so this kernel gives the bits of the plain loop in src/math/swiglu.ts in V8 (the model's JS and
// WASM backends stay bit-identical; test/backend/swiglu.test.ts compares it with Math.exp over wide ranges).

const P1: f64 = 1.66666666666666019037e-01;
const P2: f64 = -2.77777777770155933842e-03;
const P3: f64 = 6.61375632143793436117e-05;
const P4: f64 = -1.65339022054652515390e-06;
const P5: f64 = 4.13813679705723846039e-08;
const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const INV_LN2: f64 = 1.44269504088896338700e+00;
const TWO_M1000: f64 = 9.33263618503218878990e-302;
const TWO_1023: f64 = 8.988465674311579539e307;

/** Math.exp(x) of V8, bit for bit (fdlibm). */
export function expFdlibm(x: f64): f64 {
  const bits = reinterpret<u64>(x);
  const hxs = <u32>(bits >> 32);
  const xsb = <i32>(hxs >> 31);
  const hx = hxs & 0x7fffffff;
  if (hx >= 0x40862e42) {
    // |x| >= 709.78...
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | <u32>bits) != 0) return x + x; // NaN
      return xsb == 0 ? x : 0.0; // exp(+-Infinity) = Infinity, 0
    }
    if (x > 7.09782712893383973096e+02) return Infinity;
    if (x < -7.45133219101941108420e+02) return TWO_M1000 * TWO_M1000; // underflow
  }
  let hi: f64 = 0;
  let lo: f64 = 0;
  let k: i32 = 0;
  if (hx > 0x3fd62e42) {
    // |x| > 0.5 ln 2
    if (hx < 0x3ff0a2b2) {
      // and |x| < 1.5 ln 2
      if (x == 1.0) return 2.718281828459045;
      hi = x - (xsb == 0 ? LN2_HI : -LN2_HI);
      lo = xsb == 0 ? LN2_LO : -LN2_LO;
      k = 1 - xsb - xsb;
    } else {
      k = <i32>(INV_LN2 * x + (xsb == 0 ? 0.5 : -0.5)); // truncation toward zero, as C's cast
      const t = <f64>k;
      hi = x - t * LN2_HI; // t * LN2_HI is exact here
      lo = t * LN2_LO;
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    // |x| < 2^-28
    if (1.0e+300 + x > 1.0) return 1.0 + x;
  } else {
    k = 0;
  }
  const t = x * x;
  const twopk = reinterpret<f64>(<u64>(<u32>(0x3ff00000 + ((k >= -1021 ? k : k + 1000) << 20))) << 32);
  const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k == 0) return 1.0 - ((x * c) / (c - 2.0) - x);
  const y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * TWO_1023;
    return y * twopk;
  }
  return y * twopk * TWO_M1000;
}

// fdlibm's straight-line path in f64x2, for lanes with 2^-28 <= |x| < 700 and x != 1 (NaN fails the range test):
// there its branches collapse into one formula (|x| <= 0.5 ln 2: k = 0, lo = 0, and 1 - ((x c) / (c - 2) - x) equals
// 1 - ((0 - x c / (2 - c)) - x); 0.5 ln 2 < |x| < 1.5 ln 2: k = +-1, hi = x -+ ln2_hi, lo = +-ln2_lo, which is what
// the general reduction gives for t = +-1), k >= -1010 needs no extra scaling, and every operation is the same
// IEEE operation in the same order. Other lanes go through expFdlibm.
const TINY: f64 = 3.725290298461914e-9; // 2^-28: fdlibm returns 1 + x below
const HALF_LN2_HX: f64 = reinterpret<f64>(0x3fd62e4300000000); // |x| >= this <=> hx > 0x3fd62e42 (k != 0)
const RANGE: f64 = 700;

// @ts-ignore: decorator
@inline function expPair(x: v128): v128 {
  const ax = f64x2.abs(x);
  const half = v128.or(f64x2.splat(0.5), v128.and(x, i64x2.splat(0x8000000000000000)));
  const kf = v128.and(f64x2.trunc(f64x2.add(f64x2.mul(f64x2.splat(INV_LN2), x), half)), f64x2.ge(ax, f64x2.splat(HALF_LN2_HX)));
  const hi = f64x2.sub(x, f64x2.mul(kf, f64x2.splat(LN2_HI)));
  const lo = f64x2.mul(kf, f64x2.splat(LN2_LO));
  const r = f64x2.sub(hi, lo);
  const t = f64x2.mul(r, r);
  let p = f64x2.add(f64x2.splat(P4), f64x2.mul(t, f64x2.splat(P5)));
  p = f64x2.add(f64x2.splat(P3), f64x2.mul(t, p));
  p = f64x2.add(f64x2.splat(P2), f64x2.mul(t, p));
  p = f64x2.add(f64x2.splat(P1), f64x2.mul(t, p));
  const c = f64x2.sub(r, f64x2.mul(t, p));
  const q = f64x2.div(f64x2.mul(r, c), f64x2.sub(f64x2.splat(2.0), c));
  const y = f64x2.sub(f64x2.splat(1.0), f64x2.sub(f64x2.sub(lo, q), hi));
  // 2^k from the exponent bits (k in [-1010, 1010])
  const k = i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(kf));
  const twopk = i64x2.shl(i64x2.add(k, i64x2.splat(1023)), 52);
  return f64x2.mul(y, twopk);
}

/** h1[i] <- (u / (1 + exp(-u))) * h3[i], u = h1[i], for i < len (h1, h3: byte offsets of f64 arrays). */
export function swiglu(h1: usize, h3: usize, len: i32): void {
  let i = 0;
  for (; i + 2 <= len; i += 2) {
    const p = h1 + (<usize>i << 3);
    const u = v128.load(p);
    const x = f64x2.neg(u);
    const ax = f64x2.abs(x);
    const ok = v128.and(v128.and(f64x2.ge(ax, f64x2.splat(TINY)), f64x2.lt(ax, f64x2.splat(RANGE))), f64x2.ne(x, f64x2.splat(1.0)));
    if (i64x2.all_true(ok)) {
      const e = expPair(x);
      v128.store(p, f64x2.mul(f64x2.div(u, f64x2.add(f64x2.splat(1), e)), v128.load(h3 + (<usize>i << 3))));
      continue;
    }
    for (let j = i; j < i + 2; j++) {
      const q = h1 + (<usize>j << 3);
      const v = load<f64>(q);
      store<f64>(q, (v / (1 + expFdlibm(-v))) * load<f64>(h3 + (<usize>j << 3)));
    }
  }
  for (; i < len; i++) {
    const q = h1 + (<usize>i << 3);
    const v = load<f64>(q);
    store<f64>(q, (v / (1 + expFdlibm(-v))) * load<f64>(h3 + (<usize>i << 3)));
  }
}

/** exp of n values in place through the f64x2 path where it applies (a test hook: it must equal Math.exp). */
export function expPairs(x: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const p = x + (<usize>i << 3);
    const v = v128.load(p);
    const ax = f64x2.abs(v);
    const ok = v128.and(v128.and(f64x2.ge(ax, f64x2.splat(TINY)), f64x2.lt(ax, f64x2.splat(RANGE))), f64x2.ne(v, f64x2.splat(1.0)));
    if (i64x2.all_true(ok)) v128.store(p, expPair(v));
    else {
      store<f64>(p, expFdlibm(load<f64>(p)));
      store<f64>(p, expFdlibm(load<f64>(p, 8)), 8);
    }
  }
  for (; i < n; i++) store<f64>(x + (<usize>i << 3), expFdlibm(load<f64>(x + (<usize>i << 3))));
}
