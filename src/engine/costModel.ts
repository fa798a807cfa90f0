// Cost model: predicts the time of the A-form (direct) and of the partitioned-FFT S-form for one pass over a
// buffer, and picks the cheaper method and the FFT block size. Constants are seconds per unit of work, per
// backend, measured on the reference machine by `npm run bench -- calibrate` (bench/calibrate.ts) and written here.
// A Decoder of dtype 'float32' plans its chunks with COSTS32 (below) too, but its 'direct' runs the float32 A-form
// (assembly/aform32.ts), measured at 0.6x the float64 A-form on WASM (1.0x on JS; scratch bench of aformRows32 vs
// aformRows, K = 512): COSTS32's float64 `direct` overstates it, so such a decoder turns to the FFT a little early.
import type { BackendName } from '../backend/types.js';
import { blockRange } from '../math/fftconv.js';

export interface CostConstants {
  /**
   * A-form: seconds per (query, key) pair per unit of (m + dv + 1), by window: [lags, seconds] pairs in
   * ascending lags, interpolated in log(lags). Measured per window because a window past the caches (m = dv =
   * 64: 16k lags = 16 MB) can cost more per pair than one that fits (2.7x on WASM before its kernel was blocked).
   */
  direct: ReadonlyArray<readonly [number, number]>;
  /**
   * Seconds of one complex FFT of size 2^j (index j), timed alone. Per N log2 N it is not constant: a transform
   * that outgrows L1 (N > 2048 complex float64 = 32 KB) costs ~1.5-2x more per point, which a single constant
   * missed (it chose B = 4096 at n = 16384, 24% slower than B = 1024 on WASM).
   */
  fftSeconds: readonly number[];
  /** frequency-domain complex multiply-add: seconds per bin */
  mac: number;
  /** forming inputs, contracting outputs and error estimates: seconds per (row, channel) */
  channelRow: number;
}

// Measured on the reference machine (2-core AMD EPYC VM, Node 20) by `npm run bench -- calibrate`.
export const COSTS: Record<BackendName, CostConstants> = {
  js: {
    direct: [[512, 8.36e-10], [2048, 8.46e-10], [8192, 8.50e-10], [32768, 8.51e-10]],
    fftSeconds: [0, 0, 1.84e-8, 6.72e-8, 9.57e-8, 3.04e-7, 5.14e-7, 1.51e-6, 2.46e-6, 6.81e-6, 1.17e-5, 3.15e-5, 5.99e-5, 1.45e-4, 2.77e-4, 6.78e-4, 1.45e-3, 3.58e-3],
    mac: 3.55e-9,
    channelRow: 5.54e-9,
  },
  wasm: {
    direct: [[512, 8.29e-11], [2048, 8.17e-11], [8192, 8.31e-11], [32768, 8.99e-11]],
    fftSeconds: [0, 0, 5.88e-8, 6.97e-8, 7.81e-8, 1.07e-7, 1.48e-7, 3.14e-7, 5.43e-7, 1.29e-6, 2.52e-6, 6.12e-6, 1.37e-5, 3.62e-5, 7.88e-5, 1.93e-4, 3.81e-4, 9.07e-4],
    mac: 3.30e-10,
    channelRow: 1.77e-9,
  },
};

/** Seconds of one complex FFT of size N (a power of two) on a backend: its table, extrapolated by N log2 N. */
export function fftSeconds(N: number, cost: CostConstants): number {
  const j = Math.round(Math.log2(N));
  const t = cost.fftSeconds;
  if (j < t.length) return t[j]!;
  const last = t.length - 1;
  return t[last]! * (N * j) / (2 ** last * last);
}

/** Lags [0, HEAD) of the FFT path are summed directly: exact for the first rows, and cheap. */
export const HEAD_LAGS = 32;

/** Number of (query, key) pairs the A-form visits for query rows [q0, nb) and lags [tLo, tHi). */
export function directPairs(q0: number, nb: number, tLo: number, tHi: number): number {
  let pairs = 0;
  // rows b see lags [tLo, min(tHi, b + 1))
  const full = Math.max(q0, tHi - 1); // from this row on every lag is visible
  for (let b = q0; b < Math.min(nb, full); b++) pairs += Math.max(0, Math.min(tHi, b + 1) - tLo);
  if (nb > full) pairs += (nb - full) * Math.max(0, tHi - tLo);
  return pairs;
}

/** Seconds per (query, key, unit of m + dv + 1) of the A-form over a window of `lags` keys. */
export function directSeconds(lags: number, cost: CostConstants): number {
  const t = cost.direct;
  if (lags <= t[0]![0]) return t[0]![1];
  for (let i = 1; i < t.length; i++) {
    const [l1, s1] = t[i]!;
    if (lags <= l1) {
      const [l0, s0] = t[i - 1]!;
      const f = Math.log(lags / l0) / Math.log(l1 / l0);
      return s0 + f * (s1 - s0);
    }
  }
  return t[t.length - 1]![1];
}

function directCost(q0: number, nb: number, tLo: number, tHi: number, m: number, dv: number, cost: CostConstants = COSTS.js): number {
  return directPairs(q0, nb, tLo, tHi) * (m + dv + 1) * directSeconds(Math.min(tHi, nb), cost);
}

/** Predicted S-form time with block size B for lags [tLo, tHi), rows [q0, nb). */
export function fftCost(q0: number, nb: number, tLo: number, tHi: number, m: number, dv: number, B: number, cost: CostConstants = COSTS.js): number {
  const N = 2 * B;
  const parts = Math.ceil(tHi / B);
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, parts);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  let macBlocks = 0;
  for (let r = rStart; r < blocks; r++) macBlocks += Math.min(parts, r - sStart + 1);
  const pairs = Math.ceil((m * (dv + 1)) / 2);
  const perPair = (nIn + nOut) * fftSeconds(N, cost) + macBlocks * N * cost.mac;
  const rows = (nb - sStart * B) + (nb - q0);
  return pairs * perPair + rows * m * (dv + 1) * cost.channelRow;
}

export interface NearChoice {
  method: 'direct' | 'fft';
  /** FFT block size (power of two) when method is 'fft' */
  block: number;
  predictedSeconds: number;
}

/** Best block size for the FFT path (powers of two from 16 to the buffer's next power of two). */
export function bestFft(q0: number, nb: number, tLo: number, tHi: number, m: number, dv: number, cost: CostConstants = COSTS.js): NearChoice {
  let best: NearChoice = { method: 'fft', block: 16, predictedSeconds: Infinity };
  const limit = Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(nb, tHi))));
  for (let B = 16; B <= limit; B *= 2) {
    const t = fftCost(q0, nb, tLo, tHi, m, dv, B, cost);
    if (t < best.predictedSeconds) best = { method: 'fft', block: B, predictedSeconds: t };
  }
  return best;
}

/** Choose the near-field method for lags [0, K) over rows [q0, nb). */
export function chooseNear(q0: number, nb: number, K: number, m: number, dv: number, cost: CostConstants = COSTS.js): NearChoice {
  const direct = directCost(q0, nb, 0, K, m, dv, cost);
  const head = Math.min(K, HEAD_LAGS);
  if (K <= head) return { method: 'direct', block: 0, predictedSeconds: direct };
  const fft = bestFft(q0, nb, head, K, m, dv, cost);
  const fftTotal = fft.predictedSeconds + directCost(q0, nb, 0, head, m, dv, cost);
  return fftTotal < direct ? { ...fft, predictedSeconds: fftTotal } : { method: 'direct', block: 0, predictedSeconds: direct };
}

/**
 * The float32 S-form (attention()'s dtype 'float32'): fftSeconds, mac and channelRow of the float32 kernels; `direct`
 * is float64's (the A-form stays float64). Measured on the reference machine (2-core AMD EPYC VM, Node 20, shared with
 * other work) by `npx tsx bench/calibrate32.ts`. On JS, float32 buys nothing (fft.js over Float32Array is slower than
 * over Float64Array); it is the readable reference of the float32 kernel. On WASM it halves the S-form.
 */
export const COSTS32: Record<BackendName, CostConstants> = {
  js: {
    direct: COSTS.js.direct,
    fftSeconds: [0, 0, 1.96e-8, 6.57e-8, 1.13e-7, 3.15e-7, 5.91e-7, 1.54e-6, 3.02e-6, 7.35e-6, 1.45e-5, 3.51e-5, 7.00e-5, 1.63e-4, 3.25e-4, 7.36e-4, 1.51e-3, 3.57e-3],
    mac: 5.07e-9,
    channelRow: 1.41e-8,
  },
  wasm: {
    direct: COSTS.wasm.direct,
    fftSeconds: [0, 0, 4.20e-8, 4.52e-8, 4.78e-8, 6.42e-8, 8.44e-8, 1.69e-7, 3.04e-7, 6.91e-7, 1.36e-6, 3.09e-6, 6.45e-6, 1.46e-5, 2.97e-5, 6.80e-5, 1.46e-4, 3.54e-4],
    mac: 1.17e-10,
    channelRow: 9.59e-10,
  },
};
