// The float32 kernels of the Decoder's dtype 'float32', plain TypeScript (the readable reference; the WASM twins
// are assembly/aform32.ts and far32.ts). Arrays of keys, values, queries and the kernel table are float32 (half
// the bytes); the arithmetic here is JavaScript's float64, the accumulators and F are float64. The WASM kernels
// compute in float32 (f32x4), so the two backends agree to the float32 contract, not bit for bit.
// Separate functions from aform.ts / farfield.ts (not one function over both array types): a call site that sees
// one array type stays monomorphic, so the float64 paths keep their speed.
import type { AformRing32Args, AformRows32Args, FarAbsorb32Args } from './kernelArgs32.js';

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

/** The A-form over a float32 buffer (math/aform.ts aformRows, one query row at a time). */
export function aformRows32(args: AformRows32Args): void {
  const { c, tLo, tHi, phiK, v, phiQ, q0, m, dv, b0, b1, acc } = args;
  const w1 = dv + 1;
  for (let b = b0; b < b1; b++) {
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
