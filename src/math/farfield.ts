// Far field: for lags t >= K the kernel is c(t) = cFar * gamma^(t-K+1), so
//   F_i = gamma (F_{i-1} + U_{i-K}),   S_far_i = cFar F_i,   U_j = phi(k_j) [v_j; 1]^T.
// F is an m x (dv+1) running state; compensated (Kahan) so millions of additions do not drift.
import type { FarAbsorbArgs, FarArrays, FarContractArgs } from './kernelArgs.js';

/** Far-field feature state of one head (F: [m, dv + 1] row-major and its Kahan compensation). Plain data. */
export type FarState = FarArrays;

/** F <- gamma (F + phiK_j [v_j; 1]^T), compensated. phiK row at kOff, v row at vOff. */
export function farAbsorb(args: FarAbsorbArgs): void {
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
  if (gamma !== 1) scaleFar(F, gamma, m, dv);
}

/** F <- gamma F (also used to rescale exactly by a power of two when the key shift moves). */
export function scaleFar(F: FarState, factor: number, m: number, dv: number): void {
  const len = m * (dv + 1);
  for (let i = 0; i < len; i++) {
    F.sum[i] = F.sum[i]! * factor;
    F.comp[i] = F.comp[i]! * factor;
  }
}

/** acc[aOff..] += cFar * phiQ_row^T F  (phiQ row at qOff). */
export function farContract(args: FarContractArgs): void {
  const { far: F, cFar, phiQ, qOff, m, dv, acc, aOff } = args;
  const sum = F.sum;
  const w1 = dv + 1;
  for (let r = 0; r < m; r++) {
    const q = cFar * phiQ[qOff + r]!;
    if (q === 0) continue;
    const o = r * w1;
    for (let col = 0; col <= dv; col++) acc[aOff + col] = acc[aOff + col]! + q * sum[o + col]!;
  }
}
