// S-form near field by uniformly partitioned FFT convolution (overlap-add in the frequency domain).
// Each of the m (dv+1) channels U[:, r, col] = phi(k)[:, r] * [v; 1][:, col] is convolved with the kernel
// c(t), t in [tLo, tHi); the result S[b, r, col] is contracted at once with phi(q_b)[r], so S is never stored.
// Two real channels ride in one complex FFT (x = xa + i xb): the kernel is real, so
// conv(xa + i xb, c) = conv(xa, c) + i conv(xb, c); fft.js has no inverse real transform and this needs none.
// Every output also gets a rigorous-style rounding bound, so callers can redo the rare ill-conditioned rows
// directly (FFT error is normwise per block; a row whose visible weights are tiny next to its block's is
// exactly such a row).
import FFT from 'fft.js';

const plans = new Map<number, FFT>();

/** A cached fft.js plan of complex size n (twiddles and bit reversal built once per size). */
export function fftPlan(n: number): FFT {
  let plan = plans.get(n);
  if (plan === undefined) {
    plan = new FFT(n);
    plans.set(n, plan);
  }
  return plan;
}

const UNIT_ROUNDOFF = 2 ** -53;

/** Scratch buffers reused across calls of the same sizes (no allocation in steady state). */
class Scratch {
  private pool = new Map<string, Float64Array>();
  get(name: string, length: number): Float64Array {
    let a = this.pool.get(name);
    if (a === undefined || a.length < length) {
      a = new Float64Array(length);
      this.pool.set(name, a);
    }
    // exact length: fft.js's inverse scales every entry of its output array
    return a.length === length ? a : a.subarray(0, length);
  }
}
const scratch = new Scratch();

/**
 * Partitioned kernel spectra for one (c, tLo, tHi, B): spectra: [P, 2N] interleaved complex (N = 2B),
 * l1: [P] sum of |c| per partition (zero partitions are skipped entirely).
 */
export interface KernelPartitions {
  readonly block: number;
  readonly parts: number;
  readonly spectra: Float64Array;
  readonly l1: Float64Array;
}

export function partitionKernel(c: Float64Array, tLo: number, tHi: number, block: number): KernelPartitions {
  const N = 2 * block;
  const parts = Math.max(0, Math.ceil(tHi / block));
  const spectra = new Float64Array(parts * 2 * N);
  const l1 = new Float64Array(parts);
  const plan = fftPlan(N);
  const input = new Float64Array(2 * N);
  const out = new Float64Array(2 * N);
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
    plan.transform(out, input);
    spectra.set(out, p * 2 * N);
  }
  return { block, parts, spectra, l1 };
}

/**
 * For query rows b in [q0, nb) of a buffer (phiK: [nb, m], v: [nb, dv], phiQ: [nb - q0, m]):
 *   acc[b - q0, col] += sum_r phiQ[b - q0, r] * sum_{t in [tLo, tHi), t <= b} c[t] phiK[b - t, r] [v; 1][b - t, col]
 *   err[b - q0, col] += a bound on the rounding error of that term
 * acc, err: [nb - q0, dv + 1]. The kernel partitions must come from partitionKernel(c, tLo, tHi, B).
 */
export function sformRows(kp: KernelPartitions, phiK: Float64Array, v: Float64Array, phiQ: Float64Array, q0: number, nb: number, m: number, dv: number, acc: Float64Array, err: Float64Array): void {
  const B = kp.block;
  const N = 2 * B;
  const P = kp.parts;
  if (P === 0 || nb <= q0) return;
  const plan = fftPlan(N);
  const w1 = dv + 1;
  const blocks = Math.ceil(nb / B);
  const rFirst = Math.floor(q0 / B); // first output block holding a query row
  const rStart = Math.max(0, rFirst - 1); // the block before it spills its second half into rFirst
  const sStart = Math.max(0, rStart - (P - 1)); // first input block any needed output block reads
  const nIn = blocks - sStart;
  // X: [nIn, 2N] spectra of the input blocks; xNorm: [nIn] their l2 norms
  const X = scratch.get('X', nIn * 2 * N);
  const xNorm = scratch.get('xNorm', nIn);
  const input = scratch.get('in', 2 * N);
  const Y = scratch.get('Y', 2 * N);
  const y = scratch.get('y', 2 * N);
  const carry = scratch.get('carry', 2 * B); // second half of the previous output block, interleaved
  const eps = UNIT_ROUNDOFF * (6 * Math.log2(N) + P + 8);
  const channels = m * w1;
  const spectra = kp.spectra;
  const l1 = kp.l1;

  for (let ch = 0; ch < channels; ch += 2) {
    const ra = Math.floor(ch / w1);
    const ca = ch % w1;
    const hasB = ch + 1 < channels;
    const rb = hasB ? Math.floor((ch + 1) / w1) : 0;
    const cb = hasB ? (ch + 1) % w1 : 0;

    // forward transforms of the input blocks
    for (let s = sStart; s < blocks; s++) {
      input.fill(0, 0, 2 * N);
      const j0 = s * B;
      const j1 = Math.min(nb, j0 + B);
      let sq = 0;
      for (let j = j0; j < j1; j++) {
        const xa = phiK[j * m + ra]! * (ca < dv ? v[j * dv + ca]! : 1);
        const xb = hasB ? phiK[j * m + rb]! * (cb < dv ? v[j * dv + cb]! : 1) : 0;
        input[2 * (j - j0)] = xa;
        input[2 * (j - j0) + 1] = xb;
        sq += xa * xa + xb * xb;
      }
      const sOff = (s - sStart) * 2 * N;
      xNorm[s - sStart] = Math.sqrt(sq);
      plan.transform(y, input);
      X.set(y.subarray(0, 2 * N), sOff);
    }

    // output blocks: Y_r = sum_p X_{r-p} H_p, inverse, overlap-add the second half into the next block
    let carryErr = 0;
    carry.fill(0, 0, 2 * B);
    for (let r = rStart; r < blocks; r++) {
      Y.fill(0, 0, 2 * N);
      let errR = 0;
      const pHi = Math.min(P - 1, r - sStart);
      for (let p = 0; p <= pHi; p++) {
        if (l1[p] === 0) continue;
        const s = r - p;
        const xn = xNorm[s - sStart]!;
        if (xn === 0) continue;
        errR += l1[p]! * xn;
        const xo = (s - sStart) * 2 * N;
        const ho = p * 2 * N;
        for (let k = 0; k < 2 * N; k += 2) {
          const xr = X[xo + k]!;
          const xi = X[xo + k + 1]!;
          const hr = spectra[ho + k]!;
          const hi = spectra[ho + k + 1]!;
          Y[k] = Y[k]! + (xr * hr - xi * hi);
          Y[k + 1] = Y[k + 1]! + (xr * hi + xi * hr);
        }
      }
      errR *= eps;
      if (errR === 0 && carryErr === 0) {
        carry.fill(0, 0, 2 * B);
        continue;
      }
      if (errR !== 0) plan.inverseTransform(y, Y);
      else y.fill(0, 0, 2 * N);
      // rows of block r: first half of y plus the carry
      const bLo = Math.max(q0, r * B);
      const bHi = Math.min(nb, (r + 1) * B);
      const e = errR + carryErr;
      for (let b = bLo; b < bHi; b++) {
        const u = b - r * B;
        const sa = y[2 * u]! + carry[2 * u]!;
        const qo = (b - q0) * m;
        const ao = (b - q0) * w1;
        const qa = phiQ[qo + ra]!;
        acc[ao + ca] = acc[ao + ca]! + qa * sa;
        err[ao + ca] = err[ao + ca]! + qa * e;
        if (hasB) {
          const sb = y[2 * u + 1]! + carry[2 * u + 1]!;
          const qb = phiQ[qo + rb]!;
          acc[ao + cb] = acc[ao + cb]! + qb * sb;
          err[ao + cb] = err[ao + cb]! + qb * e;
        }
      }
      carry.set(y.subarray(2 * B, 4 * B), 0);
      carryErr = errR;
    }
  }
}
