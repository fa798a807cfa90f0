// The partitioned FFT against the A-form on the same lags, and its rounding estimate against the actual error.
import { JsWorkspace } from '../../src/backend/js.js';
import { describe, expect, it } from 'vitest';
import { partitionKernel, sformRows, transpose } from '../../src/math/fftconv.js';
import { aformRows } from '../../src/math/aform.js';
import { Rng } from '../../src/math/rng.js';

describe('transpose', () => {
  it('is the transpose for sizes on and off the tile edge', () => {
    for (const [rows, cols] of [[1, 1], [1, 37], [37, 1], [16, 16], [17, 15], [100, 64], [33, 65]] as const) {
      const x = Float64Array.from({ length: rows * cols }, (_, i) => i + 0.5);
      const out = new Float64Array(rows * cols).fill(NaN);
      transpose(x, rows, cols, out);
      for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) expect(out[c * rows + i]).toBe(x[i * cols + c]);
    }
  });
});

describe('sformRows', () => {
  const rng = new Rng(5);
  const kinds: Record<string, (t: number) => number> = {
    smooth: (t) => Math.exp(-0.001 * t + 0.5 * Math.sin(t)),
    random: () => Math.exp(-20 + 25 * rng.nextFloat64()),
    spike: (t) => (t % 97 === 0 ? 1 : 1e-9),
    flat: () => 1,
  };
  for (const [nb, q0, m, dv, B] of [[1500, 0, 6, 5, 64], [1000, 333, 4, 3, 16], [2048, 1024, 3, 2, 256], [700, 650, 5, 4, 128]] as const) {
    it(`matches the direct sum and stays under its estimate (nb ${nb}, q0 ${q0}, B ${B})`, () => {
      for (const kind of Object.keys(kinds)) {
        const tLo = 32;
        const c = Float64Array.from({ length: nb }, (_, t) => kinds[kind]!(t));
        const phiK = Float64Array.from({ length: nb * m }, () => Math.exp(rng.nextGaussian() - 2));
        const phiQ = Float64Array.from({ length: (nb - q0) * m }, () => Math.exp(rng.nextGaussian() - 2));
        const v = Float64Array.from({ length: nb * dv }, () => rng.nextGaussian());
        const rows = nb - q0;
        const kT = new Float64Array(nb * m), vT = new Float64Array(nb * dv), qT = new Float64Array(rows * m);
        transpose(phiK, nb, m, kT);
        transpose(v, nb, dv, vT);
        transpose(phiQ, rows, m, qT);
        const accT = new Float64Array(rows * (dv + 1));
        const errT = new Float64Array(2 * rows);
        sformRows({ kp: partitionKernel(c, tLo, nb, B), phiKT: kT, vT, phiQT: qT, q0, nb, m, dv, accT, errT }, new JsWorkspace());
        const exact = new Float64Array(rows * (dv + 1));
        aformRows({ c, tLo, tHi: nb, phiK, v, phiQ, q0, m, dv, b0: q0, b1: nb, acc: exact });
        let worstRatio = 0;
        for (let i = 0; i < rows; i++) {
          for (let col = 0; col <= dv; col++) {
            const e = Math.abs(accT[col * rows + i]! - exact[i * (dv + 1) + col]!);
            const est = col === dv ? errT[rows + i]! : errT[i]!;
            if (e > 0) worstRatio = Math.max(worstRatio, e / est);
          }
        }
        // the estimate must cover the actual error, with margin
        expect(worstRatio, kind).toBeLessThan(1);
      }
    });
  }
});
