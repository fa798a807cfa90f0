// One pass of causal attention over a buffer: near field (lags < K) by the A-form or by head + partitioned
// FFT with per-row repair, far field (lags >= K) by the running feature state. Adds into acc.
import type { Workspace } from '../backend/types.js';
import type { AformRowsArgs, FarAbsorbArgs, FarContractArgs } from '../math/kernelArgs.js';
import type { FarState } from '../math/farfield.js';
import { blockRange, partitionKernel, sformChannelsScratch, sformRows, transpose, type ChannelSplit, type KernelPartitions } from '../math/fftconv.js';
import type { ShiftedKernel } from '../math/kernel.js';
import { chooseNear, bestFft, COSTS, HEAD_LAGS, type CostConstants } from './costModel.js';
import type { BackendName } from '../backend/types.js';
import { fftPlanEntries } from '../backend/index.js';
import { declare, layoutFloats, type Layout } from '../backend/layout.js';
import { ConfigError, describe } from '../core/errors.js';

export type MethodOption = 'auto' | 'fft' | 'direct';

/** The method names (attention(), Decoder, restore options, decoder states and models all check with checkMethodOption). */
export const METHOD_NAMES: readonly MethodOption[] = ['auto', 'fft', 'direct'];

/**
 * Validate a method (the one place that knows the names): undefined is 'auto' unless `required`. Throws
 * ConfigError naming `where`, or calls `fail` with the message (a decoder state's check throws StateError).
 */
export function checkMethodOption(value: unknown, where = 'options.method', fail?: (message: string) => never, required = false): MethodOption {
  const method = required ? value : (value ?? 'auto');
  if ((METHOD_NAMES as readonly unknown[]).includes(method)) return method as MethodOption;
  const message = `${where} must be ${METHOD_NAMES.map((m) => `'${m}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}, got ${describe(method)}`;
  if (fail !== undefined) return fail(message);
  throw new ConfigError(message);
}

/** Rows whose estimated FFT rounding error exceeds this fraction of |z_i| are recomputed directly (10x under the 1e-9 bar). */
export const REPAIR_TOLERANCE = 1e-10;

export interface PassStats {
  method: 'direct' | 'fft';
  block: number;
  repairedRows: number;
}

/** Kernel spectra by (lags, block), owned by whoever owns the kernel (a decoder, a call); plain JS arrays. */
export class PartitionCache {
  private readonly byKey = new Map<string, KernelPartitions>();
  get(c: Float64Array, tLo: number, tHi: number, B: number): KernelPartitions {
    const key = `${tLo}:${tHi}:${B}`;
    let kp = this.byKey.get(key);
    if (kp === undefined) {
      kp = partitionKernel(c, tLo, tHi, B);
      this.byKey.set(key, kp);
    }
    return kp;
  }
}

/**
 * One causal pass over a buffer. Buffer rows 0..nb-1: phiK: [nb, m], v: [nb, dv]; queries are rows
 * q0..nb-1: phiQ: [nb - q0, m]; acc: [nb - q0, dv + 1] (last column: denominator), added into.
 * far: the state of keys older than the buffer (updated), or null for a whole sequence.
 */
export interface BufferPass {
  kernel: ShiftedKernel;
  /** the kernel's spectra (one cache per kernel) */
  partitions: PartitionCache;
  method: MethodOption;
  /** force the FFT block size (0: the cost model chooses) */
  block: number;
  phiK: Float64Array;
  v: Float64Array;
  phiQ: Float64Array;
  q0: number;
  nb: number;
  m: number;
  dv: number;
  far: FarState | null;
  acc: Float64Array;
  /** the S-form's channel halves shared with another thread (threads/pool.ts); absent: both run here */
  split?: ChannelSplit;
}

/** Far field over query rows b in [q0, nb): key row b - K is absorbed before row b is read (older keys are in F). */
export function farRows(p: BufferPass, far: FarState, ws: Workspace): void {
  const { kernel, phiK, v, phiQ, q0, nb, m, dv, acc } = p;
  const K = kernel.near.length;
  const absorb: FarAbsorbArgs = { far, gamma: kernel.gamma, phiK, kOff: 0, v, vOff: 0, m, dv };
  const contract: FarContractArgs = { far, cFar: kernel.cFar, phiQ, qOff: 0, m, dv, acc, aOff: 0 };
  // rows before q0 + K see no key that has left the near field yet: F is unchanged there
  for (let b = Math.max(q0, K); b < nb; b++) {
    absorb.kOff = (b - K) * m;
    absorb.vOff = (b - K) * dv;
    ws.farAbsorb(absorb);
    contract.qOff = (b - q0) * m;
    contract.aOff = (b - q0) * (dv + 1);
    ws.farContract(contract);
  }
}

/** What one pass will do, decided before any memory is taken (so a WASM workspace can be sized first). */
export interface PassPlan {
  method: 'direct' | 'fft';
  block: number;
  /** float64 scratch the pass takes from the workspace (between its mark and release) */
  scratch: number;
  /** float64 a new FFT plan of this size could take (twiddles live outside the scratch) */
  planFloats: number;
}

/**
 * The near-field method and FFT block (0: direct) for a pass over rows [q0, nb) with lags [0, min(K, nb)) under the
 * cost constants `cost`, honouring a forced method or block. Pure; planPass and planPass32 size its scratch.
 */
export function chooseBlock(K: number, method: MethodOption, block: number, q0: number, nb: number, m: number, dv: number, cost: CostConstants): number {
  const Keff = Math.min(K, nb); // lags >= nb are never seen in this buffer
  if (method === 'direct') return 0;
  let choice = chooseNear(q0, nb, Keff, m, dv, cost);
  if (method === 'fft' && choice.method !== 'fft') {
    if (Keff <= HEAD_LAGS) return 0;
    choice = bestFft(q0, nb, HEAD_LAGS, Keff, m, dv, cost);
  }
  if (choice.method !== 'fft') return 0;
  return block > 0 ? block : choice.block;
}

/** Decide method and block for a pass over rows [q0, nb) with lags [0, min(K, nb)). Pure. */
export function planPass(K: number, method: MethodOption, block: number, q0: number, nb: number, m: number, dv: number, backend: BackendName = 'js'): PassPlan {
  const B = chooseBlock(K, method, block, q0, nb, m, dv, COSTS[backend]);
  if (B === 0) return { method: 'direct', block: 0, scratch: 0, planFloats: 0 };
  return { method: 'fft', block: B, scratch: layoutFloats(passLayout(q0, nb, Math.min(K, nb), m, dv, B)), planFloats: fftPlanEntries(backend, 2 * B) };
}

/**
 * The arrays an FFT pass over rows [q0, nb) with lags [0, Keff) and block B takes from its workspace, between its
 * mark and release: attendBuffer's transposed copies, then sformRows' (math/fftconv.ts sformScratch). Keep in step
 * with those two functions: a workspace sized from this layout has no room for anything else.
 */
function passLayout(q0: number, nb: number, Keff: number, m: number, dv: number, B: number): Layout {
  const N = 2 * B;
  const rows = nb - q0;
  const P = Math.ceil(Keff / B);
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  const f64 = (name: string, length: number) => ({ name, type: 'f64' as const, length });
  return declare([
    // attendBuffer
    f64('phiKT', nb * m), f64('vT', nb * dv), f64('phiQT', rows * m), f64('accT', rows * (dv + 1)), f64('errT', 2 * rows),
    // sformScratch (upper: the second channel half's sums, [dv + 1, rows])
    f64('spectra', P * 2 * N), f64('live', P), f64('channels', sformChannelsScratch(nb, q0, B, P)), f64('upper', rows * (dv + 1)),
    f64('kNorm', m * nIn), f64('vMax', nIn), f64('gDen', m * nOut), f64('gNum', m * nOut),
  ]);
}

export function attendBuffer(p: BufferPass, plan: PassPlan, ws: Workspace): PassStats {
  const { kernel, phiK, v, phiQ, q0, nb, m, dv, far, acc } = p;
  const c = kernel.near;
  const K = c.length;
  const Keff = Math.min(K, nb);
  const choice = plan;
  // exact parts first, so the repair test sees the full denominator
  if (kernel.hasFar && far !== null) farRows(p, far, ws);
  const rowsArgs: AformRowsArgs = { c, tLo: 0, tHi: Keff, phiK, v, phiQ, q0, b0: q0, b1: nb, m, dv, acc };
  if (choice.method === 'direct') {
    ws.aformRows(rowsArgs);
    return { method: 'direct', block: 0, repairedRows: 0 };
  }
  const head = Math.min(HEAD_LAGS, Keff);
  rowsArgs.tHi = head;
  ws.aformRows(rowsArgs);
  const rows = nb - q0;
  const w1 = dv + 1;
  const kp = p.partitions.get(c, head, Keff, choice.block);
  ws.fftPlan(2 * choice.block); // twiddles are taken before the scratch mark: they outlive this pass
  const mark = ws.mark();
  // column-major copies so each FFT channel streams contiguous memory
  const phiKT = ws.f64(nb * m);
  const vT = ws.f64(nb * dv);
  const phiQT = ws.f64(rows * m);
  transpose(phiK, nb, m, phiKT);
  transpose(v, nb, dv, vT);
  transpose(phiQ, rows, m, phiQT);
  const accT = ws.f64(rows * w1);
  const errT = ws.f64(2 * rows);
  sformRows({ kp, phiKT, vT, phiQT, q0, nb, m, dv, accT, errT, split: p.split }, ws);
  // repair scale: |z_i|, floored by a small fraction of the typical |v| (z_i can cancel to ~0)
  let vSq = 0;
  for (let i = 0; i < nb * dv; i++) vSq += v[i]! * v[i]!;
  const floor = 1e-2 * Math.sqrt(vSq / Math.max(1, nb * dv));
  let repaired = 0;
  rowsArgs.tLo = head;
  rowsArgs.tHi = Keff;
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
      rowsArgs.b0 = q0 + i;
      rowsArgs.b1 = q0 + i + 1;
      ws.aformRows(rowsArgs);
      repaired++;
    }
  }
  ws.release(mark);
  return { method: 'fft', block: choice.block, repairedRows: repaired };
}

/**
 * out[i, col] = scale * acc[i, col] / acc[i, dv] (out: [rows, dv] from outOff); rows with a zero denominator give
 * zero vectors. `scale` undoes a value scaling (a power of two); the result is a weighted average of finite
 * values, so it is kept finite: rounding at the very top of the range is clamped to +-Number.MAX_VALUE.
 * attention() and Decoder.chunk both finalize with this; Decoder.step writes its one row with the same formula.
 */
export function finalizeRows(acc: Float64Array, rows: number, dv: number, out: Float64Array, outOff = 0, scale = 1): void {
  const w1 = dv + 1;
  for (let i = 0; i < rows; i++) {
    const den = acc[i * w1 + dv]!;
    for (let col = 0; col < dv; col++) out[outOff + i * dv + col] = den > 0 ? finite((acc[i * w1 + col]! / den) * scale) : 0;
  }
}

/** A weighted average of finite values is finite; rounding at the very top of the range must not say otherwise. */
export function finite(z: number): number {
  return z > Number.MAX_VALUE ? Number.MAX_VALUE : z < -Number.MAX_VALUE ? -Number.MAX_VALUE : z;
}
