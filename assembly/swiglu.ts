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

/** h1[i] <- (u / (1 + exp(-u))) * h3[i], u = h1[i], for i < len (h1, h3: byte offsets of f64 arrays). */
export function swiglu(h1: usize, h3: usize, len: i32): void {
  for (let i = 0; i < len; i++) {
    const p = h1 + (<usize>i << 3);
    const u = load<f64>(p);
    store<f64>(p, (u / (1 + expFdlibm(-u))) * load<f64>(h3 + (<usize>i << 3)));
  }
}
