// The open group of the grouped path. Each token is validated once, when it arrives, with the checks
// Decoder.step makes (same error class, same message), then copied token-major into one growable buffer per
// field; decoder.chunk reads the group through strided [heads, L, dim] views (no second stacking pass).
import ndarray, { type NdArray } from 'ndarray';
import { ConfigError, describe } from '../core/errors.js';
import { checkTensor, copyHead, type CheckedTensor } from '../engine/tensor.js';
import type { ChunkToken, Token } from './types.js';

export interface TokenDims {
  heads: number;
  keyDim: number;
  valueDim: number;
}

/** A token or chunk must at least be an object { q, k, v } before the decoder looks at its tensors. */
export function requireQkv(value: unknown, what: 'a token' | 'a chunk'): asserts value is Token {
  if (value === null || typeof value !== 'object') throw new ConfigError(`${what} must be an object { q, k, v }, got ${describe(value)}`);
}

/** Validate one token as Decoder.step does (q, then k, then v); throws the typed error of the first bad field. */
export function checkToken(token: unknown, dims: TokenDims): { q: CheckedTensor; k: CheckedTensor; v: CheckedTensor } {
  requireQkv(token, 'a token');
  const { heads, keyDim: d, valueDim: dv } = dims;
  const q = checkTensor('q', token.q, [heads, d], `[heads=${heads}, keyDim=${d}]`);
  const k = checkTensor('k', token.k, [heads, d], `[heads=${heads}, keyDim=${d}]`);
  const v = checkTensor('v', token.v, [heads, dv], `[heads=${heads}, valueDim=${dv}]`);
  return { q, k, v };
}

/** One field of the stacked tokens. data: [capacity, heads, dim], token-major (a token is one contiguous block). */
class Column {
  data: Float64Array;
  constructor(
    private readonly heads: number,
    private readonly dim: number,
    capacity: number,
  ) {
    this.data = new Float64Array(capacity * heads * dim);
  }

  /** Copy a checked [heads, dim] tensor into slot i (the caller made room). */
  write(i: number, t: CheckedTensor): void {
    for (let h = 0; h < this.heads; h++) copyHead(t, h, this.data, 0, undefined, i * this.heads + h);
  }

  grow(capacity: number): void {
    const data = new Float64Array(capacity * this.heads * this.dim);
    data.set(this.data);
    this.data = data;
  }

  /** Slots 0..L-1 as [heads, L, dim] (strides: dim, heads * dim, 1). */
  view(L: number): NdArray<Float64Array> {
    return ndarray(this.data, [this.heads, L, this.dim], [this.dim, this.heads * this.dim, 1], 0);
  }

  /** Slot i as [heads, dim]. */
  row(i: number): NdArray<Float64Array> {
    return ndarray(this.data, [this.heads, this.dim], [this.dim, 1], i * this.heads * this.dim);
  }
}

/** Tokens of the open group, validated and copied on arrival; owned by one subscription. */
export class TokenStack {
  private readonly dims: TokenDims;
  private readonly q: Column;
  private readonly k: Column;
  private readonly v: Column;
  private capacity: number;
  private n = 0;

  constructor(dims: TokenDims, capacity = 16) {
    this.dims = dims;
    this.capacity = Math.max(1, Math.min(capacity, 1024));
    this.q = new Column(dims.heads, dims.keyDim, this.capacity);
    this.k = new Column(dims.heads, dims.keyDim, this.capacity);
    this.v = new Column(dims.heads, dims.valueDim, this.capacity);
  }

  get length(): number {
    return this.n;
  }

  /** Validate and append a token; a bad token throws its typed error and leaves the stack unchanged. */
  push(token: unknown): void {
    const t = checkToken(token, this.dims);
    if (this.n === this.capacity) {
      this.capacity *= 2;
      for (const c of [this.q, this.k, this.v]) c.grow(this.capacity);
    }
    this.q.write(this.n, t.q);
    this.k.write(this.n, t.k);
    this.v.write(this.n, t.v);
    this.n++;
  }

  /** The group as one chunk (views valid until the next push or clear). */
  chunk(): ChunkToken {
    return { q: this.q.view(this.n), k: this.k.view(this.n), v: this.v.view(this.n) };
  }

  /** Token i as [heads, dim] views (valid until the next push or clear). */
  token(i: number): Token {
    return { q: this.q.row(i), k: this.k.row(i), v: this.v.row(i) };
  }

  clear(): void {
    this.n = 0;
  }
}
