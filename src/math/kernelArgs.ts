// Argument records of the hot kernels (shared by the plain kernels in math/ and the backends above them).
// Records instead of long positional lists, so swapping two sizes does not compile silently; hot callers
// keep one record each and refill its fields, so a call allocates nothing.
import type { Normalize } from '../core/types.js';

/**
 * The element type of a kernel's rows: Float64Array, or Float32Array for the float32 twins (dtype 'float32': key
 * features, values, queries and the kernel table float32; accumulators and the far-field state F stay float64, so
 * long streams do not drift).
 */
export type Rows = Float64Array | Float32Array;

/** acc[b - q0] += sum_{t in [tLo, tHi), t <= b} c[t] (phiQ[b - q0] . phiK[b - t]) [v[b - t]; 1] for rows b in [b0, b1). */
export interface AformRowsArgs<R extends Rows = Float64Array> {
  c: R; // [>= tHi] kernel c(t)
  tLo: number;
  tHi: number;
  phiK: R; // [nb, m] buffer keys
  v: R; // [nb, dv]
  phiQ: R; // [nb - q0, m]
  q0: number;
  b0: number;
  b1: number;
  m: number;
  dv: number;
  acc: Float64Array; // [nb - q0, dv + 1]
}

/** One query against a ring of the last `len` keys (newest lag 0), slots oldest-first from `start`, wrapping at `cap`. */
export interface AformRingArgs<R extends Rows = Float64Array> {
  c: R; // [>= len]
  ringK: R; // [cap, m]
  ringV: R; // [cap, dv]
  start: number;
  len: number;
  cap: number;
  phiQ: R; // row at qOff, [m]
  qOff: number;
  m: number;
  dv: number;
  acc: Float64Array; // row at aOff, [dv + 1]
  aOff: number;
}

/** Far-field state F: [m, dv + 1] row-major with its Kahan compensation. */
export interface FarArrays {
  sum: Float64Array;
  comp: Float64Array;
}

/** F <- gamma (F + phiK_row [v_row; 1]^T), compensated (F float64 for either row type). */
export interface FarAbsorbArgs<R extends Rows = Float64Array> {
  far: FarArrays;
  gamma: number;
  phiK: R;
  kOff: number;
  v: R;
  vOff: number;
  m: number;
  dv: number;
}

/** The float32 twins' records. */
export type AformRows32Args = AformRowsArgs<Float32Array>;
export type AformRing32Args = AformRingArgs<Float32Array>;
export type FarAbsorb32Args = FarAbsorbArgs<Float32Array>;

/** acc[aOff..aOff+dv] += cFar * phiQ_row^T F. */
export interface FarContractArgs {
  far: FarArrays;
  cFar: number;
  phiQ: Float64Array;
  qOff: number;
  m: number;
  dv: number;
  acc: Float64Array;
  aOff: number;
}

/** out[i, r] = w_r . x~_i - |x~_i|^2 / 2 for rows i < n; returns the largest logit (-Infinity when n = 0). */
export interface PrfLogitsArgs {
  W: Float64Array; // [m, d]
  m: number;
  d: number;
  normalize: Normalize;
  x: Float64Array; // [n, d]
  n: number;
  out: Float64Array; // [n, m]
}

/** c[M, N] (+)= a[M, K] . b[N, K]^T (a linear layer y = x W^T with W: [out, in]); row-major, offsets in elements. */
export interface GemmArgs {
  a: Float64Array;
  aOff: number;
  b: Float64Array;
  bOff: number;
  c: Float64Array;
  cOff: number;
  M: number;
  N: number;
  K: number;
  /** add into c instead of overwriting it */
  accumulate: boolean;
}

/** Y[0 .. 2N) += X[xOff ..] * H[hOff ..] (complex, interleaved, N bins). */
export interface SpectralMacArgs {
  Y: Float64Array;
  X: Float64Array;
  xOff: number;
  H: Float64Array;
  hOff: number;
  N: number;
}

