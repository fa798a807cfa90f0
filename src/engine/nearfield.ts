// One pass of causal attention over a buffer: near field (lags < K) by the A-form or by head + partitioned
// FFT with per-row repair, far field (lags >= K) by the running feature state. Adds into acc.
import { aformRow, aformRows } from '../math/aform.js';
import { farRows, type FarState } from '../math/farfield.js';
import { partitionKernel, sformRows, transpose, type KernelPartitions } from '../math/fftconv.js';
import type { ShiftedKernel } from '../math/kernel.js';
import { chooseNear, bestFft, HEAD_LAGS } from './costModel.js';

export type MethodOption = 'auto' | 'fft' | 'direct';

/** Rows whose estimated FFT rounding error exceeds this fraction of |z_i| are recomputed directly (10x under the 1e-9 bar). */
export const REPAIR_TOLERANCE = 1e-10;

export interface PassStats {
  method: 'direct' | 'fft';
  block: number;
  repairedRows: number;
}

const partitionCache = new WeakMap<Float64Array, Map<string, KernelPartitions>>();

function cachedPartitions(c: Float64Array, tLo: number, tHi: number, B: number): KernelPartitions {
  let byKey = partitionCache.get(c);
  if (byKey === undefined) {
    byKey = new Map();
    partitionCache.set(c, byKey);
  }
  const key = `${tLo}:${tHi}:${B}`;
  let kp = byKey.get(key);
  if (kp === undefined) {
    kp = partitionKernel(c, tLo, tHi, B);
    byKey.set(key, kp);
  }
  return kp;
}

/**
 * Buffer rows 0..nb-1: phiK: [nb, m], v: [nb, dv]; queries are rows q0..nb-1: phiQ: [nb - q0, m];
 * acc: [nb - q0, dv + 1] (last column: denominator). far: the state of keys older than the buffer (updated).
 */
export function attendBuffer(
  kernel: ShiftedKernel,
  method: MethodOption,
  phiK: Float64Array,
  v: Float64Array,
  phiQ: Float64Array,
  q0: number,
  nb: number,
  m: number,
  dv: number,
  far: FarState | null,
  acc: Float64Array,
  blockOverride = 0,
): PassStats {
  const c = kernel.near;
  const K = c.length;
  const Keff = Math.min(K, nb); // lags >= nb are never seen in this buffer
  let choice = chooseNear(q0, nb, Keff, m, dv);
  if (method === 'direct') choice = { method: 'direct', block: 0, predictedSeconds: 0 };
  else if (method === 'fft' && choice.method !== 'fft') {
    choice = Keff > HEAD_LAGS ? bestFft(q0, nb, HEAD_LAGS, Keff, m, dv) : { method: 'direct', block: 0, predictedSeconds: 0 };
  }
  if (blockOverride > 0 && choice.method === 'fft') choice = { ...choice, block: blockOverride };
  // exact parts first, so the repair test sees the full denominator
  if (kernel.hasFar && far !== null) farRows(far, K, kernel.cFar, kernel.gamma, phiK, v, phiQ, q0, nb, m, dv, acc);
  if (choice.method === 'direct') {
    aformRows(c, 0, Keff, phiK, v, phiQ, q0, m, dv, q0, nb, acc);
    return { method: 'direct', block: 0, repairedRows: 0 };
  }
  const head = Math.min(HEAD_LAGS, Keff);
  aformRows(c, 0, head, phiK, v, phiQ, q0, m, dv, q0, nb, acc);
  const rows = nb - q0;
  const w1 = dv + 1;
  // column-major copies so each FFT channel streams contiguous memory
  const phiKT = new Float64Array(nb * m);
  const vT = new Float64Array(nb * dv);
  const phiQT = new Float64Array(rows * m);
  transpose(phiK, nb, m, phiKT);
  transpose(v, nb, dv, vT);
  transpose(phiQ, rows, m, phiQT);
  const accT = new Float64Array(rows * w1);
  const errT = new Float64Array(2 * rows);
  const kp = cachedPartitions(c, head, Keff, choice.block);
  sformRows(kp, phiKT, vT, phiQT, q0, nb, m, dv, accT, errT);
  // repair scale: |z_i|, floored by a small fraction of the typical |v| (z_i can cancel to ~0)
  let vSq = 0;
  for (let i = 0; i < nb * dv; i++) vSq += v[i]! * v[i]!;
  const floor = 1e-2 * Math.sqrt(vSq / Math.max(1, nb * dv));
  let repaired = 0;
  for (let i = 0; i < rows; i++) {
    const o = i * w1;
    const fDen = accT[dv * rows + i]!;
    const eDen = errT[rows + i]!;
    const errNum = errT[i]!;
    const den = acc[o + dv]! + fDen;
    let ok: boolean;
    if (den > 0) {
      let zMax = 0;
      for (let col = 0; col < dv; col++) zMax = Math.max(zMax, Math.abs((acc[o + col]! + accT[col * rows + i]!) / den));
      const estimate = (errNum + zMax * eDen) / den;
      ok = eDen <= REPAIR_TOLERANCE * den && estimate <= REPAIR_TOLERANCE * Math.max(zMax, floor);
    } else {
      ok = eDen === 0 && fDen === 0; // the FFT part is exactly zero (no visible weight there)
    }
    if (ok) {
      for (let col = 0; col <= dv; col++) acc[o + col] = acc[o + col]! + accT[col * rows + i]!;
    } else {
      aformRow(c, head, Keff, phiK, v, phiQ, i * m, m, dv, q0 + i, acc, o);
      repaired++;
    }
  }
  return { method: 'fft', block: choice.block, repairedRows: repaired };
}

/** out[i, col] = acc[i, col] / acc[i, dv]; rows with a zero denominator give zero vectors. out: [rows, dv]. */
export function finalizeRows(acc: Float64Array, rows: number, dv: number, out: Float64Array, outOff = 0): void {
  const w1 = dv + 1;
  for (let i = 0; i < rows; i++) {
    const den = acc[i * w1 + dv]!;
    for (let col = 0; col < dv; col++) out[outOff + i * dv + col] = den > 0 ? acc[i * w1 + col]! / den : 0;
  }
}
