// Shared by the snapshot tests, the child-process restore script and the fixture maker: seeded token
// streams and a runner that feeds a decoder a list of calls (size 1 = step, else chunk) and collects outputs.
import ndarray, { type NdArray } from 'ndarray';
import type { Decoder } from '../../src/index.js';
import { Rng } from '../../src/math/rng.js';

export interface Call {
  q: NdArray<Float64Array>;
  k: NdArray<Float64Array>;
  v: NdArray<Float64Array>;
  single: boolean;
}

/** Seeded calls of the given sizes (1 = one step with [heads, dim] tensors; L > 1 = a chunk [heads, L, dim]). */
export function makeCalls(seed: number, heads: number, d: number, dv: number, sizes: number[], scale = 1): Call[] {
  const rng = new Rng(seed);
  const fill = (n: number) => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.nextGaussian() * scale;
    return a;
  };
  return sizes.map((L) => {
    const single = L === 1;
    const shape = (dim: number) => (single ? [heads, dim] : [heads, L, dim]);
    return { q: ndarray(fill(heads * L * d), shape(d)), k: ndarray(fill(heads * L * d), shape(d)), v: ndarray(fill(heads * L * dv), shape(dv)), single };
  });
}

/** Run the calls; returns each call's output data (copied). */
export function runCalls(dec: Decoder, calls: Call[]): Float64Array[] {
  return calls.map((c) => Float64Array.from((c.single ? dec.step(c.q, c.k, c.v) : dec.chunk(c.q, c.k, c.v)).data));
}

/** Float64 values as hex of their little-endian bytes: exact, -0 and NaN payloads included. */
export function toHex(arrays: Float64Array[]): string[] {
  return arrays.map((a) => {
    const bytes = new Uint8Array(a.length * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < a.length; i++) view.setFloat64(i * 8, a[i]!, true);
    return Buffer.from(bytes).toString('hex');
  });
}
