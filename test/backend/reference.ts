// Plain references for WASM kernels that have no JS-backend counterpart (spectralConv; written with the JS
// backend's spectralMac, so agreement is bit for bit) and the direct O(n^2) meaning of the S-form's sformChannels.
import { spectralMac } from '../../src/math/fftconv.js';
import type { SformChannelsArgs, SpectralConvArgs } from '../../src/backend/wasm.js';

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


/** The direct O(n^2) meaning of sformChannels: accT[col, b - q0] += phiQ[b, r] sum_t c[t] U[b - t, (r, col)]. */
export function sformChannelsDirect(a: SformChannelsArgs, c: Float64Array, tLo: number, tHi: number): void {
  const { phiKT, vT, phiQT, accT, nb, q0, dv, ch0, ch1 } = a;
  const nq = nb - q0;
  for (let ch = ch0; ch < ch1; ch++) {
    const r = Math.floor(ch / (dv + 1));
    const col = ch % (dv + 1);
    for (let b = q0; b < nb; b++) {
      let s = 0;
      for (let t = tLo; t < Math.min(tHi, b + 1); t++) {
        const j = b - t;
        s += c[t]! * phiKT[r * nb + j]! * (col < dv ? vT[col * nb + j]! : 1);
      }
      accT[col * nq + b - q0] = accT[col * nq + b - q0]! + phiQT[r * nq + b - q0]! * s;
    }
  }
}
