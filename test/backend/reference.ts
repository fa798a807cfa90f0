// Plain reference for the WASM backend's fused kernels that have no JS-backend counterpart yet (the lead can move
// these into src/math when wiring them): written with the JS backend's own kernels, so agreement is bit for bit.
import { spectralMac } from '../../src/math/fftconv.js';
import type { SpectralConvArgs } from '../../src/backend/wasm.js';

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
