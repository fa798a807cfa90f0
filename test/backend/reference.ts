// Plain reference for the WASM backend's fused kernels that have no JS-backend counterpart yet (the lead can move
// these into src/math when wiring them): written with the JS backend's own kernels, so agreement is bit for bit.
import { spectralMac } from '../../src/math/fftconv.js';
import type { SformPairArgs, SpectralConvArgs } from '../../src/backend/wasm.js';
import type { Workspace } from '../../src/backend/types.js';

/** Y[r] = sum_p X[r0 + r - p] H[p] (valid blocks only), each output block from zero in ascending p. */
export function spectralConvJs(a: SpectralConvArgs): void {
  const { Y, yOff, X, xOff, H, hOff, N, nx, P, ny, r0 } = a;
  const blk = 2 * N;
  for (let r = 0; r < ny; r++) {
    const y = Y.subarray(yOff + r * blk, yOff + (r + 1) * blk);
    y.fill(0);
    for (let p = 0; p < P; p++) {
      const s = r0 + r - p;
      if (s < 0 || s >= nx) continue;
      spectralMac({ Y: y, X, xOff: xOff + s * blk, H, hOff: hOff + p * blk, N });
    }
  }
}

/** sformPair the way sformScratch's channel loop computes it (JS FFT, spectralMac, the same fill/contract loops). */
export function sformPairJs(a: SformPairArgs, js: Workspace): void {
  const { spectra, hOff, P, B, phiKT, vT, phiQT, accT, nb, q0, dv, ra, ca, rb, cb } = a;
  if (P <= 0 || nb <= q0) return;
  const N = 2 * B;
  const nq = nb - q0;
  const blocks = Math.ceil(nb / B);
  const rStart = Math.max(0, Math.floor(q0 / B) - 1);
  const sStart = Math.max(0, rStart - (P - 1));
  const plan = js.fftPlan(N);
  const X = new Float64Array((blocks - sStart) * 2 * N);
  const input = new Float64Array(2 * N);
  const fill = (part: number, r: number, c: number, j0: number, len: number): void => {
    for (let u = 0; u < len; u++) {
      const k = phiKT[r * nb + j0 + u]!;
      input[2 * u + part] = c < dv ? k * vT[c * nb + j0 + u]! : k;
    }
  };
  for (let s = sStart; s < blocks; s++) {
    const j0 = s * B;
    const len = Math.min(nb, j0 + B) - j0;
    input.fill(0);
    fill(0, ra, ca, j0, len);
    if (rb >= 0) fill(1, rb, cb, j0, len);
    plan.forward(X.subarray((s - sStart) * 2 * N, (s - sStart + 1) * 2 * N), input);
  }
  const Y = new Float64Array(2 * N);
  const y = new Float64Array(2 * N);
  const carry = new Float64Array(2 * B);
  for (let r = rStart; r < blocks; r++) {
    Y.fill(0);
    for (let p = 0; p <= Math.min(P - 1, r - sStart); p++) {
      spectralMac({ Y, X, xOff: (r - p - sStart) * 2 * N, H: spectra, hOff: hOff + p * 2 * N, N });
    }
    plan.inverse(y, Y);
    for (let b = Math.max(q0, r * B); b < Math.min(nb, (r + 1) * B); b++) {
      const u = 2 * (b - r * B);
      accT[ca * nq + b - q0] = accT[ca * nq + b - q0]! + phiQT[ra * nq + b - q0]! * (y[u]! + carry[u]!);
      if (rb >= 0) accT[cb * nq + b - q0] = accT[cb * nq + b - q0]! + phiQT[rb * nq + b - q0]! * (y[u + 1]! + carry[u + 1]!);
    }
    carry.set(y.subarray(2 * B, 4 * B));
  }
}

/** The same channels by the direct O(n^2) sum (the meaning): accT[col, b - q0] += phiQ[b, r] sum_t c[t] U[b - t, (r, col)]. */
export function sformPairDirect(a: SformPairArgs, c: Float64Array, tLo: number, tHi: number): void {
  const { phiKT, vT, phiQT, accT, nb, q0, dv, ra, ca, rb, cb } = a;
  const nq = nb - q0;
  const one = (r: number, col: number): void => {
    for (let b = q0; b < nb; b++) {
      let s = 0;
      for (let t = tLo; t < Math.min(tHi, b + 1); t++) {
        const j = b - t;
        s += c[t]! * phiKT[r * nb + j]! * (col < dv ? vT[col * nb + j]! : 1);
      }
      accT[col * nq + b - q0] = accT[col * nq + b - q0]! + phiQT[r * nq + b - q0]! * s;
    }
  };
  one(ra, ca);
  if (rb >= 0) one(rb, cb);
}
