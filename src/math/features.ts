// Feature maps phi: R^d -> R^m. PRF: phi(x) = exp(W x~ - |x~|^2 / 2) / sqrt(m), x~ = normalize(x).
// Positive constant factors (1/sqrt(m), per-query shifts, one shift shared by a set of keys) cancel in the
// attention ratio, so the fast paths drop 1/sqrt(m) and shift logits to keep exp() far from overflow.
// Deterministic maps (elu+1, relu) are scaled by powers of two for the same reason: exactly, so results
// do not change, but a dot product of features of inputs near 1e160 no longer overflows.
import type { Normalize, ResolvedFeatures } from '../core/types.js';
import type { PrfLogitsArgs } from './kernelArgs.js';

/** What computes PRF logits: the plain kernel below, or a backend's. */
export type PrfLogitsKernel = (args: PrfLogitsArgs) => number;

// |x|^2 inside this range cannot overflow or lose precision to underflow: the plain formula applies
const SQ_SAFE_LO = 2 ** -900;
const SQ_SAFE_HI = 2 ** 900;

/**
 * PRF logits: out[i, r] = w_r . x~_i - |x~_i|^2 / 2.
 * x: [n, d] row-major; W: [m, d] row-major; out: [n, m]. Returns the largest logit (-Infinity when n = 0).
 * l2 is scale invariant, and so is this computation: rows whose |x|^2 would overflow or underflow are first
 * divided by their largest |x_c|. Logits that cannot be represented (scale/none with enormous inputs)
 * become -Infinity (a zero feature) or the largest finite number, never NaN.
 */
export function prfLogits(args: PrfLogitsArgs): number {
  const { W, m, d, normalize, x, n, out } = args;
  const fixed = normalize === 'scale' ? 1 / Math.sqrt(Math.sqrt(d)) : 1;
  let best = -Infinity;
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    let sq = 0;
    for (let c = 0; c < d; c++) sq += x[xo + c]! * x[xo + c]!;
    // x is read as (x pre) pre2 (only for l2 rows outside the safe range; two factors because 2^-e alone
    // can overflow when x is subnormal)
    let pre = 1;
    let pre2 = 1;
    if (normalize === 'l2' && !(sq >= SQ_SAFE_LO && sq <= SQ_SAFE_HI)) {
      let amax = 0;
      for (let c = 0; c < d; c++) amax = Math.max(amax, Math.abs(x[xo + c]!));
      // |x|^2 underflowed or overflowed: x 2^-e with 2^e >= max|x_c| > 2^(e-1) has norm in (1/2, sqrt(d)]
      // (a power of two: exact, and no 1/amax overflow for subnormal inputs; zero stays zero)
      if (amax > 0) {
        const e = -powerOfTwoAbove(amax);
        pre = exp2(Math.trunc(e / 2));
        pre2 = exp2(e - Math.trunc(e / 2));
      }
      sq = 0;
      for (let c = 0; c < d; c++) {
        const y = x[xo + c]! * pre * pre2;
        sq += y * y;
      }
    }
    let scale = fixed;
    if (normalize === 'l2') scale = sq > 0 ? 1 / Math.sqrt(sq) : 0;
    const half = (sq * scale * scale) / 2;
    const oo = i * m;
    for (let r = 0; r < m; r++) {
      const wo = r * d;
      let s = 0;
      if (pre === 1 && pre2 === 1) for (let c = 0; c < d; c++) s += W[wo + c]! * x[xo + c]!;
      else for (let c = 0; c < d; c++) s += W[wo + c]! * (x[xo + c]! * pre * pre2);
      let a = s * scale - half;
      if (!(a < Infinity)) a = a === Infinity ? Number.MAX_VALUE : -Infinity; // NaN (inf - inf) or +inf
      out[oo + r] = a;
      if (a > best) best = a;
    }
  }
  return best;
}

/** Deterministic maps, applied to raw x: out: [n, d]. Returns the largest feature (0 when n = 0). */
export function deterministicFeatures(kind: 'elu+1' | 'relu', x: Float64Array, n: number, d: number, out: Float64Array): number {
  const len = n * d;
  let best = 0;
  if (kind === 'relu') {
    for (let i = 0; i < len; i++) {
      const a = x[i]!;
      const f = a > 0 ? a : 0;
      out[i] = f;
      if (f > best) best = f;
    }
  } else {
    for (let i = 0; i < len; i++) {
      const a = x[i]!;
      const f = a > 0 ? a + 1 : Math.exp(a);
      out[i] = f;
      if (f > best) best = f;
    }
  }
  return best;
}

/** The smallest integer e with value <= 2^e (value > 0 finite); log2's rounding is corrected. */
export function powerOfTwoAbove(value: number): number {
  let e = Math.ceil(Math.log2(value));
  while (exp2(e) < value) e++;
  while (exp2(e - 1) >= value) e--;
  return e;
}

/** 2^e for any integer e in the float64 range (2 ** e alone gives 0 or Infinity past the subnormals). */
export function exp2(e: number): number {
  if (e > 1023) return 2 ** 1023 * 2 ** (e - 1023);
  if (e < -1022) return 2 ** -1022 * 2 ** (e + 1022);
  return 2 ** e;
}

/** In place: row i of out: [n, m] *= 2^-e_i with e_i from the row's largest entry (exact; zero rows stay zero). */
function scaleRowsByPowerOfTwo(out: Float64Array, n: number, m: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * m;
    let rowMax = 0;
    for (let r = 0; r < m; r++) if (out[o + r]! > rowMax) rowMax = out[o + r]!;
    if (rowMax === 0) continue;
    const f = exp2(-powerOfTwoAbove(rowMax));
    for (let r = 0; r < m; r++) out[o + r] = out[o + r]! * f;
  }
}

/** The kernels the feature maps run on: a backend workspace, or the plain JS ones (JS_FEATURE_KERNELS). */
export interface FeatureKernels {
  prfLogits(a: PrfLogitsArgs): number;
  expRows(x: Float64Array, n: number, m: number): void;
  expShift(x: Float64Array, len: number, shift: number): void;
}

/** In place, rows of PRF logits x: [n, m] -> exp(logit - row max) (rows with no finite logit become zero). */
export function expRows(x: Float64Array, n: number, m: number): void {
  for (let i = 0; i < n; i++) {
    const o = i * m;
    let rowMax = -Infinity;
    for (let r = 0; r < m; r++) if (x[o + r]! > rowMax) rowMax = x[o + r]!;
    if (rowMax === -Infinity) {
      x.fill(0, o, o + m); // no representable feature: the query sees no key
      continue;
    }
    for (let r = 0; r < m; r++) x[o + r] = Math.exp(x[o + r]! - rowMax);
  }
}

/** In place: x[i] <- exp(x[i] - shift) for i < len. */
export function expShift(x: Float64Array, len: number, shift: number): void {
  for (let i = 0; i < len; i++) x[i] = Math.exp(x[i]! - shift);
}

export const JS_FEATURE_KERNELS: FeatureKernels = { prfLogits, expRows, expShift };

/**
 * Query features with a per-row shift (the row's largest PRF logit maps to exp(0) = 1; deterministic rows
 * are scaled by a power of two into (1/2, 1]). x: [n, d]; out: [n, m]. W: the projection (default f's own; a
 * WASM workspace passes its copy).
 */
export function queryFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array, k: FeatureKernels = JS_FEATURE_KERNELS, W?: Float64Array): void {
  if (f.kind !== 'prf') {
    deterministicFeatures(f.kind, x, n, d, out);
    scaleRowsByPowerOfTwo(out, n, d);
    return;
  }
  k.prfLogits({ W: W ?? f.projection, m: f.count, d, normalize: f.normalize, x, n, out });
  k.expRows(out, n, f.count);
}

/**
 * Key features with one shift for the whole set (the largest PRF logit maps to 1; deterministic features
 * are scaled by one power of two so the largest is in (1/2, 1]). x: [n, d]; out: [n, m].
 */
export function keyFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array, k: FeatureKernels = JS_FEATURE_KERNELS, W?: Float64Array): void {
  if (f.kind !== 'prf') {
    const best = deterministicFeatures(f.kind, x, n, d, out);
    if (best > 0) {
      const s = exp2(-powerOfTwoAbove(best));
      for (let i = 0; i < n * d; i++) out[i] = out[i]! * s;
    }
    return;
  }
  const best = k.prfLogits({ W: W ?? f.projection, m: f.count, d, normalize: f.normalize, x, n, out });
  k.expShift(out, n * f.count, Number.isFinite(best) ? best : 0);
}

/** Unshifted features straight from the formula (the reference path): out: [n, m]. */
export function plainFeatures(f: ResolvedFeatures, d: number, x: Float64Array, n: number, out: Float64Array): void {
  if (f.kind !== 'prf') {
    deterministicFeatures(f.kind, x, n, d, out);
    return;
  }
  const m = f.count;
  prfLogits({ W: f.projection, m, d, normalize: f.normalize, x, n, out });
  const inv = 1 / Math.sqrt(m);
  for (let i = 0; i < n * m; i++) out[i] = Math.exp(out[i]!) * inv;
}

export type { Normalize };
