// The float32 kernels of the Decoder's dtype 'float32', plain TypeScript (the readable reference; the WASM twins
// are assembly/aform32.ts and far32.ts). Arrays of keys, values, queries and the kernel table are float32 (half
// the bytes); the arithmetic here is JavaScript's float64, the accumulators and F are float64. The WASM kernels
// compute in float32 (f32x4), so the two backends agree to the float32 contract, not bit for bit.
// Separate functions from aform.ts / farfield.ts (not one function over both array types): a call site that sees
// one array type stays monomorphic, so the float64 paths keep their speed.
import type { AformRing32Args, AformRows32Args, FarAbsorb32Args } from './kernelArgs.js';

/** One query against a ring of float32 rows (math/aform.ts aformRing over float32 arrays). acc: [dv + 1] at aOff. */
export function aformRing32(args: AformRing32Args): void {
  const { c, ringK, ringV, start, len, cap, phiQ, qOff, m, dv, acc, aOff } = args;
  // newest slot has lag 0
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

/** The A-form over a float32 buffer (math/aform.ts aformRows over float32 arrays: four queries share each key row load). */
export function aformRows32(args: AformRows32Args): void {
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
      const wa = ca * sa;
      const wb = cb * sb;
      const wc = cc * sc;
      const wd = cd * sd;
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
  // the last rows (fewer than four) one at a time
  for (; b < b1; b++) {
    const qOff = (b - q0) * m;
    const aOff = (b - q0) * w1;
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
}

/** F <- gamma (F + phiK_row [v_row; 1]^T), compensated (math/farfield.ts farAbsorb over float32 rows; same bits as WASM). */
export function farAbsorb32(args: FarAbsorb32Args): void {
  const { far: F, gamma, phiK, kOff, v, vOff, m, dv } = args;
  const sum = F.sum;
  const comp = F.comp;
  const w1 = dv + 1;
  for (let r = 0; r < m; r++) {
    const kr = phiK[kOff + r]!;
    const o = r * w1;
    for (let col = 0; col <= dv; col++) {
      const u = col < dv ? kr * v[vOff + col]! : kr;
      const y = u - comp[o + col]!;
      const s = sum[o + col]!;
      const t = s + y;
      comp[o + col] = (t - s) - y;
      sum[o + col] = t;
    }
  }
  if (gamma !== 1) {
    const len = m * w1;
    for (let i = 0; i < len; i++) {
      sum[i] = sum[i]! * gamma;
      comp[i] = comp[i]! * gamma;
    }
  }
}
