// Argument records of the float32 kernels of the Decoder's dtype 'float32' (the twins of kernelArgs.ts): key
// features, values, queries and the kernel table are float32; the accumulators and the far-field state F stay
// float64 (so long streams do not drift).
import type { FarArrays } from './kernelArgs.js';

/** One query against a ring of the last `len` keys (newest lag 0), slots oldest-first from `start`, wrapping at `cap`. */
export interface AformRing32Args {
  c: Float32Array; // [>= len]
  ringK: Float32Array; // [cap, m]
  ringV: Float32Array; // [cap, dv]
  start: number;
  len: number;
  cap: number;
  phiQ: Float32Array; // row at qOff, [m]
  qOff: number;
  m: number;
  dv: number;
  acc: Float64Array; // row at aOff, [dv + 1]
  aOff: number;
}

/** acc[b - q0] += sum_{t in [tLo, tHi), t <= b} c[t] (phiQ[b - q0] . phiK[b - t]) [v[b - t]; 1] for rows b in [b0, b1). */
export interface AformRows32Args {
  c: Float32Array; // [>= tHi]
  tLo: number;
  tHi: number;
  phiK: Float32Array; // [nb, m]
  v: Float32Array; // [nb, dv]
  phiQ: Float32Array; // [nb - q0, m]
  q0: number;
  b0: number;
  b1: number;
  m: number;
  dv: number;
  acc: Float64Array; // [nb - q0, dv + 1]
}

/** F <- gamma (F + phiK_row [v_row; 1]^T), compensated; F float64, the row float32. */
export interface FarAbsorb32Args {
  far: FarArrays;
  gamma: number;
  phiK: Float32Array;
  kOff: number;
  v: Float32Array;
  vOff: number;
  m: number;
  dv: number;
}
