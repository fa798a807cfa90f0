// S-form near field by uniformly partitioned FFT convolution (overlap-add in the frequency domain).
// Each of the m (dv+1) channels U[:, r, col] = phi(k)[:, r] * [v; 1][:, col] is convolved with the kernel
// c(t), t in [tLo, tHi); the result S[b, r, col] is contracted at once with phi(q_b)[r], so S is never stored.
// Two real channels ride in one complex FFT (x = xa + i xb): the kernel is real, so
// conv(xa + i xb, c) = conv(xa, c) + i conv(xb, c); fft.js has no inverse real transform and this needs none.
// Every output also gets a rigorous-style rounding bound, so callers can redo the rare ill-conditioned rows
// directly (FFT error is normwise per block; a row whose visible weights are tiny next to its block's is
// exactly such a row).
import FFT from 'fft.js';
import type { FftPlan, Workspace } from '../backend/types.js';
import type { SpectralMacArgs } from './kernelArgs.js';

const UNIT_ROUNDOFF = 2 ** -53;

/** Y[0 .. 2N) += X[xOff ..] * H[hOff ..]: one complex multiply-accumulate per bin (interleaved re, im). */
export function spectralMac(a: SpectralMacArgs): void {
  const { Y, X, xOff, H, hOff, N } = a;
  for (let k = 0; k < 2 * N; k += 2) {
    const xr = X[xOff + k]!;
    const xi = X[xOff + k + 1]!;
    const hr = H[hOff + k]!;
    const hi = H[hOff + k + 1]!;
    Y[k] = Y[k]! + (xr * hr - xi * hi);
    Y[k + 1] = Y[k + 1]! + (xr * hi + xi * hr);
  }
}

export interface KernelPartitions {
  readonly block: number;
  readonly parts: number;
  readonly spectra: Float64Array;
  readonly l1: Float64Array;
}

/** Spectra are plain arrays owned by the caller's cache (sformRows copies them into its workspace per pass). */
export function partitionKernel(c: Float64Array, tLo: number, tHi: number, block: number): KernelPartitions {
  const N = 2 * block;
  const parts = Math.max(0, Math.ceil(tHi / block));
  const spectra = new Float64Array(parts * 2 * N);
  const l1 = new Float64Array(parts);
  const plan = new FFT(N);
  const input = new Float64Array(2 * N);
  for (let p = 0; p < parts; p++) {
    input.fill(0);
    let norm = 0;
    for (let u = 0; u < block; u++) {
      const t = p * block + u;
      if (t < tLo || t >= tHi) continue;
      const ct = c[t]!;
      input[2 * u] = ct;
      norm += Math.abs(ct);
    }
    l1[p] = norm;
    if (norm === 0) continue;
    plan.transform(spectra.subarray(p * 2 * N, (p + 1) * 2 * N), input);
  }
  return { block, parts, spectra, l1 };
}

/** Tile edge of `transpose`: 16 x 16 float64 tiles (2 KB each) keep both sides in L1. */
const TILE = 16;

/**
 * out: [cols, rows] = transpose of x: [rows, cols] (both row-major). Tiled: a plain row loop writes `out` with a
 * stride of `rows` floats (128 KB at 16k rows), a cache and TLB miss per element; tiles are 4-5x faster there.
 */
export function transpose(x: Float64Array, rows: number, cols: number, out: Float64Array): void {
  for (let i0 = 0; i0 < rows; i0 += TILE) {
    const i1 = Math.min(rows, i0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let c = c0; c < c1; c++) {
        const o = c * rows;
        for (let i = i0; i < i1; i++) out[o + i] = x[i * cols + c]!;
      }
    }
  }
}

/**
 * Rounding estimate per output of one block-pair group: EST_FACTOR * u * log2(N) / sqrt(N) * sum_p ||h_p||_1 ||x_s||_2.
 * The rigorous normwise bound (u log N ||h||_1 ||x||_2, spread over N outputs) is ~100x pessimistic per output;
 * this estimate was calibrated against exact sums (test/math/fftconv.test.ts checks actual <= estimate over
 * smooth, random [-20, 5], spiky and flat kernels, N = 32 ... 16384). The factor 2 inside covers the second real
 * channel riding in the same complex transform.
 */
export const EST_FACTOR = 16;

/**
 * Column-major ("transposed") buffers, so every channel reads and writes contiguous rows:
 *   phiKT: [m, nb]   vT: [dv, nb]   phiQT: [m, nq]   accT: [dv + 1, nq]   with nq = nb - q0.
 * For query rows b in [q0, nb):
 *   accT[col, b - q0] = sum_r phiQ[b, r] * sum_{t in [tLo, tHi), t <= b} c[t] phiK[b - t, r] [v; 1][b - t, col]
 * (accT zero on entry; the channels below and above channelCut are summed apart, then added), and errT: [2, nq]
 * receives estimates of the rounding error: row 0 bounds every numerator column, row 1 the denominator. The
 * kernel partitions must come from partitionKernel(c, tLo, tHi, B).
 */
export interface SformArgs {
  kp: KernelPartitions;
  phiKT: Float64Array; // [m, nb]
  vT: Float64Array; // [dv, nb]
  phiQT: Float64Array; // [m, nq]
  q0: number;
  nb: number;
  m: number;
  dv: number;
  accT: Float64Array; // [dv + 1, nq], zero on entry
  errT: Float64Array; // [2, nq]
  /** the channel halves shared with another thread (see ChannelSplit); absent: both run here */
  split?: ChannelSplit;
}

/** Scratch comes from `ws` (released before returning), transforms and multiply-adds run on its kernels. */
export function sformRows(args: SformArgs, ws: Workspace): void {
  const { kp, phiKT, vT, phiQT, q0, nb, m, dv, accT, errT } = args;
  const B = kp.block;
  const N = 2 * B;
  const P = kp.parts;
  if (P === 0 || nb <= q0) return;
  ws.fftPlan(N); // before the mark: a plan outlives the pass
  const mark = ws.mark();
  sformScratch(args, ws);
  ws.release(mark);
}

function sformScratch(args: SformArgs, ws: Workspace): void {
  const { kp, phiKT, vT, phiQT, q0, nb, m, dv, accT, errT } = args;
  const B = kp.block;
  const N = 2 * B;
  const P = kp.parts;
  const nq = nb - q0;
  const w1 = dv + 1;
  // output blocks from the one before the first query row (it spills into it); input blocks any of them reads
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  const spectra = ws.f64(kp.spectra.length);
  spectra.set(kp.spectra);
  const l1 = kp.l1;
  const live = ws.f64(P); // 1 where the kernel partition is nonzero
  for (let p = 0; p < P; p++) live[p] = l1[p]! > 0 ? 1 : 0;

  // --- the convolutions, two channels per complex transform: the backend's kernel ---
  // in two halves, each summed from zero and then added (the order a pool splitting them over two cores keeps)
  const scratch = ws.f64(sformChannelsScratch(nb, q0, B, P));
  const upper = ws.f64(nq * w1); // [dv + 1, nq]
  const cut = channelCut(m, dv);
  const channels = { phiKT, vT, phiQT, spectra, live, q0, nb, m, dv, B, P, scratch };
  const split = args.split;
  if (split?.half !== 0) ws.sformChannels({ ...channels, accT: upper, ch0: cut, ch1: m * w1 });
  if (split?.half === 1) {
    split.exchange(upper, nq * w1);
    return; // a thread whose result is not kept: no lower half, no estimates
  }
  ws.sformChannels({ ...channels, accT, ch0: 0, ch1: cut });
  if (split?.half === 0) split.exchange(upper, nq * w1);
  for (let i = 0; i < nq * w1; i++) accT[i] = accT[i]! + upper[i]!;

  // --- error estimates, per feature r and output block (cheap: O(m (blocks P + nq))) ---
  const est = (EST_FACTOR * UNIT_ROUNDOFF * Math.log2(N)) / Math.sqrt(N);
  const kNorm = ws.f64(m * nIn); // [m, nIn] ||phiK_r||_2 over each input block
  const vMax = ws.f64(nIn); // [nIn] max |v| over each input block
  for (let s = sStart; s < blocks; s++) {
    const j0 = s * B;
    const j1 = Math.min(nb, j0 + B);
    let vm = 0;
    for (let col = 0; col < dv; col++) {
      const o = col * nb;
      for (let j = j0; j < j1; j++) vm = Math.max(vm, Math.abs(vT[o + j]!));
    }
    vMax[s - sStart] = vm;
    for (let r = 0; r < m; r++) {
      const o = r * nb;
      let sq = 0;
      for (let j = j0; j < j1; j++) sq += phiKT[o + j]! * phiKT[o + j]!;
      kNorm[r * nIn + (s - sStart)] = Math.sqrt(sq);
    }
  }
  const gDen = ws.f64(m * nOut); // [m, nOut] estimate for the group of output block r (first half)
  const gNum = ws.f64(m * nOut);
  for (let r = rStart; r < blocks; r++) {
    const pHi = Math.min(P - 1, r - sStart);
    for (let f = 0; f < m; f++) {
      let den = 0;
      let num = 0;
      for (let p = 0; p <= pHi; p++) {
        const s = r - p - sStart;
        const x = l1[p]! * kNorm[f * nIn + s]!;
        den += x;
        num += x * vMax[s]!;
      }
      gDen[f * nOut + (r - rStart)] = est * den;
      gNum[f * nOut + (r - rStart)] = est * Math.max(num, den);
    }
  }
  for (let b = q0; b < nb; b++) {
    const r = Math.floor(b / B) - rStart;
    let eDen = 0;
    let eNum = 0;
    for (let f = 0; f < m; f++) {
      const w = phiQT[f * nq + b - q0]!;
      const o = f * nOut + r;
      eDen += w * (gDen[o]! + (r > 0 ? gDen[o - 1]! : 0));
      eNum += w * (gNum[o]! + (r > 0 ? gNum[o - 1]! : 0));
    }
    errT[b - q0] = errT[b - q0]! + eNum;
    errT[nq + b - q0] = errT[nq + b - q0]! + eDen;
  }
}

/**
 * Where the S-form's channels are cut in two: [0, cut) and [cut, m (dv + 1)), pairs kept whole (cut is even).
 * Fixed by the shape alone, so one thread and two threads sum in the same order. The middle: with a cut at
 * 31/64 the thread convolving [0, cut) reached the exchange ~40 ms before the other at n = 16384 (WASM).
 */
export function channelCut(m: number, dv: number): number {
  return 2 * Math.floor((m * (dv + 1)) / 4);
}

/**
 * Two threads running the same call share each pass's channel convolutions (threads/pool.ts):
 * - half 1 convolves channels [cut, m (dv + 1)) and hands them over with exchange(upper, length); its own
 *   result is not kept (the pass skips its lower half and error estimates);
 * - half 0 convolves [0, cut) and receives half 1's channels of the same pass with exchange(upper, length),
 *   then adds them as one thread does: its result is the single-threaded one bit for bit.
 * float64 (sformRows): `upper`: [dv + 1, nq] (length entries), summed from zero, cut = channelCut.
 * float32 (nearfield32.ts): `upper`: the rows [cut / m, dv + 1) of accT, [dv + 1 - cut / m, nq] (cut =
 * channelCut32, on a value column's edge, so the halves write disjoint rows and nothing is added).
 */
export interface ChannelSplit {
  readonly half: 0 | 1;
  exchange(upper: Float64Array | Float32Array, length: number): void;
  /**
   * Optional, once per head before its passes (engine/attention.ts): half 0 computes the query features, half 1
   * the key features, and each hands its own over (`mine`) and receives the other's (`theirs`, length entries).
   * Absent: both halves compute both.
   */
  swapFeatures?(mine: Float64Array, theirs: Float64Array, length: number): void;
}

/**
 * The convolution part of the S-form for channels [ch0, ch1) (ch0 even; channel ch = r (dv + 1) + col is
 * phiK[:, r] times [v; 1][:, col]), two channels per complex transform:
 *   accT[col, b - q0] += phiQT[r, b - q0] * sum_{t in kernel} c[t] U[b - t, r, col]   for b in [q0, nb).
 * Uniformly partitioned overlap-add in the frequency domain: X_s = FFT(input block s), Y_r = sum_p X_{r-p} H_p,
 * y_r = IFFT(Y_r), whose second half spills into block r + 1. Blocks or partitions that are all zero are skipped.
 */
export interface SformChannelsArgs {
  phiKT: Float64Array; // [m, nb]
  vT: Float64Array; // [dv, nb]
  phiQT: Float64Array; // [m, nq]
  accT: Float64Array; // [dv + 1, nq]
  spectra: Float64Array; // [P, 2N] kernel partition spectra, N = 2B
  live: Float64Array; // [P] 1 where partition p is nonzero
  q0: number;
  nb: number;
  m: number;
  dv: number;
  B: number;
  P: number;
  ch0: number;
  ch1: number;
  scratch: Float64Array; // [sformChannelsScratch(nb, q0, B, P)]
}

/** Block ranges of a pass: output blocks [rStart, blocks) hold the query rows (and one spilling block), input blocks [sStart, blocks). */
export function blockRange(nb: number, q0: number, B: number, P: number): { blocks: number; rStart: number; sStart: number } {
  const blocks = Math.ceil(nb / B);
  const rStart = Math.max(0, Math.floor(q0 / B) - 1);
  const sStart = Math.max(0, rStart - (P - 1));
  return { blocks, rStart, sStart };
}

/**
 * Float64 scratch one sformChannels call may use: the reference needs input spectra X [nIn, 2N], input, Y, y
 * [2N], carry [2B], live [nIn, P]; a fused backend kernel may keep every output spectrum too ([nOut + 2, 2N]).
 */
export function sformChannelsScratch(nb: number, q0: number, B: number, P: number): number {
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  const N = 2 * B;
  return Math.max(nIn * 2 * N + 3 * 2 * N + 2 * B + nIn * P, (nIn + nOut + 2) * 2 * N);
}

/** The plain reference of the channel convolutions (the JS backend's kernel). */
export function sformChannels(a: SformChannelsArgs, plan: FftPlan): void {
  const { phiKT, vT, phiQT, accT, spectra, q0, nb, dv, B, P, ch0, ch1 } = a;
  const N = 2 * B;
  const nq = nb - q0;
  const w1 = dv + 1;
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  let o = 0;
  const take = (len: number) => a.scratch.subarray(o, (o += len));
  const X = take(nIn * 2 * N); // spectra of the input blocks of one channel pair
  const input = take(2 * N);
  const Y = take(2 * N);
  const y = take(2 * N);
  const carry = take(2 * B); // second half of the previous output block, interleaved
  const live = take(nIn * P); // live[(s - sStart) * P + p]: 1 when block pair (s, p) is nonzero
  const macArgs: SpectralMacArgs = { Y, X, xOff: 0, H: spectra, hOff: 0, N };
  for (let ch = ch0; ch < ch1; ch += 2) {
    const ra = Math.floor(ch / w1);
    const ca = ch % w1;
    const hasB = ch + 1 < ch1;
    const rb = hasB ? Math.floor((ch + 1) / w1) : 0;
    const cb = hasB ? (ch + 1) % w1 : 0;

    // forward transforms of the input blocks: x = xa + i xb
    for (let s = sStart; s < blocks; s++) {
      const j0 = s * B;
      const len = Math.min(nb, j0 + B) - j0;
      const zeroA = fillChannel(input, 0, phiKT, ra * nb + j0, ca < dv ? vT : null, ca * nb + j0, len);
      let zeroB = true;
      if (hasB) zeroB = fillChannel(input, 1, phiKT, rb * nb + j0, cb < dv ? vT : null, cb * nb + j0, len);
      else for (let u = 0; u < len; u++) input[2 * u + 1] = 0;
      const zero = zeroA && zeroB;
      input.fill(0, 2 * len, 2 * N);
      for (let p = 0; p < P; p++) live[(s - sStart) * P + p] = zero || a.live[p] === 0 ? 0 : 1;
      if (zero) continue;
      const sOff = (s - sStart) * 2 * N;
      plan.forward(X.subarray(sOff, sOff + 2 * N), input);
    }

    // output blocks: Y_r = sum_p X_{r-p} H_p, inverse, overlap-add the second half into the next block
    let carryLive = false;
    for (let r = rStart; r < blocks; r++) {
      Y.fill(0);
      let any = false;
      const pHi = Math.min(P - 1, r - sStart);
      for (let p = 0; p <= pHi; p++) {
        const s = r - p;
        if (live[(s - sStart) * P + p] === 0) continue;
        any = true;
        macArgs.xOff = (s - sStart) * 2 * N;
        macArgs.hOff = p * 2 * N;
        spectralMac(macArgs);
      }
      if (!any && !carryLive) continue;
      if (any) plan.inverse(y, Y);
      else y.fill(0);
      if (!carryLive) carry.fill(0);
      // rows of block r: first half of y plus the carry
      const bLo = Math.max(q0, r * B);
      const bHi = Math.min(nb, (r + 1) * B);
      const base = r * B;
      contract(accT, ca * nq - q0, phiQT, ra * nq - q0, y, carry, 0, base, bLo, bHi);
      if (hasB) contract(accT, cb * nq - q0, phiQT, rb * nq - q0, y, carry, 1, base, bLo, bHi);
      carry.set(y.subarray(2 * B, 4 * B), 0);
      carryLive = any;
    }
  }
}

/** input[2u + part] = phiK row segment times v column segment (or times 1 when v is null). Returns true if all zero. */
function fillChannel(input: Float64Array, part: number, phiKT: Float64Array, kOff: number, vT: Float64Array | null, vOff: number, len: number): boolean {
  let any = 0;
  if (vT === null) {
    for (let u = 0; u < len; u++) {
      const x = phiKT[kOff + u]!;
      input[2 * u + part] = x;
      any += x * x;
    }
  } else {
    for (let u = 0; u < len; u++) {
      const x = phiKT[kOff + u]! * vT[vOff + u]!;
      input[2 * u + part] = x;
      any += x * x;
    }
  }
  return any === 0;
}

/** accT[aOff + b] += phiQT[qOff + b] * (y + carry)[2 (b - base) + part] for rows b in [bLo, bHi). */
function contract(accT: Float64Array, aOff: number, phiQT: Float64Array, qOff: number, y: Float64Array, carry: Float64Array, part: number, base: number, bLo: number, bHi: number): void {
  for (let b = bLo; b < bHi; b++) {
    const u = 2 * (b - base) + part;
    accT[aOff + b] = accT[aOff + b]! + phiQT[qOff + b]! * (y[u]! + carry[u]!);
  }
}
