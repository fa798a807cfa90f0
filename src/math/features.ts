// Feature maps phi: R^d -> R^m. PRF: phi(x) = exp(W x~ - |x~|^2 / 2) / sqrt(m), x~ = normalize(x).
// Positive constant factors (1/sqrt(m), per-query shifts, one shift shared by a set of keys) cancel in the
// attention ratio, so the fast paths drop 1/sqrt(m) and shift logits to keep exp() far from overflow.
import type { Normalize, ResolvedFeatures } from '../engine/config.js';

/** Scale factor applied to x before projecting; l2 is per row (computed in prfLogits). */
function normalizeScale(normalize: Normalize, d: number): number {
  return normalize === 'scale' ? 1 / Math.sqrt(Math.sqrt(d)) : 1;
}

/**
 * PRF logits: out[i, r] = w_r . x~_i - |x~_i|^2 / 2.
 * x: [n, d] row-major; W: [m, d] row-major; out: [n, m]. Returns the largest logit (-Infinity when n = 0).
 */
export function prfLogits(W: Float64Array, m: number, d: number, normalize: Normalize, x: Float64Array, n: number, out: Float64Array): number {
  const fixed = normalizeScale(normalize, d);
  let best = -Infinity;
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let sq = 0;
    for (let c = 0; c < d; c++) sq += x[xo + c]! * x[xo + c]!;
    let scale = fixed;
    if (normalize === 'l2') scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    const half = (sq * scale * scale) / 2;
    const oo = i * m;
    for (let r = 0; r < m; r++) {
      const wo = r * d;
      let s = 0;
      for (let c = 0; c < d; c++) s += W[wo + c]! * x[xo + c]!;
      const a = s * scale - half;
      out[oo + r] = a;
      if (a > best) best = a;
    }
  }
  return best;
}

/** Deterministic maps, applied to raw x: out: [n, d]. */
export function deterministicFeatures(kind: 'elu+1' | 'relu', x: Float64Array, n: number, d: number, out: Float64Array): void {
  const len = n * d;
  if (kind === 'relu') {
    for (let i = 0; i < len; i++) {
      const a = x[i]!;
      out[i] = a > 0 ? a : 0;
    }
  } else {
    for (let i = 0; i < len; i++) {
      const a = x[i]!;
      out[i] = a > 0 ? a + 1 : Math.exp(a);
    }
  }
}

/**
 * Query features with a per-row shift (the row's largest PRF logit maps to exp(0) = 1).
 * x: [n, d]; out: [n, m].
 */
export function queryFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array): void {
  if (f.kind !== 'prf') return deterministicFeatures(f.kind, x, n, d, out);
  const m = f.count;
  prfLogits(f.projection, m, d, f.normalize, x, n, out);
  for (let i = 0; i < n; i++) {
    const o = i * m;
    let rowMax = -Infinity;
    for (let r = 0; r < m; r++) if (out[o + r]! > rowMax) rowMax = out[o + r]!;
    for (let r = 0; r < m; r++) out[o + r] = Math.exp(out[o + r]! - rowMax);
  }
}

/** In place: logits -> exp(logit - shift). */
export function expShifted(logits: Float64Array, len: number, shift: number): void {
  for (let i = 0; i < len; i++) logits[i] = Math.exp(logits[i]! - shift);
}

/**
 * Key features with one shift for the whole set (the largest logit maps to 1). x: [n, d]; out: [n, m].
 * Deterministic maps are not shifted.
 */
export function keyFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array): void {
  if (f.kind !== 'prf') return deterministicFeatures(f.kind, x, n, d, out);
  const best = prfLogits(f.projection, f.count, d, f.normalize, x, n, out);
  expShifted(out, n * f.count, Number.isFinite(best) ? best : 0);
}

/** Unshifted features straight from the formula (the reference path): out: [n, m]. */
export function plainFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array): void {
  if (f.kind !== 'prf') return deterministicFeatures(f.kind, x, n, d, out);
  const m = f.count;
  prfLogits(f.projection, m, d, f.normalize, x, n, out);
  const inv = 1 / Math.sqrt(m);
  for (let i = 0; i < n * m; i++) out[i] = Math.exp(out[i]!) * inv;
}
