// The O(n^2) float64 oracle, written straight from the formula of DESIGN section 2. Readable first.
import type { ResolvedConfig } from '../engine/config.js';
import { kernelLogAt, kernelMaxLog } from './kernel.js';
import { plainFeatures } from './features.js';

/**
 * One head. q, k: [n, d]; v: [n, dv]; out: [n, dv].
 * z_i = sum_j c(i-j) (phi(q_i).phi(k_j)) v_j / sum_j c(i-j) (phi(q_i).phi(k_j)), zero when the denominator is 0.
 * Also returns, in `absOut` when given, sum_j w_ij |v_j| / sum_j w_ij: the magnitude scale tests use for a
 * normwise error where cancellation makes z_i small.
 */
export function referenceHead(cfg: ResolvedConfig, head: number, q: Float64Array, k: Float64Array, v: Float64Array, n: number, out: Float64Array, absOut?: Float64Array): void {
  const d = cfg.keyDim;
  const dv = cfg.valueDim;
  const m = cfg.featureDim;
  const phiQ = new Float64Array(n * m);
  const phiK = new Float64Array(n * m);
  plainFeatures(cfg.features, d, q, n, phiQ);
  plainFeatures(cfg.features, d, k, n, phiK);
  const past = cfg.past[head]!;
  const future = cfg.future[head] ?? null;
  // c = exp(b - shift): a common factor of every weight, so it cancels; without it biases above ~709.8 overflow
  const top = Math.max(kernelMaxLog(past), future === null ? -Infinity : kernelMaxLog(future));
  const shift = Number.isFinite(top) ? top : 0;
  for (let i = 0; i < n; i++) {
    let den = 0;
    const num = new Float64Array(dv);
    const abs = new Float64Array(dv);
    for (let j = 0; j < n; j++) {
      let logC: number;
      if (j <= i) logC = kernelLogAt(past, i - j);
      else if (future !== null) logC = kernelLogAt(future, j - i);
      else continue;
      const c = Math.exp(logC - shift);
      if (c === 0) continue;
      let dot = 0;
      for (let r = 0; r < m; r++) dot += phiQ[i * m + r]! * phiK[j * m + r]!;
      const w = c * dot;
      den += w;
      for (let col = 0; col < dv; col++) {
        num[col] = num[col]! + w * v[j * dv + col]!;
        abs[col] = abs[col]! + w * Math.abs(v[j * dv + col]!);
      }
    }
    for (let col = 0; col < dv; col++) {
      out[i * dv + col] = den === 0 ? 0 : num[col]! / den;
      if (absOut) absOut[i * dv + col] = den === 0 ? 0 : abs[col]! / den;
    }
  }
}
