// A-form (direct) window sums in float32 for the Decoder's dtype 'float32' (the twin of aform.ts):
//   weights:  w_j = c(lag_j) (q . k_j)                   f32x4 dot products, four keys at a time
//   values:   acc[0 .. dv) += sum_j w_j v_j, acc[dv] += sum_j w_j
// Keys, values, queries and the kernel table c are float32; acc is float64. The value sums run in float32 over a
// group of at most AFORM_JC keys and each group's sum is added into acc in float64, so the float32 rounding of a
// sum never spans more than AFORM_JC terms (relative error ~ AFORM_JC * 2^-24 at worst, ~ sqrt of it typically).
// Groups are fixed by the keys' LOGICAL order (oldest first from the start of the window), never by where a
// ring wraps in memory: a ring restored linearized from a snapshot sums in exactly the same groups, so a
// restored decoder continues bit for bit.
import { AFORM_JC, AFORM_W } from './layout';

/** c[t] if tLo <= t < tHi, else 0 (float32 table). */
@inline function cAt(c: usize, t: i32, tLo: i32, tHi: i32): f32 {
  return t >= tLo && t < tHi ? load<f32>(c + (<usize>t << 2)) : 0;
}

/**
 * W[w0 + jj] = c(lag0 - jj) (q . k_jj) for keys jj < n (rows of k, stride m float32), 0 where c is 0 or the lag is
 * outside [tLo, tHi). W is float32 at AFORM_W.
 */
function weights32(c: usize, lag0: i32, tLo: i32, tHi: i32, k: usize, q: usize, n: i32, m: i32, w0: i32): void {
  const W = AFORM_W + (<usize>w0 << 2);
  const m4 = <usize>m << 2;
  const mv = m & ~3;
  const rEnd = <usize>mv << 2;
  const zero = f32x4.splat(0);
  let jj = 0;
  for (; jj + 4 <= n; jj += 4) {
    const k0 = k + <usize>jj * m4;
    const k1 = k0 + m4;
    const k2 = k1 + m4;
    const k3 = k2 + m4;
    let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (let r: usize = 0; r < rEnd; r += 16) {
      const qv = v128.load(q + r);
      s0 = f32x4.add(s0, f32x4.mul(qv, v128.load(k0 + r)));
      s1 = f32x4.add(s1, f32x4.mul(qv, v128.load(k1 + r)));
      s2 = f32x4.add(s2, f32x4.mul(qv, v128.load(k2 + r)));
      s3 = f32x4.add(s3, f32x4.mul(qv, v128.load(k3 + r)));
    }
    // lane sums of s0..s3 into one vector (d0, d1, d2, d3)
    const a = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7));
    const b = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
    let d = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
    for (let r = mv; r < m; r++) {
      const o = <usize>r << 2;
      const qs = f32x4.splat(load<f32>(q + o));
      d = f32x4.add(d, f32x4.mul(qs, f32x4(load<f32>(k0 + o), load<f32>(k1 + o), load<f32>(k2 + o), load<f32>(k3 + o))));
    }
    const t = lag0 - jj;
    const cv = f32x4(cAt(c, t, tLo, tHi), cAt(c, t - 1, tLo, tHi), cAt(c, t - 2, tLo, tHi), cAt(c, t - 3, tLo, tHi));
    // where c = 0 the weight is exactly 0, whatever the dot product is
    v128.store(W + (<usize>jj << 2), v128.and(f32x4.mul(cv, d), f32x4.ne(cv, zero)));
  }
  for (; jj < n; jj++) {
    const ct = cAt(c, lag0 - jj, tLo, tHi);
    let w: f32 = 0;
    if (ct != 0) {
      const kj = k + <usize>jj * m4;
      let s = zero;
      for (let r: usize = 0; r < rEnd; r += 16) s = f32x4.add(s, f32x4.mul(v128.load(q + r), v128.load(kj + r)));
      let dd: f32 = (f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 2)) + (f32x4.extract_lane(s, 1) + f32x4.extract_lane(s, 3));
      for (let r = mv; r < m; r++) dd += load<f32>(q + (<usize>r << 2)) * load<f32>(kj + (<usize>r << 2));
      w = ct * dd;
    }
    store<f32>(W + (<usize>jj << 2), w);
  }
}

/** acc[o .. o + 4) (float64) += the four float32 lanes of s. */
@inline function addInto(acc: usize, s: v128): void {
  v128.store(acc, f64x2.add(v128.load(acc), f64x2.promote_low_f32x4(s)));
  v128.store(acc, f64x2.add(v128.load(acc, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(s, s, 2, 3, 2, 3))), 16);
}

/**
 * One group of keys: float32 sums of W[jj] [v_jj; 1] over jj < n1 (rows of v1) then n1 <= jj < n1 + n2 (rows of v2,
 * the ring's second run), added into acc (float64, [dv + 1]).
 */
function values32(v1: usize, n1: i32, v2: usize, n2: i32, dv: i32, acc: usize): void {
  const W = AFORM_W;
  const dv4 = <usize>dv << 2;
  const n = n1 + n2;
  let col = 0;
  for (; col + 16 <= dv; col += 16) {
    const co = <usize>col << 2;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    // the two runs in one sequence of sums (jj < n1 from v1, then from v2)
    let vp = v1 + co;
    let wp = W;
    for (let run = 0; run < 2; run++) {
      const we = W + (<usize>(run == 0 ? n1 : n) << 2);
      for (; wp < we; wp += 4) {
        const w = v128.load32_splat(wp);
        a0 = f32x4.add(a0, f32x4.mul(w, v128.load(vp)));
        a1 = f32x4.add(a1, f32x4.mul(w, v128.load(vp, 16)));
        a2 = f32x4.add(a2, f32x4.mul(w, v128.load(vp, 32)));
        a3 = f32x4.add(a3, f32x4.mul(w, v128.load(vp, 48)));
        vp += dv4;
      }
      vp = v2 + co;
    }
    const ac = acc + (<usize>col << 3);
    addInto(ac, a0);
    addInto(ac + 32, a1);
    addInto(ac + 64, a2);
    addInto(ac + 96, a3);
  }
  for (; col + 4 <= dv; col += 4) {
    const co = <usize>col << 2;
    let a0 = f32x4.splat(0);
    let vp = v1 + co;
    for (let jj = 0; jj < n; jj++) {
      if (jj == n1) vp = v2 + co;
      a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(W + (<usize>jj << 2)), v128.load(vp)));
      vp += dv4;
    }
    addInto(acc + (<usize>col << 3), a0);
  }
  // the last value columns (fewer than four) one at a time, then the denominator
  for (; col < dv; col++) {
    let a: f32 = 0;
    let vp = v1 + (<usize>col << 2);
    for (let jj = 0; jj < n; jj++) {
      if (jj == n1) vp = v2 + (<usize>col << 2);
      a += load<f32>(W + (<usize>jj << 2)) * load<f32>(vp);
      vp += dv4;
    }
    const ac = acc + (<usize>col << 3);
    store<f64>(ac, load<f64>(ac) + <f64>a);
  }
  let den = f32x4.splat(0);
  let jj = 0;
  for (; jj + 4 <= n; jj += 4) den = f32x4.add(den, v128.load(W + (<usize>jj << 2)));
  let dsum: f32 = (f32x4.extract_lane(den, 0) + f32x4.extract_lane(den, 2)) + (f32x4.extract_lane(den, 1) + f32x4.extract_lane(den, 3));
  for (; jj < n; jj++) dsum += load<f32>(W + (<usize>jj << 2));
  const ad = acc + (<usize>dv << 3);
  store<f64>(ad, load<f64>(ad) + <f64>dsum);
}

/**
 * One query against a ring of the last `len` keys (newest has lag 0): slots oldest-first from `start`, wrapping at
 * `cap`. rk: [cap, m] f32, rv: [cap, dv] f32; c: [>= len] f32; q: [m] f32; acc: [dv + 1] f64.
 */
export function aformRing32(c: usize, rk: usize, rv: usize, start: i32, len: i32, cap: i32, q: usize, acc: usize, m: i32, dv: i32): void {
  const m4 = <usize>m << 2;
  const dv4 = <usize>dv << 2;
  // groups of AFORM_JC keys by logical index i (oldest first); key i sits in slot (start + i) mod cap
  for (let i0 = 0; i0 < len; i0 += AFORM_JC) {
    const n = min(AFORM_JC, len - i0);
    const s0 = (start + i0) % cap;
    const n1 = min(n, cap - s0); // the run up to the wrap
    const n2 = n - n1;
    weights32(c, len - 1 - i0, 0, len, rk + <usize>s0 * m4, q, n1, m, 0);
    if (n2 > 0) weights32(c, len - 1 - i0 - n1, 0, len, rk, q, n2, m, n1);
    values32(rv + <usize>s0 * dv4, n1, rv, n2, dv, acc);
  }
}

// ---------------------------------------------------------------- four queries (aformRows32)

/**
 * W[jj][i] = c(lag0 + i - jj) (q_i . k_jj) for queries i < 4 (rows of q, stride m) and keys jj < n: one f32x4 of
 * the four queries' weights per key.
 */
function weights4x32(c: usize, lag0: i32, tLo: i32, tHi: i32, k: usize, q: usize, n: i32, m: i32): void {
  const W = AFORM_W;
  const m4 = <usize>m << 2;
  const mv = m & ~3;
  const rEnd = <usize>mv << 2;
  const q0 = q;
  const q1 = q0 + m4;
  const q2 = q1 + m4;
  const q3 = q2 + m4;
  const zero = f32x4.splat(0);
  for (let jj = 0; jj < n; jj++) {
    const kj = k + <usize>jj * m4;
    let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (let r: usize = 0; r < rEnd; r += 16) {
      const x = v128.load(kj + r);
      s0 = f32x4.add(s0, f32x4.mul(v128.load(q0 + r), x));
      s1 = f32x4.add(s1, f32x4.mul(v128.load(q1 + r), x));
      s2 = f32x4.add(s2, f32x4.mul(v128.load(q2 + r), x));
      s3 = f32x4.add(s3, f32x4.mul(v128.load(q3 + r), x));
    }
    const a = f32x4.add(v128.shuffle<f32>(s0, s1, 0, 4, 1, 5), v128.shuffle<f32>(s0, s1, 2, 6, 3, 7));
    const b = f32x4.add(v128.shuffle<f32>(s2, s3, 0, 4, 1, 5), v128.shuffle<f32>(s2, s3, 2, 6, 3, 7));
    let d = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
    for (let r = mv; r < m; r++) {
      const o = <usize>r << 2;
      d = f32x4.add(d, f32x4.mul(f32x4(load<f32>(q0 + o), load<f32>(q1 + o), load<f32>(q2 + o), load<f32>(q3 + o)), f32x4.splat(load<f32>(kj + o))));
    }
    // lags of the four queries at key jj: t .. t + 3 (contiguous in c)
    const t = lag0 - jj;
    const cv = t >= tLo && t + 3 < tHi ? v128.load(c + (<usize>t << 2)) : f32x4(cAt(c, t, tLo, tHi), cAt(c, t + 1, tLo, tHi), cAt(c, t + 2, tLo, tHi), cAt(c, t + 3, tLo, tHi));
    v128.store(W + (<usize>jj << 4), v128.and(f32x4.mul(cv, d), f32x4.ne(cv, zero)));
  }
}

/** The four acc rows (f64, stride dv + 1) += float32 sums of W[jj][i] [v_jj; 1] over keys jj < n (rows of v). */
function values4x32(v: usize, n: i32, dv: i32, acc: usize): void {
  const W = AFORM_W;
  const dv4 = <usize>dv << 2;
  const w18 = <usize>(dv + 1) << 3;
  let col = 0;
  for (; col + 8 <= dv; col += 8) {
    const co = <usize>col << 2;
    let a0 = f32x4.splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    let vp = v + co;
    let wp = W;
    for (let jj = 0; jj < n; jj++) {
      const x = v128.load(vp);
      const y = v128.load(vp, 16);
      let w = v128.load32_splat(wp);
      a0 = f32x4.add(a0, f32x4.mul(w, x));
      b0 = f32x4.add(b0, f32x4.mul(w, y));
      w = v128.load32_splat(wp, 4);
      a1 = f32x4.add(a1, f32x4.mul(w, x));
      b1 = f32x4.add(b1, f32x4.mul(w, y));
      w = v128.load32_splat(wp, 8);
      a2 = f32x4.add(a2, f32x4.mul(w, x));
      b2 = f32x4.add(b2, f32x4.mul(w, y));
      w = v128.load32_splat(wp, 12);
      a3 = f32x4.add(a3, f32x4.mul(w, x));
      b3 = f32x4.add(b3, f32x4.mul(w, y));
      vp += dv4;
      wp += 16;
    }
    const ac = acc + (<usize>col << 3);
    addInto(ac, a0);
    addInto(ac + 32, b0);
    addInto(ac + w18, a1);
    addInto(ac + w18 + 32, b1);
    addInto(ac + 2 * w18, a2);
    addInto(ac + 2 * w18 + 32, b2);
    addInto(ac + 3 * w18, a3);
    addInto(ac + 3 * w18 + 32, b3);
  }
  // remaining value columns one at a time for the four rows at once, then the denominators
  for (; col <= dv; col++) {
    let s = f32x4.splat(0);
    let wp = W;
    if (col < dv) {
      let vp = v + (<usize>col << 2);
      for (let jj = 0; jj < n; jj++) {
        s = f32x4.add(s, f32x4.mul(v128.load(wp), v128.load32_splat(vp)));
        vp += dv4;
        wp += 16;
      }
    } else {
      for (let jj = 0; jj < n; jj++) {
        s = f32x4.add(s, v128.load(wp));
        wp += 16;
      }
    }
    const ac = acc + (<usize>col << 3);
    store<f64>(ac, load<f64>(ac) + <f64>f32x4.extract_lane(s, 0));
    store<f64>(ac + w18, load<f64>(ac + w18) + <f64>f32x4.extract_lane(s, 1));
    store<f64>(ac + 2 * w18, load<f64>(ac + 2 * w18) + <f64>f32x4.extract_lane(s, 2));
    store<f64>(ac + 3 * w18, load<f64>(ac + 3 * w18) + <f64>f32x4.extract_lane(s, 3));
  }
}

/**
 * For query rows b in [b0, b1): acc_b += sum_{t in [tLo, tHi), t <= b} c[t] (q_b . k_{b-t}) [v_{b-t}; 1].
 * k, v (f32) point at key row jBase (rows j < jBase are never read); q (f32), acc (f64) point at query row b0
 * (strides m and dv + 1). Rows go four at a time (one key row load serves four queries); each group's keys are
 * summed in float32 in chunks of AFORM_JC from its oldest key, each chunk's sums added into acc in float64. The
 * last rows (fewer than four) go one at a time.
 */
export function aformRows32(c: usize, tLo: i32, tHi: i32, k: usize, v: usize, jBase: i32, q: usize, acc: usize, b0: i32, b1: i32, m: i32, dv: i32): void {
  if (tHi <= tLo) return;
  const m4 = <usize>m << 2;
  const dv4 = <usize>dv << 2;
  const w18 = <usize>(dv + 1) << 3;
  const full = b0 + ((b1 - b0) & ~3);
  for (let g = b0; g < full; g += 4) {
    const lo = max(0, g - tHi + 1);
    const hi = g + 3 - tLo; // inclusive
    for (let j0 = lo; j0 <= hi; j0 += AFORM_JC) {
      const n = min(AFORM_JC, hi - j0 + 1);
      weights4x32(c, g - j0, tLo, tHi, k + <usize>(j0 - jBase) * m4, q + <usize>(g - b0) * m4, n, m);
      values4x32(v + <usize>(j0 - jBase) * dv4, n, dv, acc + <usize>(g - b0) * w18);
    }
  }
  for (let b = full; b < b1; b++) {
    const jLo = max(0, b - tHi + 1);
    const jHi = b - tLo; // inclusive
    const qb = q + <usize>(b - b0) * m4;
    const ab = acc + <usize>(b - b0) * w18;
    for (let j0 = jLo; j0 <= jHi; j0 += AFORM_JC) {
      const n = min(AFORM_JC, jHi - j0 + 1);
      weights32(c, b - j0, tLo, tHi, k + <usize>(j0 - jBase) * m4, qb, n, m, 0);
      values32(v + <usize>(j0 - jBase) * dv4, n, 0, 0, dv, ab);
    }
  }
}
