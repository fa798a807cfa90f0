// Tensors at the public boundary: ndarray views over Float64Array or Float32Array. Validation happens here,
// once, before any state changes; the hot loops then read plain contiguous Float64Array copies.
import ndarray, { type NdArray } from 'ndarray';
import { ShapeError, describe } from '../core/errors.js';

export type FloatArray = Float64Array | Float32Array;
export type Tensor = NdArray<FloatArray>;

/** A validated view: rank, sizes, strides in bounds, every value finite. */
export interface CheckedTensor {
  readonly data: FloatArray;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly offset: number;
}

function shapeText(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Check a tensor against an expected shape; entries given as strings name a free size (e.g. 'n').
 * Returns the checked view. Throws ShapeError saying what was expected and what arrived. With checkFinite = false
 * the values are left for the caller to check (gatherRows does it while copying).
 */
export function checkTensor(name: string, t: unknown, expected: readonly (number | string)[], expectedText?: string, checkFinite = true): CheckedTensor {
  const want = expectedText ?? shapeText(expected);
  if (t === null || typeof t !== 'object') throw new ShapeError(`${name} must be an ndarray of shape ${want}, got ${describe(t)}`);
  const x = t as Partial<Tensor>;
  const data = x.data;
  if (!(data instanceof Float64Array) && !(data instanceof Float32Array)) {
    throw new ShapeError(`${name} must be an ndarray over a Float64Array or Float32Array, got data ${describe(data)}`);
  }
  const shape = x.shape;
  const stride = x.stride;
  const offset = x.offset ?? 0;
  if (!Array.isArray(shape) || !Array.isArray(stride) || shape.length !== stride.length || !Number.isInteger(offset)) {
    throw new ShapeError(`${name} must be an ndarray with matching shape and stride arrays, got shape ${describe(shape)} and stride ${describe(stride)}`);
  }
  if (shape.length !== expected.length) {
    throw new ShapeError(`${name} must have rank ${expected.length} with shape ${want}, got rank ${shape.length} with shape ${shapeText(shape)}`);
  }
  for (let a = 0; a < shape.length; a++) {
    const size = shape[a];
    const e = expected[a];
    if (!Number.isInteger(size) || (size as number) < 0 || (typeof e === 'number' && size !== e)) {
      throw new ShapeError(`${name} must have shape ${want}, got ${shapeText(shape)}`);
    }
  }
  // strides must keep every element inside data
  let lo = offset;
  let hi = offset;
  let empty = false;
  for (let a = 0; a < shape.length; a++) {
    const s = stride[a];
    if (!Number.isInteger(s)) throw new ShapeError(`${name} has a non-integer stride ${describe(s)}`);
    if (shape[a] === 0) empty = true;
    const span = (shape[a]! - 1) * (s as number);
    if (span < 0) lo += span;
    else hi += span;
  }
  if (!empty && (lo < 0 || hi >= data.length)) {
    throw new ShapeError(`${name} has a view (shape ${shapeText(shape)}, stride ${shapeText(stride)}, offset ${offset}) reaching outside its data of length ${data.length}`);
  }
  // the caller's arrays, read at once (no copies on the per-token path)
  const view: CheckedTensor = { data, shape, stride, offset };
  if (checkFinite) assertFinite(name, view);
  return view;
}

/**
 * Copy a [rows, dim] view (checked for shape by checkTensor with checkFinite = false) into out: [rows * dim]
 * row-major, checking in the same pass that every value is finite (checkTensor's message); with maxAbs,
 * maxAbs[a] = max |row a|. The per-token inputs of Decoder.step take one pass instead of three.
 */
export function gatherRows(name: string, t: CheckedTensor, out: Float64Array, maxAbs?: Float64Array): void {
  const { data, stride, offset, shape } = t;
  const rows = shape[0]!;
  const dim = shape[1]!;
  const s0 = stride[0]!;
  const s1 = stride[1]!;
  for (let a = 0; a < rows; a++) {
    const base = offset + a * s0;
    const o = a * dim;
    let mx = 0;
    for (let b = 0; b < dim; b++) {
      const value = data[base + b * s1]!;
      // x - x is 0 exactly when x is finite
      if (value - value !== 0) throw new ShapeError(`${name} must hold finite numbers, got ${describe(value)} at index ${shapeText([a, b])}`);
      out[o + b] = value;
      const av = Math.abs(value);
      if (av > mx) mx = av;
    }
    if (maxAbs !== undefined) maxAbs[a] = mx;
  }
}

/**
 * q, k: [heads, len, keyDim] and v: [heads, len, valueDim] with one sequence length, checked in that order; `len`
 * names the length in messages ('n' for whole sequences, 'L' for chunks).
 */
export function checkSequence(
  dims: { heads: number; keyDim: number; valueDim: number }, len: 'n' | 'L', q: unknown, k: unknown, v: unknown,
): { q: CheckedTensor; k: CheckedTensor; v: CheckedTensor; n: number } {
  const { heads, keyDim: d, valueDim: dv } = dims;
  const qv = checkTensor('q', q, [heads, len, d], `[heads=${heads}, ${len}, keyDim=${d}]`);
  const n = qv.shape[1]!;
  const kv = checkTensor('k', k, [heads, n, d], `[heads=${heads}, ${len}=${n}, keyDim=${d}]`);
  const vv = checkTensor('v', v, [heads, n, dv], `[heads=${heads}, ${len}=${n}, valueDim=${dv}]`);
  return { q: qv, k: kv, v: vv, n };
}

function assertFinite(name: string, t: CheckedTensor): void {
  const { data, shape, stride, offset } = t;
  // ranks 1-3 with plain loops (no index array), the general walk beyond
  const n0 = shape[0] ?? 1, n1 = shape[1] ?? 1, n2 = shape[2] ?? 1;
  const s0 = stride[0] ?? 0, s1 = stride[1] ?? 0, s2 = stride[2] ?? 0;
  if (shape.length <= 3) {
    for (let a = 0; a < n0; a++) {
      for (let b = 0; b < n1; b++) {
        const base = offset + a * s0 + b * s1;
        for (let c = 0; c < n2; c++) {
          const value = data[base + c * s2]!;
          // x - x is 0 exactly when x is finite (NaN for NaN and +-Infinity); cheaper than a call per element
          if (value - value !== 0) {
            const idx = [a, b, c].slice(0, shape.length);
            throw new ShapeError(`${name} must hold finite numbers, got ${describe(value)} at index ${shapeText(idx)}`);
          }
        }
      }
    }
    return;
  }
  if (shape.some((x) => x === 0)) return;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const total = shape.reduce((x, y) => x * y, 1);
  let pos = offset;
  for (let count = 0; count < total; count++) {
    const value = data[pos]!;
    if (!Number.isFinite(value)) {
      throw new ShapeError(`${name} must hold finite numbers, got ${describe(value)} at index ${shapeText(idx)}`);
    }
    // advance the multi-index (last axis fastest)
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]!++;
      pos += stride[a]!;
      if (idx[a]! < shape[a]!) break;
      pos -= stride[a]! * shape[a]!;
      idx[a] = 0;
    }
  }
}

/**
 * Copy rows of head h of a [heads, n, dim] view (or of a [heads, dim] view when rank 2, as one row)
 * into out: [n, dim] contiguous Float64Array, from row r0 to r1.
 */
export function copyHead(t: CheckedTensor, h: number, out: Float64Array, r0 = 0, r1?: number, outRow0 = 0): void {
  const { data, stride, offset, shape } = t;
  if (shape.length === 2) {
    const dim = shape[1]!;
    const base = offset + h * stride[0]!;
    for (let c = 0; c < dim; c++) out[outRow0 * dim + c] = data[base + c * stride[1]!]!;
    return;
  }
  const n = shape[1]!;
  const dim = shape[2]!;
  const end = r1 ?? n;
  const s0 = stride[0]!;
  const s1 = stride[1]!;
  const s2 = stride[2]!;
  if (s2 === 1 && s1 === dim && end > r0) {
    // rows contiguous: one block copy (TypedArray.set also widens Float32)
    const base = offset + h * s0 + r0 * s1;
    out.set(data.subarray(base, base + (end - r0) * dim), outRow0 * dim);
    return;
  }
  for (let i = r0; i < end; i++) {
    const base = offset + h * s0 + i * s1;
    const o = (outRow0 + i - r0) * dim;
    for (let c = 0; c < dim; c++) out[o + c] = data[base + c * s2]!;
  }
}

/** A Float64Array-backed ndarray of the given shape (row-major). */
export function zeros(shape: number[]): NdArray<Float64Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  return ndarray(new Float64Array(size), shape);
}
