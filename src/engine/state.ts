// The decoder's state as plain data (DESIGN section 5): what a snapshot stores and what a decoder is
// rebuilt from. Checked here against the invariants the engine maintains, not only sizes and types, so a
// state no decoder could have reached is refused (a CRC only proves the bytes were not damaged by accident).
import { StateError, describe } from '../core/errors.js';
import { MAX_POSITION } from '../core/limits.js';
import type { BackendName } from '../backend/types.js';
import type { ResolvedConfig } from './config.js';
import { kernelLogAt } from '../math/kernel.js';
import { checkMethodOption, type MethodOption } from './nearfield.js';
import { checkDtypeOption, type DType } from './dtype.js';

/** Per-head state. Ring arrays are linearized, oldest first, length len = min(position, K_h). */
export interface HeadState {
  /** ringK: [len, m] phi(k) of the last len keys, scaled by 2^-keyExp (so every entry is in [0, 1]); Float32Array for dtype 'float32' */
  ringK: Float64Array | Float32Array;
  /** ringV: [len, dv] the values, scaled by 2^-valueExp; Float32Array for dtype 'float32' */
  ringV: Float64Array | Float32Array;
  /** far-field state F: [m, dv + 1] (keys older than K_h, weighted by the tail) and its Kahan compensation */
  farSum: Float64Array;
  farComp: Float64Array;
  /** key features are shifted by 2^-keyExp (an integer; NO_KEY before the first key) */
  keyExp: number;
  /** values are stored scaled by 2^-valueExp (an integer >= 0; nonzero only for |v| near the top: 2^900, float32 2^100) */
  valueExp: number;
}

/** Everything a continuation depends on besides the config. */
export interface DecoderState {
  position: number;
  /** near-field method for chunks; recorded because 'fft' and 'direct' round differently */
  method: MethodOption;
  /** the backend the session ran on; recorded because backends round differently */
  backend: BackendName;
  /** the arithmetic of the rings (absent: 'float64', what states before dtype were); recorded because they round differently */
  dtype?: DType;
  heads: HeadState[];
}

/** keyExp before the decoder has seen a key. */
export const NO_KEY = -1e308;
/** Values are kept below 2^VALUE_EXP_LIMIT in magnitude (room for 2^120 of sums before overflow). */
export const VALUE_EXP_LIMIT = 900;
/**
 * The same for dtype 'float32' (float32 tops out at 2^128): room for 2^28 of float32 sums (a group of 512 keys
 * times weights up to m <= 2^16) before the float32 window sums overflow; F and the accumulators are float64.
 */
export const VALUE_EXP_LIMIT32 = 100;

/** Values of a dtype are kept below 2^valueExpLimit(dtype) in magnitude. */
export function valueExpLimit(dtype: DType): number {
  return dtype === 'float32' ? VALUE_EXP_LIMIT32 : VALUE_EXP_LIMIT;
}

/** Bound on |keyExp| for a config: l2 logits lie in [-(|w|max + 1/2), |w|max + 1/2]; others: the float64 range. */
function keyExpRange(cfg: ResolvedConfig): [number, number] {
  const f = cfg.features;
  if (f.kind === 'prf' && f.normalize === 'l2') {
    let wMax = 0;
    const W = f.projection;
    for (let r = 0; r < f.count; r++) {
      let sq = 0;
      for (let c = 0; c < cfg.keyDim; c++) sq += W[r * cfg.keyDim + c]! * W[r * cfg.keyDim + c]!;
      wMax = Math.max(wMax, Math.sqrt(sq));
    }
    const hi = Math.ceil((wMax + 0.5) / Math.LN2) + 1;
    return [-hi, hi];
  }
  if (f.kind === 'prf') {
    // logits span the float64 range: keyExp = ceil(logit / ln 2)
    const hi = Math.ceil(Number.MAX_VALUE / Math.LN2);
    return [-hi, hi];
  }
  // deterministic features in (0, 2^1024): keyExp = the exponent of the largest feature, rounded up
  return [-1074, 1024];
}

function fail(message: string): never {
  throw new StateError(message);
}

function checkArray(a: unknown, path: string, length: number, lo: number, hi: number, float32 = false): Float64Array | Float32Array {
  if (!(float32 ? a instanceof Float32Array : a instanceof Float64Array)) fail(`${path} must be a ${float32 ? 'Float32Array' : 'Float64Array'}, got ${describe(a)}`);
  return checkValues(a as Float64Array | Float32Array, path, length, lo, hi);
}

function checkValues(a: Float64Array | Float32Array, path: string, length: number, lo: number, hi: number): Float64Array | Float32Array {
  if (a.length !== length) fail(`${path} must hold ${length} values, got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (!(x >= lo && x <= hi)) fail(`${path}[${i}] must be a finite number in [${lo}, ${hi}], got ${describe(x)}`);
  }
  return a;
}

/**
 * Check a state against a config: sizes, and the invariants of a reachable state. Throws StateError
 * saying which field and what was expected. Allocates nothing.
 */
export function checkDecoderState(cfg: ResolvedConfig, state: DecoderState): void {
  if (state === null || typeof state !== 'object') fail(`state must be an object { position, method, backend, heads }, got ${describe(state)}`);
  const { heads, valueDim: dv, featureDim: m } = cfg;
  const position = state.position;
  if (typeof position !== 'number' || !Number.isInteger(position) || position < 0 || position > MAX_POSITION) {
    fail(`state.position must be an integer in [0, ${MAX_POSITION}], got ${describe(position)}`);
  }
  checkMethodOption(state.method, 'state.method', fail, true);
  if (state.backend !== 'js' && state.backend !== 'wasm') fail(`state.backend must be 'js' or 'wasm', got ${describe(state.backend)}`);
  // absent: a float64 state (states and snapshots from before the dtype option)
  const dtype = checkDtypeOption(state.dtype, 'state.dtype', fail);
  const f32 = dtype === 'float32';
  const valueLimit = valueExpLimit(dtype);
  // |v| < 2^1024 needs at most 1024 - valueLimit + 1
  const maxValueExp = 1025 - valueLimit;
  if (!Array.isArray(state.heads) || state.heads.length !== heads) fail(`state.heads must be an array of ${heads} head states, got ${describe(state.heads)}`);
  const [expLo, expHi] = keyExpRange(cfg);
  for (let h = 0; h < heads; h++) {
    const p = `state.heads[${h}]`;
    const hs = state.heads[h]!;
    if (hs === null || typeof hs !== 'object') fail(`${p} must be an object, got ${describe(hs)}`);
    const kernel = cfg.past[h]!;
    const K = kernel.logBias.length;
    const len = Math.min(position, K);
    const keyExp = hs.keyExp;
    // unset until a key has a positive feature (at position 0 always)
    const noKey = keyExp === NO_KEY;
    if (position === 0 && !noKey) fail(`${p}.keyExp must be unset (${NO_KEY}) at position 0, got ${describe(keyExp)}`);
    if (!noKey && (typeof keyExp !== 'number' || !Number.isInteger(keyExp) || keyExp < expLo || keyExp > expHi)) {
      fail(`${p}.keyExp must be an integer in [${expLo}, ${expHi}] (what this config's features can produce) or ${NO_KEY} (no key yet), got ${describe(keyExp)}`);
    }
    const valueExp = hs.valueExp;
    if (typeof valueExp !== 'number' || !Number.isInteger(valueExp) || valueExp < 0 || valueExp > maxValueExp) {
      fail(`${p}.valueExp must be an integer in [0, ${maxValueExp}], got ${describe(valueExp)}`);
    }
    // shifted key features never exceed 1: the shift follows the largest logit seen (and are 0 before it is set)
    checkArray(hs.ringK, `${p}.ringK`, len * m, 0, noKey ? 0 : 1, f32);
    const vMax = 2 ** valueLimit;
    checkArray(hs.ringV, `${p}.ringV`, len * dv, -vMax, vMax, f32);
    // F holds keys older than K: it is exactly zero until a key has left the near field, and always when
    // the tail gives them no weight; its denominator column sums non-negative weights of at most 1 each
    const absorbed = position - K;
    const hasFar = kernel.tail.kind !== 'zero' && kernelLogAt(kernel, K - 1) > -Infinity;
    const farBound = absorbed > 0 && hasFar && !noKey ? absorbed * vMax : 0;
    checkArray(hs.farSum, `${p}.farSum`, m * (dv + 1), -farBound, farBound);
    checkArray(hs.farComp, `${p}.farComp`, m * (dv + 1), -farBound, farBound);
    if (farBound > 0) {
      for (let r = 0; r < m; r++) {
        const o = r * (dv + 1);
        const den = hs.farSum[o + dv]!;
        if (!(den >= 0 && den <= absorbed + 1)) fail(`${p}.farSum[${r}, ${dv}] (a sum of ${absorbed} key weights in [0, 1]) must be in [0, ${absorbed}], got ${describe(den)}`);
        // F[r, col] = sum_j phi_r(k_j) v_j[col] and F[r, dv] = sum_j phi_r(k_j): their ratio is an average of values
        const limit = vMax * den * (1 + 2 ** -30) + 2 ** -1000;
        // a Kahan compensation holds rounding errors of its sum's terms: far below their magnitude (the weight
        // sum has positive terms only; value columns may cancel, so their bound is the terms', not the sum's)
        const compLimit = (x: number) => x * 2 ** -40 + 2 ** -1000;
        if (!(Math.abs(hs.farComp[o + dv]!) <= compLimit(den))) fail(`${p}.farComp[${r}, ${dv}] must be a rounding error of the weight sum ${den} (at most 2^-40 of it), got ${describe(hs.farComp[o + dv])}`);
        for (let col = 0; col < dv; col++) {
          const x = hs.farSum[o + col]!;
          if (!(Math.abs(x) <= limit)) fail(`${p}.farSum[${r}, ${col}] must be at most 2^${valueLimit} times the weight sum ${den} in magnitude (an average of stored values), got ${describe(x)}`);
          const c = hs.farComp[o + col]!;
          if (!(Math.abs(c) <= compLimit(limit))) fail(`${p}.farComp[${r}, ${col}] must be a rounding error (at most 2^-40 of 2^${valueLimit} times the weight sum), got ${describe(c)}`);
        }
      }
    }
  }
}
