// exp in f64x2 for the feature maps: phi = exp(logit - shift), two lanes at a time.
//   k = nearest(x / ln 2), r = (x - k ln2_hi) - k ln2_lo (|r| <= ln 2 / 2; ln2_hi has 32 trailing zero bits, so
//   k ln2_hi is exact), exp(r) by its Taylor polynomial to degree 13 (truncation < 4e-18 relative), times 2^k
//   built in the exponent bits. Within 2 ulp of the true value (test/backend/wasm.test.ts measures it against
//   Math.exp); lanes outside [-708, 709] (underflow, overflow, -Infinity, NaN) go through the scalar Math.exp.

const LOG2E: f64 = 1.4426950408889634;
const LN2_HI: f64 = 6.93147180369123816490e-01; // 0x3fe62e42fee00000
const LN2_LO: f64 = 1.90821492927058770002e-10; // ln 2 - LN2_HI
const LO: f64 = -708;
const HI: f64 = 709;

// 1 / j! for j = 2 .. 13
const C2: f64 = 0.5;
const C3: f64 = 1.0 / 6.0;
const C4: f64 = 1.0 / 24.0;
const C5: f64 = 1.0 / 120.0;
const C6: f64 = 1.0 / 720.0;
const C7: f64 = 1.0 / 5040.0;
const C8: f64 = 1.0 / 40320.0;
const C9: f64 = 1.0 / 362880.0;
const C10: f64 = 1.0 / 3628800.0;
const C11: f64 = 1.0 / 39916800.0;
const C12: f64 = 1.0 / 479001600.0;
const C13: f64 = 1.0 / 6227020800.0;

@inline function poly(r: v128): v128 {
  let p = f64x2.splat(C13);
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C12));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C11));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C10));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C9));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C8));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C7));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C6));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C5));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C4));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C3));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(C2));
  p = f64x2.add(f64x2.mul(p, r), f64x2.splat(1));
  return f64x2.add(f64x2.mul(p, r), f64x2.splat(1));
}

/** exp of both lanes of x, each in [LO, HI]. */
@inline function exp2lanes(x: v128): v128 {
  const k = f64x2.nearest(f64x2.mul(x, f64x2.splat(LOG2E)));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(k, f64x2.splat(LN2_HI))), f64x2.mul(k, f64x2.splat(LN2_LO)));
  const ki = i64x2.extend_low_i32x4_s(i32x4.trunc_sat_f64x2_s_zero(k));
  const scale = i64x2.shl(i64x2.add(ki, i64x2.splat(1023)), 52);
  return f64x2.mul(poly(r), scale);
}

/** exp of one value: the polynomial path in range (the same bits as its lane in a pair), else the scalar Math.exp. */
@inline function expScalar(x: f64): f64 {
  return x >= LO && x <= HI ? f64x2.extract_lane(exp2lanes(f64x2.splat(x)), 0) : Math.exp(x);
}

/** One lane pair at p (in place): exp(x - shift). A lane's result depends on that lane alone. */
@inline function expPair(p: usize, s: v128): void {
  const x = f64x2.sub(v128.load(p), s);
  const inRange = v128.and(f64x2.ge(x, f64x2.splat(LO)), f64x2.le(x, f64x2.splat(HI)));
  if (i64x2.all_true(inRange)) {
    v128.store(p, exp2lanes(x));
  } else {
    store<f64>(p, expScalar(f64x2.extract_lane(x, 0)));
    store<f64>(p, expScalar(f64x2.extract_lane(x, 1)), 8);
  }
}

@inline function expOne(p: usize, shift: f64): void {
  store<f64>(p, expScalar(load<f64>(p) - shift));
}

/** In place: x[i] <- exp(x[i] - shift) for i < len. */
export function expShift(x: usize, len: i32, shift: f64): void {
  const s = f64x2.splat(shift);
  let i = 0;
  for (; i + 2 <= len; i += 2) expPair(x + (<usize>i << 3), s);
  if (i < len) expOne(x + (<usize>i << 3), shift);
}

/**
 * In place, rows of x: [n, m]: x[i, r] <- exp(x[i, r] - max_r x[i, r]); a row with no logit above -Infinity
 * becomes zeros (no representable feature: that query sees no key).
 */
export function expRows(x: usize, n: i32, m: i32): void {
  const m8 = <usize>m << 3;
  for (let i = 0; i < n; i++) {
    const row = x + <usize>i * m8;
    let mx = -Infinity;
    for (let r = 0; r < m; r++) {
      const a = load<f64>(row + (<usize>r << 3));
      if (a > mx) mx = a;
    }
    if (mx == -Infinity) {
      memory.fill(row, 0, m8);
      continue;
    }
    const s = f64x2.splat(mx);
    let r = 0;
    for (; r + 2 <= m; r += 2) expPair(row + (<usize>r << 3), s);
    if (r < m) expOne(row + (<usize>r << 3), mx);
  }
}
