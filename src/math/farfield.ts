// Far field: for lags t >= K the kernel is c(t) = cFar * gamma^(t-K+1), so
//   F_i = gamma (F_{i-1} + U_{i-K}),   S_far_i = cFar F_i,   U_j = phi(k_j) [v_j; 1]^T.
// F is an m x (dv+1) running state; compensated (Kahan) so millions of additions do not drift.

/** Far-field feature state of one head. Plain data: serializable as is. */
export interface FarState {
  /** F: [m, dv + 1] row-major */
  readonly sum: Float64Array;
  /** Kahan compensation of F: [m, dv + 1] */
  readonly comp: Float64Array;
}

export function createFarState(m: number, dv: number): FarState {
  return { sum: new Float64Array(m * (dv + 1)), comp: new Float64Array(m * (dv + 1)) };
}

/** F <- gamma (F + phiK_j [v_j; 1]^T), compensated. phiK row at kOff, v row at vOff. */
export function farAbsorb(F: FarState, gamma: number, phiK: Float64Array, kOff: number, v: Float64Array, vOff: number, m: number, dv: number): void {
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
export function farContract(F: FarState, cFar: number, phiQ: Float64Array, qOff: number, m: number, dv: number, acc: Float64Array, aOff: number): void {
  const sum = F.sum;
  const w1 = dv + 1;
  for (let r = 0; r < m; r++) {
    const q = cFar * phiQ[qOff + r]!;
    if (q === 0) continue;
    const o = r * w1;
    for (let col = 0; col <= dv; col++) acc[aOff + col] = acc[aOff + col]! + q * sum[o + col]!;
  }
}

/**
 * Run the far field over query rows b in [q0, nb) of a buffer whose key row b - K is absorbed before row b
 * is read (keys older than the buffer are already in F). phiK: [nb, m], v: [nb, dv], phiQ: [nb - q0, m],
 * acc: [nb - q0, dv + 1].
 */
export function farRows(F: FarState, K: number, cFar: number, gamma: number, phiK: Float64Array, v: Float64Array, phiQ: Float64Array, q0: number, nb: number, m: number, dv: number, acc: Float64Array): void {
  for (let b = q0; b < nb; b++) {
    const j = b - K;
    // j < 0 means no key has left the near field yet, so F is still zero: nothing to decay or add
    if (j < 0) continue;
    farAbsorb(F, gamma, phiK, j * m, v, j * dv, m, dv);
    farContract(F, cFar, phiQ, (b - q0) * m, m, dv, acc, (b - q0) * (dv + 1));
  }
}
