// What the model tests that compare against the PyTorch fixtures share: the fixture reader and the per-row error.
import { readFileSync } from 'node:fs';

/** Per row: |a - b|_2 / |b|_2 (the trainer's measure), and max_j |a - b| / max_j |b|; the worse of the two over all rows. */
export function worstRow(a: Float64Array, b: Float64Array, width: number): number {
  let worst = 0;
  for (let r = 0; r < b.length / width; r++) {
    let d2 = 0, b2 = 0, dMax = 0, bMax = 0;
    for (let j = 0; j < width; j++) {
      const d = a[r * width + j]! - b[r * width + j]!;
      d2 += d * d;
      b2 += b[r * width + j]! ** 2;
      dMax = Math.max(dMax, Math.abs(d));
      bMax = Math.max(bMax, Math.abs(b[r * width + j]!));
    }
    worst = Math.max(worst, Math.sqrt(d2 / b2), dMax / bMax);
  }
  return worst;
}

/** A little-endian float64 fixture file (test/fixtures/model/*.f64). */
export function readF64(path: string): Float64Array {
  const buf = readFileSync(path);
  const out = new Float64Array(buf.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = buf.readDoubleLE(8 * i);
  return out;
}
