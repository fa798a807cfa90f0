// A-form (direct): because U_j = phi(k_j) [v_j; 1]^T is rank one,
//   acc_i += sum_t c(t) (phi(q_i) . phi(k_{i-t})) [v_{i-t}; 1]
// costs O(window * (m + dv)) per query from stored (phi(k), v) pairs. No FFT, no S matrices.
//
// Buffers: a "buffer" is rows 0..nb-1 of keys; queries are buffer rows q0..nb-1.
//   phiK: [nb, m]   v: [nb, dv]   phiQ: [nb - q0, m]   acc: [nb - q0, dv + 1] (last column: denominator)
import type { AformRingArgs, AformRowsArgs } from './kernelArgs.js';

/**
 * For query rows b in [b0, b1) add the lags t in [tLo, tHi) with t <= b:
 * acc[b - q0] = acc[b - q0]! + sum_t c[t] (phiQ[b - q0] . phiK[b - t]) [v[b - t]; 1].
 * Four queries share each key row load (register blocking); rows at the block edges mask invalid lags.
 */
export function aformRows(args: AformRowsArgs): void {
  const { c, tLo, tHi, phiK, v, phiQ, q0, m, dv, b0, b1, acc } = args;
  if (tHi <= tLo) return;
  const w1 = dv + 1;
  let b = b0;
  for (; b + 4 <= b1; b += 4) {
    const jLo = Math.max(0, b - tHi + 1);
    const jHi = b + 3 - tLo; // inclusive
    const qa = (b - q0) * m;
    const qb = qa + m;
    const qc = qb + m;
    const qd = qc + m;
    const aa = (b - q0) * w1;
    const ab = aa + w1;
    const ac = ab + w1;
    const ad = ac + w1;
    for (let j = jLo; j <= jHi; j++) {
      const ta = b - j;
      let wa = 0;
      let wb = 0;
      let wc = 0;
      let wd = 0;
      const ca = ta >= tLo && ta < tHi ? c[ta]! : 0;
      const cb = ta + 1 >= tLo && ta + 1 < tHi ? c[ta + 1]! : 0;
      const cc = ta + 2 >= tLo && ta + 2 < tHi ? c[ta + 2]! : 0;
      const cd = ta + 3 >= tLo && ta + 3 < tHi ? c[ta + 3]! : 0;
      if (ca === 0 && cb === 0 && cc === 0 && cd === 0) continue;
      const ko = j * m;
      let sa = 0;
      let sb = 0;
      let sc = 0;
      let sd = 0;
      for (let r = 0; r < m; r++) {
        const kr = phiK[ko + r]!;
        sa += phiQ[qa + r]! * kr;
        sb += phiQ[qb + r]! * kr;
        sc += phiQ[qc + r]! * kr;
        sd += phiQ[qd + r]! * kr;
      }
      wa = ca * sa;
      wb = cb * sb;
      wc = cc * sc;
      wd = cd * sd;
      const vo = j * dv;
      for (let col = 0; col < dv; col++) {
        const x = v[vo + col]!;
        acc[aa + col] = acc[aa + col]! + wa * x;
        acc[ab + col] = acc[ab + col]! + wb * x;
        acc[ac + col] = acc[ac + col]! + wc * x;
        acc[ad + col] = acc[ad + col]! + wd * x;
      }
      acc[aa + dv] = acc[aa + dv]! + wa;
      acc[ab + dv] = acc[ab + dv]! + wb;
      acc[ac + dv] = acc[ac + dv]! + wc;
      acc[ad + dv] = acc[ad + dv]! + wd;
    }
  }
  for (; b < b1; b++) aformRow(c, tLo, tHi, phiK, v, phiQ, (b - q0) * m, m, dv, b, acc, (b - q0) * w1);
}

/** One query row b (phiQ row at qOff, acc row at aOff); lags t in [tLo, min(tHi, b + 1)). */
function aformRow(
  c: Float64Array,
  tLo: number,
  tHi: number,
  phiK: Float64Array,
  v: Float64Array,
  phiQ: Float64Array,
  qOff: number,
  m: number,
  dv: number,
  b: number,
  acc: Float64Array,
  aOff: number,
): void {
  const tEnd = Math.min(tHi, b + 1);
  for (let t = tLo; t < tEnd; t++) {
    const ct = c[t]!;
    if (ct === 0) continue;
    const ko = (b - t) * m;
    let s = 0;
    for (let r = 0; r < m; r++) s += phiQ[qOff + r]! * phiK[ko + r]!;
    const w = ct * s;
    const vo = (b - t) * dv;
    for (let col = 0; col < dv; col++) acc[aOff + col] = acc[aOff + col]! + w * v[vo + col]!;
    acc[aOff + dv] = acc[aOff + dv]! + w;
  }
}

/**
 * One query against a ring of the last `len` keys (newest has lag 0):
 * ringK: [cap, m], ringV: [cap, dv], slots oldest-first from `start` (wrapping). acc: [dv + 1] at aOff.
 */
export function aformRing(args: AformRingArgs): void {
  const { c, ringK, ringV, start, len, cap, phiQ, qOff, m, dv, acc, aOff } = args;
  // newest slot has lag 0; walk from newest to oldest in at most two contiguous runs
  let slot = (start + len - 1) % cap;
  for (let t = 0; t < len; t++) {
    const ct = c[t]!;
    if (ct !== 0) {
      const ko = slot * m;
      let s = 0;
      for (let r = 0; r < m; r++) s += phiQ[qOff + r]! * ringK[ko + r]!;
      const w = ct * s;
      const vo = slot * dv;
      for (let col = 0; col < dv; col++) acc[aOff + col] = acc[aOff + col]! + w * ringV[vo + col]!;
      acc[aOff + dv] = acc[aOff + dv]! + w;
    }
    slot = slot === 0 ? cap - 1 : slot - 1;
  }
}
