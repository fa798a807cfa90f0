// A-form (direct) window sums, in two phases per chunk of keys:
//   weights:  w[j, i] = c(lag(i, j)) (phiQ_i . phiK_j)   (0 where the lag is outside [tLo, tHi) or c is 0)
//   values:   acc_i[0 .. dv) += sum_j w[j, i] v_j,   acc_i[dv] += sum_j w[j, i]
// Both phases are register blocked (four queries, or four keys for one query), so a key or value row is loaded
// once per four products and the accumulators stay in registers across a whole chunk. The weights of a chunk
// (AFORM_JC keys) live in the fixed scratch at AFORM_W.
// Versus the JS loop the sums are the same sums in the same key order; only the m-term dot products are added
// in two interleaved halves, so results agree to rounding (not bit for bit).
import { AFORM_JC, AFORM_W } from './layout';

@inline function hsum(a: v128): f64 {
  return f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1);
}

// (lane sums of a, lane sums of b)
@inline function hadd2(a: v128, b: v128): v128 {
  return f64x2.add(v128.shuffle<f64>(a, b, 0, 2), v128.shuffle<f64>(a, b, 1, 3));
}

/** c[t] if tLo <= t < tHi, else 0. */
@inline function cAt(c: usize, t: i32, tLo: i32, tHi: i32): f64 {
  return t >= tLo && t < tHi ? load<f64>(c + (<usize>t << 3)) : 0;
}

// ---------------------------------------------------------------- one query

/**
 * W[jj] = c(lag0 - jj) (q . k_jj) for keys jj < n (rows of k, stride m), 0 where c is 0 or the lag is outside
 * [tLo, tHi).
 */
function weights1(c: usize, lag0: i32, tLo: i32, tHi: i32, k: usize, q: usize, n: i32, m: i32): void {
  const W = AFORM_W;
  const m8 = <usize>m << 3;
  const m2 = m & ~1;
  const zero = f64x2.splat(0);
  let jj = 0;
  for (; jj + 4 <= n; jj += 4) {
    const k0 = k + <usize>jj * m8;
    const k1 = k0 + m8;
    const k2 = k1 + m8;
    const k3 = k2 + m8;
    let s0 = zero;
    let s1 = zero;
    let s2 = zero;
    let s3 = zero;
    let r: usize = 0;
    const rEnd = <usize>m2 << 3;
    for (; r < rEnd; r += 16) {
      const qv = v128.load(q + r);
      s0 = f64x2.add(s0, f64x2.mul(qv, v128.load(k0 + r)));
      s1 = f64x2.add(s1, f64x2.mul(qv, v128.load(k1 + r)));
      s2 = f64x2.add(s2, f64x2.mul(qv, v128.load(k2 + r)));
      s3 = f64x2.add(s3, f64x2.mul(qv, v128.load(k3 + r)));
    }
    let d01 = hadd2(s0, s1);
    let d23 = hadd2(s2, s3);
    if (m2 < m) {
      const qs = f64x2.splat(load<f64>(q + rEnd));
      d01 = f64x2.add(d01, f64x2.mul(qs, f64x2(load<f64>(k0 + rEnd), load<f64>(k1 + rEnd))));
      d23 = f64x2.add(d23, f64x2.mul(qs, f64x2(load<f64>(k2 + rEnd), load<f64>(k3 + rEnd))));
    }
    const t = lag0 - jj;
    const c01 = f64x2(cAt(c, t, tLo, tHi), cAt(c, t - 1, tLo, tHi));
    const c23 = f64x2(cAt(c, t - 2, tLo, tHi), cAt(c, t - 3, tLo, tHi));
    // where c = 0 the weight is exactly 0 (the JS loop skips the key), whatever the dot product is
    const w01 = v128.and(f64x2.mul(c01, d01), f64x2.ne(c01, zero));
    const w23 = v128.and(f64x2.mul(c23, d23), f64x2.ne(c23, zero));
    v128.store(W + (<usize>jj << 3), w01);
    v128.store(W + (<usize>jj << 3), w23, 16);
  }
  for (; jj < n; jj++) {
    const ct = cAt(c, lag0 - jj, tLo, tHi);
    let w: f64 = 0;
    if (ct != 0) {
      const kj = k + <usize>jj * m8;
      let s = zero;
      let r: usize = 0;
      const rEnd = <usize>m2 << 3;
      for (; r < rEnd; r += 16) s = f64x2.add(s, f64x2.mul(v128.load(q + r), v128.load(kj + r)));
      let d = hsum(s);
      if (m2 < m) d += load<f64>(q + rEnd) * load<f64>(kj + rEnd);
      w = ct * d;
    }
    store<f64>(W + (<usize>jj << 3), w);
  }
}

/** acc[0 .. dv) += sum_jj W[jj] v_jj (rows of v, stride dv); acc[dv] += sum_jj W[jj]. */
function values1(v: usize, n: i32, dv: i32, acc: usize): void {
  const W = AFORM_W;
  const dv8 = <usize>dv << 3;
  let col = 0;
  for (; col + 8 <= dv; col += 8) {
    const ac = acc + (<usize>col << 3);
    let a0 = v128.load(ac);
    let a1 = v128.load(ac, 16);
    let a2 = v128.load(ac, 32);
    let a3 = v128.load(ac, 48);
    let vp = v + (<usize>col << 3);
    for (let jj = 0; jj < n; jj++) {
      const w = v128.load64_splat(W + (<usize>jj << 3));
      a0 = f64x2.add(a0, f64x2.mul(w, v128.load(vp)));
      a1 = f64x2.add(a1, f64x2.mul(w, v128.load(vp, 16)));
      a2 = f64x2.add(a2, f64x2.mul(w, v128.load(vp, 32)));
      a3 = f64x2.add(a3, f64x2.mul(w, v128.load(vp, 48)));
      vp += dv8;
    }
    v128.store(ac, a0);
    v128.store(ac, a1, 16);
    v128.store(ac, a2, 32);
    v128.store(ac, a3, 48);
  }
  for (; col + 2 <= dv; col += 2) {
    const ac = acc + (<usize>col << 3);
    let a0 = v128.load(ac);
    let vp = v + (<usize>col << 3);
    for (let jj = 0; jj < n; jj++) {
      a0 = f64x2.add(a0, f64x2.mul(v128.load64_splat(W + (<usize>jj << 3)), v128.load(vp)));
      vp += dv8;
    }
    v128.store(ac, a0);
  }
  // the last odd value column and the denominator column together
  const ac = acc + (<usize>col << 3);
  if (col < dv) {
    let a = load<f64>(ac);
    let den = load<f64>(ac, 8);
    let vp = v + (<usize>col << 3);
    for (let jj = 0; jj < n; jj++) {
      const w = load<f64>(W + (<usize>jj << 3));
      a += w * load<f64>(vp);
      den += w;
      vp += dv8;
    }
    store<f64>(ac, a);
    store<f64>(ac, den, 8);
  } else {
    let den = load<f64>(ac);
    for (let jj = 0; jj < n; jj++) den += load<f64>(W + (<usize>jj << 3));
    store<f64>(ac, den);
  }
}

// ---------------------------------------------------------------- four queries

/**
 * W[jj][i] = c(lag0 + i - jj) (q_i . k_jj) for queries i < 4 (rows of q, stride m) and keys jj < n.
 */
function weights4(c: usize, lag0: i32, tLo: i32, tHi: i32, k: usize, q: usize, n: i32, m: i32): void {
  const W = AFORM_W;
  const m8 = <usize>m << 3;
  const m2 = m & ~1;
  const rEnd = <usize>m2 << 3;
  const q0 = q;
  const q1 = q0 + m8;
  const q2 = q1 + m8;
  const q3 = q2 + m8;
  const zero = f64x2.splat(0);
  for (let jj = 0; jj < n; jj += 2) {
    const two = jj + 1 < n;
    const ka = k + <usize>jj * m8;
    // with one key left, the second key is the first again (its weights are not stored)
    const kb = two ? ka + m8 : ka;
    let s0a = zero, s1a = zero, s2a = zero, s3a = zero;
    let s0b = zero, s1b = zero, s2b = zero, s3b = zero;
    for (let r: usize = 0; r < rEnd; r += 16) {
      const x = v128.load(ka + r);
      const y = v128.load(kb + r);
      let qv = v128.load(q0 + r);
      s0a = f64x2.add(s0a, f64x2.mul(qv, x));
      s0b = f64x2.add(s0b, f64x2.mul(qv, y));
      qv = v128.load(q1 + r);
      s1a = f64x2.add(s1a, f64x2.mul(qv, x));
      s1b = f64x2.add(s1b, f64x2.mul(qv, y));
      qv = v128.load(q2 + r);
      s2a = f64x2.add(s2a, f64x2.mul(qv, x));
      s2b = f64x2.add(s2b, f64x2.mul(qv, y));
      qv = v128.load(q3 + r);
      s3a = f64x2.add(s3a, f64x2.mul(qv, x));
      s3b = f64x2.add(s3b, f64x2.mul(qv, y));
    }
    let a01 = hadd2(s0a, s1a);
    let a23 = hadd2(s2a, s3a);
    let b01 = hadd2(s0b, s1b);
    let b23 = hadd2(s2b, s3b);
    if (m2 < m) {
      const x = f64x2.splat(load<f64>(ka + rEnd));
      const y = f64x2.splat(load<f64>(kb + rEnd));
      const q01 = f64x2(load<f64>(q0 + rEnd), load<f64>(q1 + rEnd));
      const q23 = f64x2(load<f64>(q2 + rEnd), load<f64>(q3 + rEnd));
      a01 = f64x2.add(a01, f64x2.mul(q01, x));
      a23 = f64x2.add(a23, f64x2.mul(q23, x));
      b01 = f64x2.add(b01, f64x2.mul(q01, y));
      b23 = f64x2.add(b23, f64x2.mul(q23, y));
    }
    // lags of the four queries at key jj: t, t + 1, t + 2, t + 3 (contiguous in c)
    const t = lag0 - jj;
    let c01: v128, c23: v128;
    if (t >= tLo && t + 3 < tHi) {
      c01 = v128.load(c + (<usize>t << 3));
      c23 = v128.load(c + (<usize>t << 3), 16);
    } else {
      c01 = f64x2(cAt(c, t, tLo, tHi), cAt(c, t + 1, tLo, tHi));
      c23 = f64x2(cAt(c, t + 2, tLo, tHi), cAt(c, t + 3, tLo, tHi));
    }
    const o = W + (<usize>jj << 5);
    v128.store(o, v128.and(f64x2.mul(c01, a01), f64x2.ne(c01, zero)));
    v128.store(o, v128.and(f64x2.mul(c23, a23), f64x2.ne(c23, zero)), 16);
    if (two) {
      const u = t - 1;
      if (u >= tLo && u + 3 < tHi) {
        c01 = v128.load(c + (<usize>u << 3));
        c23 = v128.load(c + (<usize>u << 3), 16);
      } else {
        c01 = f64x2(cAt(c, u, tLo, tHi), cAt(c, u + 1, tLo, tHi));
        c23 = f64x2(cAt(c, u + 2, tLo, tHi), cAt(c, u + 3, tLo, tHi));
      }
      v128.store(o, v128.and(f64x2.mul(c01, b01), f64x2.ne(c01, zero)), 32);
      v128.store(o, v128.and(f64x2.mul(c23, b23), f64x2.ne(c23, zero)), 48);
    }
  }
}

/** acc_i[0 .. dv) += sum_jj W[jj][i] v_jj, acc_i[dv] += sum_jj W[jj][i] for four acc rows (stride dv + 1). */
function values4(v: usize, n: i32, dv: i32, acc: usize): void {
  const W = AFORM_W;
  const dv8 = <usize>dv << 3;
  const w18 = <usize>(dv + 1) << 3;
  const r0 = acc;
  const r1 = r0 + w18;
  const r2 = r1 + w18;
  const r3 = r2 + w18;
  let col = 0;
  for (; col + 4 <= dv; col += 4) {
    const co = <usize>col << 3;
    let a0 = v128.load(r0 + co), b0 = v128.load(r0 + co, 16);
    let a1 = v128.load(r1 + co), b1 = v128.load(r1 + co, 16);
    let a2 = v128.load(r2 + co), b2 = v128.load(r2 + co, 16);
    let a3 = v128.load(r3 + co), b3 = v128.load(r3 + co, 16);
    let vp = v + co;
    let wp = W;
    for (let jj = 0; jj < n; jj++) {
      const x = v128.load(vp);
      const y = v128.load(vp, 16);
      let w = v128.load64_splat(wp);
      a0 = f64x2.add(a0, f64x2.mul(w, x));
      b0 = f64x2.add(b0, f64x2.mul(w, y));
      w = v128.load64_splat(wp, 8);
      a1 = f64x2.add(a1, f64x2.mul(w, x));
      b1 = f64x2.add(b1, f64x2.mul(w, y));
      w = v128.load64_splat(wp, 16);
      a2 = f64x2.add(a2, f64x2.mul(w, x));
      b2 = f64x2.add(b2, f64x2.mul(w, y));
      w = v128.load64_splat(wp, 24);
      a3 = f64x2.add(a3, f64x2.mul(w, x));
      b3 = f64x2.add(b3, f64x2.mul(w, y));
      vp += dv8;
      wp += 32;
    }
    v128.store(r0 + co, a0);
    v128.store(r0 + co, b0, 16);
    v128.store(r1 + co, a1);
    v128.store(r1 + co, b1, 16);
    v128.store(r2 + co, a2);
    v128.store(r2 + co, b2, 16);
    v128.store(r3 + co, a3);
    v128.store(r3 + co, b3, 16);
  }
  // remaining value columns one at a time (for the four rows at once), then the denominators
  for (; col <= dv; col++) {
    const co = <usize>col << 3;
    let a01 = f64x2(load<f64>(r0 + co), load<f64>(r1 + co));
    let a23 = f64x2(load<f64>(r2 + co), load<f64>(r3 + co));
    let wp = W;
    if (col < dv) {
      let vp = v + co;
      for (let jj = 0; jj < n; jj++) {
        const x = v128.load64_splat(vp);
        a01 = f64x2.add(a01, f64x2.mul(v128.load(wp), x));
        a23 = f64x2.add(a23, f64x2.mul(v128.load(wp, 16), x));
        vp += dv8;
        wp += 32;
      }
    } else {
      for (let jj = 0; jj < n; jj++) {
        a01 = f64x2.add(a01, v128.load(wp));
        a23 = f64x2.add(a23, v128.load(wp, 16));
        wp += 32;
      }
    }
    store<f64>(r0 + co, f64x2.extract_lane(a01, 0));
    store<f64>(r1 + co, f64x2.extract_lane(a01, 1));
    store<f64>(r2 + co, f64x2.extract_lane(a23, 0));
    store<f64>(r3 + co, f64x2.extract_lane(a23, 1));
  }
}

// ---------------------------------------------------------------- kernels

/** Query rows per block of aformRows (16 groups of four) and keys per shared chunk (<= AFORM_JC). */
const ROWS_PER_BLOCK: i32 = 64;
const KEY_CHUNK: i32 = 256;

/**
 * For query rows b in [b0, b1): acc_b += sum_{t in [tLo, tHi), t <= b} c[t] (q_b . k_{b-t}) [v_{b-t}; 1].
 * k, v point at key row jBase (rows j < jBase are never read: the caller passes jBase <= max(0, b0 - tHi + 1));
 * q, acc point at query row b0 (strides m and dv + 1).
 */
export function aformRows(c: usize, tLo: i32, tHi: i32, k: usize, v: usize, jBase: i32, q: usize, acc: usize, b0: i32, b1: i32, m: i32, dv: i32): void {
  if (tHi <= tLo) return;
  const m8 = <usize>m << 3;
  const dv8 = <usize>dv << 3;
  const w18 = <usize>(dv + 1) << 3;
  // Groups of four queries, ROWS_PER_BLOCK rows at a time: every group of a block takes its keys chunk by chunk
  // from one shared sequence of KEY_CHUNK-key chunks, so a chunk of keys and values (256 KB at m = dv = 64) is
  // read from memory once per block and from L2 by the other groups; one group at a time re-read the whole
  // window per group (2.7x slower per pair once a window outgrows the caches). Each group still adds its keys
  // in ascending order, and values4 sums sequentially whatever the chunk edges: the same bits.
  const full = b0 + ((b1 - b0) & ~3);
  for (let bb = b0; bb < full; bb += ROWS_PER_BLOCK) {
    const be = min(full, bb + ROWS_PER_BLOCK);
    const jLoU = max(0, bb - tHi + 1);
    const jHiU = be - 1 - tLo; // inclusive
    for (let j0 = jLoU; j0 <= jHiU; j0 += KEY_CHUNK) {
      const j1 = min(jHiU, j0 + KEY_CHUNK - 1);
      for (let g = bb; g < be; g += 4) {
        const lo = max(j0, max(0, g - tHi + 1));
        const hi = min(j1, g + 3 - tLo);
        if (hi < lo) continue;
        weights4(c, g - lo, tLo, tHi, k + <usize>(lo - jBase) * m8, q + <usize>(g - b0) * m8, hi - lo + 1, m);
        values4(v + <usize>(lo - jBase) * dv8, hi - lo + 1, dv, acc + <usize>(g - b0) * w18);
      }
    }
  }
  // the last rows (fewer than four) one at a time
  for (let b = full; b < b1; b++) {
    const jLo = max(0, b - tHi + 1);
    const jHi = b - tLo;
    const qb = q + <usize>(b - b0) * m8;
    const ab = acc + <usize>(b - b0) * w18;
    for (let j0 = jLo; j0 <= jHi; j0 += AFORM_JC) {
      const n = min(AFORM_JC, jHi - j0 + 1);
      weights1(c, b - j0, tLo, tHi, k + <usize>(j0 - jBase) * m8, qb, n, m);
      values1(v + <usize>(j0 - jBase) * dv8, n, dv, ab);
    }
  }
}

/**
 * One query against a ring of the last `len` keys (newest has lag 0): slots oldest-first from `start`, wrapping
 * at `cap`. rk: [cap, m], rv: [cap, dv]; q: [m]; acc: [dv + 1].
 */
export function aformRing(c: usize, rk: usize, rv: usize, start: i32, len: i32, cap: i32, q: usize, acc: usize, m: i32, dv: i32): void {
  const m8 = <usize>m << 3;
  const dv8 = <usize>dv << 3;
  // slots in two contiguous runs, oldest first: [start, start + n1) then [0, len - n1)
  const n1 = min(len, cap - start);
  // lag of slot s in the first run: len - 1 - (s - start)
  for (let s0 = 0; s0 < n1; s0 += AFORM_JC) {
    const n = min(AFORM_JC, n1 - s0);
    const slot = start + s0;
    weights1(c, len - 1 - s0, 0, len, rk + <usize>slot * m8, q, n, m);
    values1(rv + <usize>slot * dv8, n, dv, acc);
  }
  const n2 = len - n1;
  for (let s0 = 0; s0 < n2; s0 += AFORM_JC) {
    const n = min(AFORM_JC, n2 - s0);
    weights1(c, n2 - 1 - s0, 0, len, rk + <usize>s0 * m8, q, n, m);
    values1(rv + <usize>s0 * dv8, n, dv, acc);
  }
}
