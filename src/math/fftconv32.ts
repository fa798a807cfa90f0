// The S-form near field in float32 (attention()'s dtype 'float32'): the same uniformly partitioned overlap-add as
// fftconv.ts, two real channels per complex transform, over Float32Array channels. Features, the kernel's spectra
// (float64 FFT, then rounded), the error estimates and everything outside the channel convolutions stay float64.
// This file holds the plain reference of the kernel (the JS backend's: fft.js over Float32Array, so every stage
// rounds its results to float32), the float64 -> float32 transposes and the rounding estimates for float32.
import FFT from 'fft.js';
import { blockRange, EST_FACTOR } from './fftconv.js';

/** float32 unit roundoff. */
export const UNIT_ROUNDOFF_32 = 2 ** -24;

/**
 * Column-major float32 buffers (as SformChannelsArgs in fftconv.ts):
 *   phiKT: [m, nb]   vT: [dv, nb]   phiQT: [m, nq]   accT: [dv + 1, nq]   with nq = nb - q0;
 * for query rows b in [q0, nb): accT[col, b - q0] += sum_r phiQ[b, r] sum_{t in kernel} c[t] U[b - t, r, col]
 * for channels [ch0, ch1) (ch0 even), numbered column-major: channel ch = col m + r (the float64 kernel numbers
 * them r (dv + 1) + col), so that the two channels of a transform share a value column and a row of accT. `spectra`: the kernel partitions in the backend's layout
 * (Workspace.kernelSpectra32), P partitions of N = 2B bins.
 */
export interface SformChannels32Args {
  phiKT: Float32Array; // [m, nb]
  vT: Float32Array; // [dv, nb]
  phiQT: Float32Array; // [m, nq]
  accT: Float32Array; // [dv + 1, nq]
  spectra: Float32Array; // [P * 2N], backend layout
  q0: number;
  nb: number;
  m: number;
  dv: number;
  B: number;
  P: number;
  ch0: number;
  ch1: number;
  scratch: Float32Array; // [sformChannels32Scratch(nb, q0, B, P)]
}

/**
 * Float32 scratch of one sformChannels32 call (either backend): WASM keeps the input and output spectra of every
 * block, one block for input and carry and one for the transforms' work; the JS reference the input spectra and four blocks.
 */
export function sformChannels32Scratch(nb: number, q0: number, B: number, P: number): number {
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  return Math.max(nIn + nOut + 2, nIn + 4) * 4 * B;
}

/** channelCut32's share of value columns below the cut, in 64ths. */
const CUT32_NUM = 30;

/**
 * Where a float32 pass's channels are cut in two (a pool splitting one head, math/fftconv.ts ChannelSplit):
 * [0, cut) and [cut, m (dv + 1)), on the edge of a value column (cut = cols m, channels numbered col m + r) and of
 * a pair (cut even). Each row of accT then belongs to one half, summed there in the order of one thread: the
 * halves need no adding, so a split pass equals the whole one bit for bit. About 15/32 of the columns below the
 * cut: the thread holding them also does the error estimates, repairs and output rows.
 */
export function channelCut32(m: number, dv: number): number {
  let cols = Math.floor(((dv + 1) * CUT32_NUM) / 64);
  if (m % 2 === 1 && cols % 2 === 1) cols--; // m odd: an even number of columns ends on a pair
  return cols * m;
}

/** out: [cols, rows] float32 = transpose of x: [rows, cols] float64 (rounded to nearest); 16 x 16 tiles. */
export function transpose32(x: Float64Array, rows: number, cols: number, out: Float32Array): void {
  const T = 16;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let c = c0; c < c1; c++) {
        const o = c * rows;
        for (let i = i0; i < i1; i++) out[o + i] = x[i * cols + c]!;
      }
    }
  }
}

/** The JS backend's spectra: natural order, as partitionKernel gives them, rounded to float32 (fft.js's inverse divides by N). */
export function kernelSpectra32Js(natural: Float64Array, N: number, P: number, out: Float32Array): void {
  out.set(natural.subarray(0, P * 2 * N));
}

/**
 * Rounding estimates of the float32 S-form, from the float64 row-major inputs: errT: [2, nq] += estimates of every
 * numerator column (row 0) and of the denominator (row 1). As sformScratch's in fftconv.ts with the float32 unit
 * roundoff, but with the partitions' l2 norms where the float64 estimate takes l1: rounding errors spread over the
 * bins are weighted by |H_k|, whose mean square is ||h||_2^2 (Parseval), not by max |H_k| <= ||h||_1 (the
 * worst case; for a smooth kernel of B lags that is sqrt(B) times too pessimistic, and in float32 it would send
 * every row to the repair; measured 10x or more above the actual error of kept rows, see nearfield32.ts). Plus a floor for
 * float32 underflow (products below 2^-126 flush towards zero).
 * phiK: [nb, m], v: [nb, dv], phiQ: [nq, m]; l1, l2: [P] the kernel partitions' l1 and l2 norms.
 */
export function sformErrors32(l1: Float64Array, l2: Float64Array, B: number, phiK: Float64Array, v: Float64Array, phiQ: Float64Array, q0: number, nb: number, m: number, dv: number, errT: Float64Array): void {
  const N = 2 * B;
  const P = l1.length;
  const nq = nb - q0;
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  const nOut = blocks - rStart;
  const est = (EST_FACTOR * UNIT_ROUNDOFF_32 * Math.log2(N)) / Math.sqrt(N);
  // row-major by block (feature innermost) so every loop below runs over contiguous memory
  const kNorm = new Float64Array(nIn * m); // [nIn, m] ||phiK_r||_2 over each input block
  const vMax = new Float64Array(nIn); // [nIn] max |v| over each input block
  let l1All = 0;
  for (let p = 0; p < P; p++) l1All += l1[p]!;
  for (let s = sStart; s < blocks; s++) {
    const j0 = s * B;
    const j1 = Math.min(nb, j0 + B);
    let vm = 0;
    for (let i = j0 * dv; i < j1 * dv; i++) vm = Math.max(vm, Math.abs(v[i]!));
    vMax[s - sStart] = vm;
    const ko = (s - sStart) * m;
    for (let j = j0; j < j1; j++) {
      const o = j * m;
      for (let r = 0; r < m; r++) kNorm[ko + r] = kNorm[ko + r]! + phiK[o + r]! * phiK[o + r]!;
    }
  }
  for (let i = 0; i < nIn * m; i++) kNorm[i] = Math.sqrt(kNorm[i]!);
  // per output block and feature: the estimate of its group, plus the previous block's (it spills into this one)
  const gDen = new Float64Array((nOut + 1) * m); // [nOut + 1, m], row 0 all zero
  const gNum = new Float64Array((nOut + 1) * m);
  for (let r = rStart; r < blocks; r++) {
    const pHi = Math.min(P - 1, r - sStart);
    const go = (r - rStart + 1) * m;
    for (let p = 0; p <= pHi; p++) {
      const ko = (r - p - sStart) * m;
      const h = l2[p]!;
      const hv = h * vMax[r - p - sStart]!;
      for (let f = 0; f < m; f++) {
        gDen[go + f] = gDen[go + f]! + h * kNorm[ko + f]!;
        gNum[go + f] = gNum[go + f]! + hv * kNorm[ko + f]!;
      }
    }
    for (let f = 0; f < m; f++) {
      gNum[go + f] = est * Math.max(gNum[go + f]!, gDen[go + f]!);
      gDen[go + f] = est * gDen[go + f]!;
    }
  }
  const sumDen = new Float64Array(m);
  const sumNum = new Float64Array(m);
  // underflow: every product below the smallest normal float32 may be lost, at most 2^-126 per term and bin
  const tiny = 2 ** -126 * N * l1All;
  let vAll = 0;
  for (let s = 0; s < nIn; s++) vAll = Math.max(vAll, vMax[s]!);
  let rCur = -1;
  for (let b = q0; b < nb; b++) {
    const r = Math.floor(b / B) - rStart;
    if (r !== rCur) {
      rCur = r;
      const go = (r + 1) * m;
      for (let f = 0; f < m; f++) {
        sumDen[f] = gDen[go + f]! + gDen[go - m + f]!;
        sumNum[f] = gNum[go + f]! + gNum[go - m + f]!;
      }
    }
    let eDen = 0;
    let eNum = 0;
    let qSum = 0;
    const qo = (b - q0) * m;
    for (let f = 0; f < m; f++) {
      const w = phiQ[qo + f]!;
      eDen += w * sumDen[f]!;
      eNum += w * sumNum[f]!;
      qSum += w;
    }
    errT[b - q0] = errT[b - q0]! + eNum + qSum * tiny * Math.max(1, vAll);
    errT[nq + b - q0] = errT[nq + b - q0]! + eDen + qSum * tiny;
  }
}

/** The plain reference of the float32 channel convolutions (the JS backend's kernel). plan: fft.js of size 2B. */
export function sformChannels32(a: SformChannels32Args, plan: FFT): void {
  const { phiKT, vT, phiQT, accT, spectra, q0, nb, m, dv, B, P, ch0, ch1 } = a;
  const N = 2 * B;
  const nq = nb - q0;
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  const nIn = blocks - sStart;
  let o = 0;
  const take = (len: number) => a.scratch.subarray(o, (o += len));
  const X = take(nIn * 2 * N); // spectra of the input blocks of one channel pair
  const input = take(2 * N);
  const Y = take(2 * N);
  const y = take(2 * N);
  const carry = take(2 * B);
  for (let ch = ch0; ch < ch1; ch += 2) {
    const ra = ch % m;
    const ca = Math.floor(ch / m);
    const hasB = ch + 1 < ch1;
    const rb = hasB ? (ch + 1) % m : 0;
    const cb = hasB ? Math.floor((ch + 1) / m) : 0;
    for (let s = sStart; s < blocks; s++) {
      const j0 = s * B;
      const len = Math.min(nb, j0 + B) - j0;
      input.fill(0);
      fill(input, 0, phiKT, ra * nb + j0, ca < dv ? vT : null, ca * nb + j0, len);
      if (hasB) fill(input, 1, phiKT, rb * nb + j0, cb < dv ? vT : null, cb * nb + j0, len);
      const sOff = (s - sStart) * 2 * N;
      plan.transform(X.subarray(sOff, sOff + 2 * N), input);
    }
    carry.fill(0);
    for (let r = rStart; r < blocks; r++) {
      Y.fill(0);
      const pHi = Math.min(P - 1, r - sStart);
      for (let p = 0; p <= pHi; p++) {
        const xOff = (r - p - sStart) * 2 * N;
        const hOff = p * 2 * N;
        for (let k = 0; k < 2 * N; k += 2) {
          const xr = X[xOff + k]!;
          const xi = X[xOff + k + 1]!;
          const hr = spectra[hOff + k]!;
          const hi = spectra[hOff + k + 1]!;
          Y[k] = Y[k]! + Math.fround(xr * hr - xi * hi);
          Y[k + 1] = Y[k + 1]! + Math.fround(xr * hi + xi * hr);
        }
      }
      plan.inverseTransform(y, Y);
      const bLo = Math.max(q0, r * B);
      const bHi = Math.min(nb, (r + 1) * B);
      const base = r * B;
      for (let b = bLo; b < bHi; b++) {
        const u = 2 * (b - base);
        const at = ca * nq + b - q0;
        accT[at] = accT[at]! + Math.fround(phiQT[ra * nq + b - q0]! * Math.fround(y[u]! + carry[u]!));
        if (hasB) {
          const bt = cb * nq + b - q0;
          accT[bt] = accT[bt]! + Math.fround(phiQT[rb * nq + b - q0]! * Math.fround(y[u + 1]! + carry[u + 1]!));
        }
      }
      carry.set(y.subarray(2 * B, 4 * B));
    }
  }
}

/** input[2u + part] = phiK row segment times v column segment (or times 1 when v is null), float32. */
function fill(input: Float32Array, part: number, phiKT: Float32Array, kOff: number, vT: Float32Array | null, vOff: number, len: number): void {
  if (vT === null) for (let u = 0; u < len; u++) input[2 * u + part] = phiKT[kOff + u]!;
  else for (let u = 0; u < len; u++) input[2 * u + part] = phiKT[kOff + u]! * vT[vOff + u]!;
}
