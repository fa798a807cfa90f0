// One pass of causal attention over a buffer with the FFT near field in float32 (attention()'s dtype 'float32'):
// the S-form's channel convolutions (the O(n log n) hot loop, all near lags) run on float32 channels; the feature
// maps, the A-form (method 'direct'), the far field, the kernel's spectra (float64 FFT, then rounded) and the sums of
// the final rows stay float64. Rows whose estimated float32 rounding error exceeds
// REPAIR_TOLERANCE_32 of the value scale are recomputed directly in float64, as the float64 path does at 1e-10.
import type { Workspace, BackendName } from '../backend/types.js';
import type { AformRowsArgs } from '../math/kernelArgs.js';
import { channelCut32, sformChannels32Scratch, sformErrors32 } from '../math/fftconv32.js';
import { wasmFft32PlanEntries } from '../backend/wasm.js';
import { declare, layoutFloats } from '../backend/layout.js';
import { COSTS32 } from './costModel.js';
import { attendBuffer, chooseBlock, farRows, type BufferPass, type MethodOption, type PassPlan, type PassStats } from './nearfield.js';

/**
 * Rows whose estimated error exceeds this fraction of the value scale (the mean |v| of the buffer, the normwise
 * scale of z_i) are recomputed in float64: half the 1e-4 per-row contract. The estimate (sformErrors32) was 10x or
 * more above the actual error of every kept row over flat, smooth, spiky, wide-range and -Infinity tables (n 500 to
 * 10000, B 64 to 512); test/engine/float32.test.ts fails at once without the repair.
 */
export const REPAIR_TOLERANCE_32 = 5e-5;

/** planPass (nearfield.ts) with the float32 cost constants and scratch. Pure. */
export function planPass32(K: number, method: MethodOption, block: number, q0: number, nb: number, m: number, dv: number, backend: BackendName = 'js'): PassPlan {
  const B = chooseBlock(K, method, block, q0, nb, m, dv, COSTS32[backend]);
  if (B === 0) return { method: 'direct', block: 0, scratch: 0, planFloats: 0 };
  const Keff = Math.min(K, nb);
  const N = 2 * B;
  const rows = nb - q0;
  const P = Math.ceil(Keff / B);
  // the arrays attendBuffer32 takes between its mark and release, in its order (keep in step with it)
  const f32 = (name: string, length: number) => ({ name, type: 'f32' as const, length });
  const layout = declare([
    f32('phiKT', nb * m), f32('vT', nb * dv), f32('phiQT', rows * m), f32('spectra', P * 2 * N), f32('accT', rows * (dv + 1)),
    f32('scratch', sformChannels32Scratch(nb, q0, B, P)), { name: 'errT', type: 'f64', length: 2 * rows },
  ]);
  // its float32 plan lives outside the scratch (WASM: from the workspace's top; JS plans are not in the workspace)
  return { method: 'fft', block: B, scratch: layoutFloats(layout), planFloats: backend === 'wasm' ? wasmFft32PlanEntries(N) : 0 };
}

/** attendBuffer (nearfield.ts) with the FFT part in float32; a 'direct' plan runs the float64 A-form as it is. */
export function attendBuffer32(p: BufferPass, plan: PassPlan, ws: Workspace): PassStats {
  if (plan.method === 'direct') return attendBuffer(p, plan, ws);
  const { kernel, phiK, v, phiQ, q0, nb, m, dv, far, acc, split } = p;
  const c = kernel.near;
  const Keff = Math.min(c.length, nb);
  // half 1 of a split head (its result is not kept) does its share of the channels only
  if (kernel.hasFar && far !== null && split?.half !== 1) farRows(p, far, ws);
  // no direct head here (the float64 path sums lags < HEAD_LAGS directly): the first rows' float32 sums are small
  // and doubted by the estimate, so they are repaired, at O(row) each (measured: 4% faster at n = 16384 than a head of 32)
  const head = 0;
  const rowsArgs: AformRowsArgs = { c, tLo: 0, tHi: 0, phiK, v, phiQ, q0, b0: q0, b1: nb, m, dv, acc };
  const B = plan.block;
  const N = 2 * B;
  const rows = nb - q0;
  const w1 = dv + 1;
  const kp = p.partitions.get(c, head, Keff, B);
  const P = kp.parts;
  if (P === 0 || rows <= 0) return { method: 'fft', block: B, repairedRows: 0 };
  const mark = ws.mark();
  // column-major float32 copies so each channel streams contiguous memory
  const phiKT = ws.f32(nb * m);
  const vT = ws.f32(nb * dv);
  const phiQT = ws.f32(rows * m);
  ws.transpose32(phiK, nb, m, phiKT);
  ws.transpose32(v, nb, dv, vT);
  ws.transpose32(phiQ, rows, m, phiQT);
  const spectra = ws.f32(P * 2 * N);
  ws.kernelSpectra32(kp.spectra, N, P, spectra);
  const accT = ws.f32(rows * w1);
  const scratch = ws.f32(sformChannels32Scratch(nb, q0, B, P));
  const channels = { phiKT, vT, phiQT, accT, spectra, q0, nb, m, dv, B, P, scratch };
  // split over two threads: channels below the cut here (half 0) or above it (half 1); the cut is on a value
  // column's edge, so accT's rows [cut / m, w1) are half 1's alone, bit for bit what one thread sums there
  const cut = split === undefined ? m * w1 : channelCut32(m, dv);
  const upper = accT.subarray((cut / m) * rows);
  if (split?.half === 1) {
    ws.sformChannels32({ ...channels, ch0: cut, ch1: m * w1 });
    split.exchange(upper, upper.length);
    ws.release(mark);
    return { method: 'fft', block: B, repairedRows: 0 }; // not kept: no estimates, repairs or rows
  }
  ws.sformChannels32({ ...channels, ch0: 0, ch1: cut });
  const errT = ws.f64(2 * rows);
  sformErrors32(kp.l1, partitionL2(c, head, Keff, B, P), B, phiK, v, phiQ, q0, nb, m, dv, errT);
  // the value scale of the per-row contract: mean |v| over the buffer
  let vAbs = 0;
  for (let i = 0; i < nb * dv; i++) vAbs += Math.abs(v[i]!);
  const vScale = vAbs / Math.max(1, nb * dv);
  // half 0: half 1's rows of accT, after this thread's own share of the work (the wait overlaps it)
  split?.exchange(upper, upper.length);
  // rows the estimate doubts are recomputed directly (float64); the others take the float32 sums
  const skip = new Uint8Array(rows);
  let repaired = 0;
  rowsArgs.tLo = head;
  rowsArgs.tHi = Keff;
  for (let i = 0; i < rows; i++) {
    const fDen = accT[dv * rows + i]!;
    const eDen = errT[rows + i]!;
    const den = acc[i * w1 + dv]! + fDen;
    const ok = den > 0 ? eDen <= REPAIR_TOLERANCE_32 * den && errT[i]! <= REPAIR_TOLERANCE_32 * vScale * den : eDen === 0 && fDen === 0;
    if (ok) continue;
    skip[i] = 1;
    rowsArgs.b0 = q0 + i;
    rowsArgs.b1 = q0 + i + 1;
    ws.aformRows(rowsArgs);
    repaired++;
  }
  addTransposed(accT, rows, w1, acc, skip);
  ws.release(mark);
  return { method: 'fft', block: B, repairedRows: repaired };
}


/** acc[i, col] += accT[col, i] for rows i not skipped; acc: [rows, w1], accT: [w1, rows]; 16 x 16 tiles (accT's rows are 64 KB apart at 16k rows). */
function addTransposed(accT: Float32Array, rows: number, w1: number, acc: Float64Array, skip: Uint8Array): void {
  const T = 16;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let c0 = 0; c0 < w1; c0 += T) {
      const c1 = Math.min(w1, c0 + T);
      for (let c = c0; c < c1; c++) {
        const o = c * rows;
        for (let i = i0; i < i1; i++) if (skip[i] === 0) acc[i * w1 + c] = acc[i * w1 + c]! + accT[o + i]!;
      }
    }
  }
}

/** l2 norms of the kernel partitions [pB, (p + 1) B) of c restricted to lags [tLo, tHi): [P]. */
function partitionL2(c: Float64Array, tLo: number, tHi: number, B: number, P: number): Float64Array {
  const l2 = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    let sq = 0;
    for (let t = Math.max(tLo, p * B); t < Math.min(tHi, (p + 1) * B); t++) sq += c[t]! * c[t]!;
    l2[p] = Math.sqrt(sq);
  }
  return l2;
}
