// Shared test helpers: seeded random tensors and configs, and the error measure of the accuracy bar.
import ndarray, { type NdArray } from 'ndarray';
import { Rng } from '../src/math/rng.js';
import type { AttentionConfig } from '../src/engine/config.js';
import { resolveConfig } from '../src/engine/config.js';
import { referenceHead } from '../src/math/reference.js';
import type { Decoder } from '../src/index.js';

export function randomTensor(rng: Rng, shape: number[], scale = 1, dtype: 'f64' | 'f32' = 'f64'): NdArray<Float64Array | Float32Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = dtype === 'f64' ? new Float64Array(size) : new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.nextGaussian() * scale;
  return ndarray(data, shape);
}

/** Uniform in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.nextFloat64();
}

/**
 * The accuracy measure of the bar: per row i, max_col |z - zref| / max_col zAbs, where zAbs_i = sum_j w_ij |v_j| / sum_j w_ij
 * (the magnitude-weighted mean of |v|). Where no cancellation happens (v >= 0) this is exactly the normwise
 * relative error of the row; where cancellation makes z_i small, it measures against the scale the inputs
 * give z_i, which is the conditioning of the sum. Rows whose reference is exactly zero must be exactly zero.
 */
export function maxRowError(config: AttentionConfig, q: NdArray, k: NdArray, v: NdArray, z: NdArray<Float64Array>): number {
  const cfg = resolveConfig(config);
  const [heads, n] = [cfg.heads, q.shape[1]!];
  const d = cfg.keyDim;
  const dv = cfg.valueDim;
  let worst = 0;
  const qh = new Float64Array(n * d);
  const kh = new Float64Array(n * d);
  const vh = new Float64Array(n * dv);
  const ref = new Float64Array(n * dv);
  const abs = new Float64Array(n * dv);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < d; c++) {
        qh[i * d + c] = q.get(h, i, c);
        kh[i * d + c] = k.get(h, i, c);
      }
      for (let c = 0; c < dv; c++) vh[i * dv + c] = v.get(h, i, c);
    }
    referenceHead(cfg, h, qh, kh, vh, n, ref, abs);
    for (let i = 0; i < n; i++) {
      let e = 0;
      let s = 0;
      for (let c = 0; c < dv; c++) {
        e = Math.max(e, Math.abs(z.get(h, i, c) - ref[i * dv + c]!));
        s = Math.max(s, abs[i * dv + c]!);
      }
      const err = s === 0 ? (e === 0 ? 0 : Infinity) : e / s;
      if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
    }
  }
  return worst;
}

/** Rows [r0, r1) of a [heads, n, dim] tensor as a new contiguous [heads, r1 - r0, dim] tensor, or [heads, dim] when `single`. */
export function sliceRows(t: NdArray, r0: number, r1: number, single = false): NdArray<Float64Array> {
  const [heads, , dim] = t.shape as [number, number, number];
  const L = r1 - r0;
  const out = new Float64Array(heads * L * dim);
  for (let h = 0; h < heads; h++) for (let i = 0; i < L; i++) for (let c = 0; c < dim; c++) out[(h * L + i) * dim + c] = t.get(h, r0 + i, c);
  return ndarray(out, single ? [heads, dim] : [heads, L, dim]);
}

/**
 * Run a decoder over the stream with the given call sizes (1 = step, else a chunk of that many tokens, the last one
 * cut at n); returns z: [heads, n, dv]. `afterChunk` sees the decoder after each chunk call (its lastStats).
 */
export function streamDecoder(dec: Decoder, q: NdArray, k: NdArray, v: NdArray, sizes: number[], afterChunk?: (dec: Decoder) => void): NdArray<Float64Array> {
  const [heads, n] = q.shape as [number, number];
  const dv = v.shape[2]!;
  const z = ndarray(new Float64Array(heads * n * dv), [heads, n, dv]);
  let pos = 0;
  for (const size of sizes) {
    const L = Math.min(size, n - pos);
    if (L <= 0) break;
    if (size === 1) {
      const out = dec.step(sliceRows(q, pos, pos + 1, true), sliceRows(k, pos, pos + 1, true), sliceRows(v, pos, pos + 1, true));
      for (let h = 0; h < heads; h++) for (let c = 0; c < dv; c++) z.set(h, pos, c, out.get(h, c));
    } else {
      const out = dec.chunk(sliceRows(q, pos, pos + L), sliceRows(k, pos, pos + L), sliceRows(v, pos, pos + L));
      afterChunk?.(dec);
      for (let h = 0; h < heads; h++) for (let i = 0; i < L; i++) for (let c = 0; c < dv; c++) z.set(h, pos + i, c, out.get(h, i, c));
    }
    pos += L;
  }
  return z;
}

/** The error a call throws (or rejects with); fails when it neither throws nor rejects. */
export async function errorOf(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
