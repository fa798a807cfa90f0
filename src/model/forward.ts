// The forward pass of toeplitz-lm, llama2.c-flat (DESIGN section 9): embeddings, rmsnorm, projections,
// attention (passed in: attention() for a whole sequence, a Decoder per layer in a session), SwiGLU,
// logits. Everything works on rows of Float64Arrays (RunState: the caller's, or for one row the model's, in its
// workspace); every matrix product goes through `linear`, i.e. the model's GemmFn (packedLinears: the backend's
// kernels over weights packed once into the model's workspace; JS, or WASM SIMD with the panels resident in its
// memory).
import type { GemmArgs } from '../math/kernelArgs.js';
import { firstInexactFloat32, packedLength, type PackedGemmArgs, type Panels } from '../math/gemm.js';
import type { Workspace } from '../backend/types.js';
import { declare, layoutFloats, type ArrayDecl } from '../backend/layout.js';
import { swiglu } from '../math/swiglu.js';
import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';

/** Rows per GEMM call: bounds what a backend stages (copies) for operands outside its memory. */
export const GEMM_ROWS = 256;

/**
 * A GEMM kernel: c[M, N] (+)= a[M, K] b[N, K]^T (a backend workspace's gemm). `oneRow`, when present: the arrays
 * of a one-row RunState in the kernel's own workspace, shared by every one-row RunState made with this GemmFn
 * (a RunState holds nothing from one forward() to the next, and calls are synchronous), so the products of the
 * per-token path read and write in place instead of copying activations in and out. `swiglu`, when present: the
 * FFN gate on the same backend (src/math/swiglu.ts; WASM: the same bits in V8, no Math.exp call per entry).
 */
export type GemmFn = ((g: GemmArgs) => void) & {
  readonly oneRow?: RowArrays;
  readonly swiglu?: (h1: Float64Array, h3: Float64Array, len: number) => void;
  /** products fused by input (fusedLinear): first member -> the group */
  readonly fused?: ReadonlyMap<Float64Array, FusedLinear>;
};

/**
 * Matrices that read the same input (a layer's wq, wk, wv; its w1, w3) stacked by rows [sum N, K], their panels
 * packed contiguously: one product computes all of them into one span of outputs (each output entry summed
 * exactly as alone). `key` stands for the stacked matrix in GemmArgs.b.
 */
export interface FusedLinear {
  readonly key: Float64Array;
  readonly members: readonly Float64Array[];
  readonly N: number;
}

/** The activation arrays of a RunState (llama2.c's RunState without the bookkeeping). */
export interface RowArrays {
  x: Float64Array; // [rows, dim] residual stream
  a: Float64Array; // [rows, dim] normalized input of a sublayer
  q: Float64Array; // [rows, heads * keyDim]  head h: columns h*keyDim .. (h+1)*keyDim
  k: Float64Array; // [rows, heads * keyDim]
  v: Float64Array; // [rows, heads * valueDim]
  z: Float64Array; // [rows, heads * valueDim] attention output, heads concatenated
  h1: Float64Array; // [min(rows, blockRows), hidden]  the FFN runs in row blocks
  h3: Float64Array; // [min(rows, blockRows), hidden]
  /** one row only (the model's shared arrays): [q | k | v] and [h1 | h3] contiguous, for the fused products */
  qkv?: Float64Array; // [2 heads * keyDim + heads * valueDim]
  h13?: Float64Array; // [2 hidden]
}

function rowArrays(c: ModelConfig, rows: number, blockRows: number, f64: (n: number) => Float64Array): RowArrays {
  const f = (n: number): Float64Array => f64(rows * n);
  const block = Math.min(rows, blockRows);
  return { x: f(c.dim), a: f(c.dim), q: f(c.heads * c.keyDim), k: f(c.heads * c.keyDim), v: f(c.heads * c.valueDim), z: f(c.heads * c.valueDim), h1: f64(block * c.hidden), h3: f64(block * c.hidden) };
}

/** One row's arrays with the spans of the fused products: q, k, v and h1, h3 are views of qkv and h13. */
function oneRowArrays(c: ModelConfig, f64: (n: number) => Float64Array): RowArrays {
  const qk = c.heads * c.keyDim;
  const qkv = f64(2 * qk + c.heads * c.valueDim);
  const h13 = f64(2 * c.hidden);
  return {
    x: f64(c.dim),
    a: f64(c.dim),
    q: qkv.subarray(0, qk),
    k: qkv.subarray(qk, 2 * qk),
    v: qkv.subarray(2 * qk),
    z: f64(c.heads * c.valueDim),
    h1: h13.subarray(0, c.hidden),
    h3: h13.subarray(c.hidden),
    qkv,
    h13,
  };
}

/** The weight matrices of the linear layers, each with its [N, K] = [out, in] (tied: output is tokEmbeddings). */
export function linearMatrices(c: ModelConfig, w: ModelWeights): Array<{ W: Float64Array; N: number; K: number }> {
  const qk = c.heads * c.keyDim;
  const vd = c.heads * c.valueDim;
  const out: Array<{ W: Float64Array; N: number; K: number }> = [];
  for (const L of w.layers) {
    out.push({ W: L.wq, N: qk, K: c.dim }, { W: L.wk, N: qk, K: c.dim }, { W: L.wv, N: vd, K: c.dim }, { W: L.wo, N: c.dim, K: vd });
    out.push({ W: L.w1, N: c.hidden, K: c.dim }, { W: L.w3, N: c.hidden, K: c.dim }, { W: L.w2, N: c.dim, K: c.hidden });
  }
  out.push({ W: w.output, N: c.vocab, K: c.dim });
  return out;
}

/**
 * The panel type of each distinct linear matrix: float32 when every weight is exactly float32 (a model file's F32
 * tensors: the kernels widen them exactly, the same bits from half the bytes), else float64.
 */
function panelTypes(c: ModelConfig, w: ModelWeights, float32Panels: boolean): Map<Float64Array, { N: number; K: number; f32: boolean }> {
  const out = new Map<Float64Array, { N: number; K: number; f32: boolean }>();
  for (const { W, N, K } of linearMatrices(c, w)) if (!out.has(W)) out.set(W, { N, K, f32: float32Panels && firstInexactFloat32(W, 0, N * K) < 0 });
  return out;
}

/**
 * The panel allocations packedLinears makes, in its order: first the fused groups (matrices of one input whose panels
 * concatenate into the stacked matrix's: every N but the last a multiple of 4, one panel type, not in another
 * group), then every other distinct matrix alone.
 */
function panelGroups(w: ModelWeights, types: Map<Float64Array, { N: number; K: number; f32: boolean }>): Array<{ members: readonly Float64Array[]; f32: boolean; fused: boolean }> {
  const groups: Array<{ members: readonly Float64Array[]; f32: boolean; fused: boolean }> = [];
  const taken = new Set<Float64Array>();
  for (const L of w.layers) {
    for (const members of [[L.wq, L.wk, L.wv], [L.w1, L.w3]]) {
      const t = members.map((W) => types.get(W)!);
      const ok = new Set(members).size === members.length && members.every((W) => !taken.has(W)) && t.every((x, i) => x.f32 === t[0]!.f32 && x.K === t[0]!.K && (i === t.length - 1 || x.N % 4 === 0));
      if (!ok) continue;
      for (const W of members) taken.add(W);
      groups.push({ members, f32: t[0]!.f32, fused: true });
    }
  }
  for (const [W, { f32 }] of types) if (!taken.has(W)) groups.push({ members: [W], f32, fused: false });
  return groups;
}

/** Panel entries of a group (its members' packed lengths), and the float64 entries they take (float32: two per entry). */
function groupLength(members: readonly Float64Array[], types: Map<Float64Array, { N: number; K: number; f32: boolean }>): number {
  let total = 0;
  for (const W of members) total += packedLength(types.get(W)!.N, types.get(W)!.K);
  return total;
}
const groupEntries = (total: number, f32: boolean): number => (f32 ? Math.ceil(total / 2) : total);

/**
 * Float64 entries a model's workspace needs (WASM: sized once, exactly, from the arrays packedLinears takes): every
 * panel group, the one-row RunState's arrays, and room to copy a and c of one blockRows-row product in and out.
 */
export function linearWorkspaceEntries(c: ModelConfig, w: ModelWeights, blockRows: number, float32Panels = true): number {
  const types = panelTypes(c, w, float32Panels);
  const decls: ArrayDecl[] = [];
  const f64 = (length: number): Float64Array => {
    decls.push({ name: `a${decls.length}`, type: 'f64', length });
    return new Float64Array(0);
  };
  for (const g of panelGroups(w, types)) f64(groupEntries(groupLength(g.members, types), g.f32));
  oneRowArrays(c, f64);
  const widest = Math.max(c.hidden, c.vocab, c.heads * c.keyDim, c.heads * c.valueDim, c.dim);
  f64(blockRows * Math.max(c.dim, c.hidden)); // gemmPacked's copy of a
  f64(blockRows * widest); // and of c
  return layoutFloats(declare(decls));
}

/**
 * The model's GEMM: every linear layer's W packed once (ws.packPanels, owned by the caller's workspace; float32
 * panels when W is exactly float32), and a product whose b is one of those matrices (whole, bOff 0) runs
 * ws.gemmPacked on its panels: one-row products (generation) need no packing per call. Outputs are bit-identical
 * to ws.gemm on the unpacked W. Any other b goes to ws.gemm. `float32Panels` false: float64 panels throughout (the
 * JS kernels read a Float32Array slower than a Float64Array: ~13% on the model's products, measured).
 */
export function packedLinears(c: ModelConfig, w: ModelWeights, ws: Workspace, float32Panels = true): GemmFn {
  const types = panelTypes(c, w, float32Panels);
  const packed = new Map<Float64Array, Panels>();
  const fused = new Map<Float64Array, FusedLinear>();
  // panels of `members` (stacked by rows) packed one after another into one allocation; each member's are a view
  const packGroup = (members: readonly Float64Array[], f32: boolean): Panels => {
    const total = groupLength(members, types);
    const f = ws.f64(groupEntries(total, f32));
    const all = f32 ? new Float32Array(f.buffer, f.byteOffset, total) : f;
    let at = 0;
    for (const W of members) {
      const { N, K } = types.get(W)!;
      const p = all.subarray(at, at + packedLength(N, K));
      ws.packPanels(W, 0, N, K, p);
      packed.set(W, p);
      at += packedLength(N, K);
    }
    return all;
  };
  for (const { members, f32, fused: isFused } of panelGroups(w, types)) {
    const panels = packGroup(members, f32);
    if (!isFused) continue;
    const key = new Float64Array(0);
    packed.set(key, panels);
    fused.set(members[0]!, { key, members, N: members.reduce((n, W) => n + types.get(W)!.N, 0) });
  }
  const fn = (g: GemmArgs): void => {
    const p = g.bOff === 0 ? packed.get(g.b) : undefined;
    if (p === undefined) {
      ws.gemm(g);
      return;
    }
    const pg = g as unknown as PackedGemmArgs; // the same record, b pointing at the panels for the call
    const b = g.b;
    pg.b = p;
    try {
      ws.gemmPacked(pg);
    } finally {
      g.b = b;
    }
  };
  // SwiGLU on the same backend (WASM: fdlibm's exp, Math.exp's bits in V8, without a call per entry)
  const gate = (h1: Float64Array, h3: Float64Array, len: number): void => ws.swiglu(h1, h3, len);
  return Object.assign(fn, { oneRow: oneRowArrays(c, (n) => ws.f64(n)), swiglu: gate, fused });
}

/** The fused product of (a, b[, c]) when `span` (its outputs, contiguous) is given and the GemmFn has that group. */
function fusedFor(s: RunState, span: Float64Array | undefined, a: Float64Array, b: Float64Array, c?: Float64Array): FusedLinear | undefined {
  if (span === undefined) return undefined;
  const f = s.gemm.fused?.get(a);
  return f !== undefined && f.members[1] === b && f.members[2] === c ? f : undefined;
}

/** Working memory of a forward pass over up to `rows` tokens (llama2.c's RunState). */
export interface RunState extends RowArrays {
  readonly rows: number;
  /** rows per GEMM call and FFN block (GEMM_ROWS, fewer for wide layers: memory.ts) */
  readonly blockRows: number;
  /** the one gemm argument record, refilled per call (no allocation) */
  readonly gemmArgs: GemmArgs;
  readonly gemm: GemmFn;
}

/** A RunState for up to `rows` tokens; one row: the GemmFn's shared oneRow arrays when it has them. */
export function createRunState(c: ModelConfig, rows: number, gemm: GemmFn, blockRows = GEMM_ROWS): RunState {
  const empty = new Float64Array(0);
  const arrays = rows === 1 ? (gemm.oneRow ?? oneRowArrays(c, (n) => new Float64Array(n))) : rowArrays(c, rows, blockRows, (n) => new Float64Array(n));
  return {
    rows,
    ...arrays,
    blockRows,
    gemmArgs: { a: empty, aOff: 0, b: empty, bOff: 0, c: empty, cOff: 0, M: 0, N: 0, K: 0, accumulate: false },
    gemm,
  };
}

/** out[M, N] (+)= x[M, K] W[N, K]^T: a linear layer without bias (W: [out, in]), GEMM_ROWS rows per call. */
export function linear(s: RunState, out: Float64Array, x: Float64Array, W: Float64Array, M: number, N: number, K: number, accumulate = false, xOff = 0, outOff = 0): void {
  const g = s.gemmArgs;
  g.a = x;
  g.b = W;
  g.bOff = 0;
  g.c = out;
  g.N = N;
  g.K = K;
  g.accumulate = accumulate;
  for (let r = 0; r < M; r += s.blockRows) {
    g.aOff = xOff + r * K;
    g.cOff = outOff + r * N;
    g.M = Math.min(s.blockRows, M - r);
    s.gemm(g);
  }
}

/**
 * out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * g for rows i < n: x, out: [n, dim]; g: [dim]; eps = c.normEps (read here:
 * a float64 argument would be boxed, 16 bytes, on every token).
 */
export function rmsnorm(out: Float64Array, x: Float64Array, g: Float64Array, n: number, dim: number, c: { readonly normEps: number }, xOff = 0, outOff = 0): void {
  const eps = c.normEps;
  for (let i = 0; i < n; i++) {
    const xo = xOff + i * dim;
    const oo = outOff + i * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[xo + j]! * x[xo + j]!;
    if (ss === Infinity) {
      // the squares overflow (|x| > ~1e154): scale by the largest entry first, else 1/sqrt(Infinity) = 0 would
      // silently zero the row (eps is below rounding at that size)
      let m = 0;
      for (let j = 0; j < dim; j++) m = Math.max(m, Math.abs(x[xo + j]!));
      let s2 = 0;
      for (let j = 0; j < dim; j++) s2 += (x[xo + j]! / m) * (x[xo + j]! / m);
      const rs = 1 / Math.sqrt(s2 / dim);
      for (let j = 0; j < dim; j++) out[oo + j] = (x[xo + j]! / m) * rs * g[j]!;
      continue;
    }
    const r = 1 / Math.sqrt(ss / dim + eps);
    for (let j = 0; j < dim; j++) out[oo + j] = x[xo + j]! * r * g[j]!;
  }
}

export { swiglu };

/** x[i] = E[tokens[start + i]] for i < n: x: [n, dim]; E: [vocab, dim]. */
export function embed(x: Float64Array, E: Float64Array, tokens: ArrayLike<number>, start: number, n: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const e = tokens[start + i]! * dim;
    const o = i * dim;
    for (let j = 0; j < dim; j++) x[o + j] = E[e + j]!; // no subarray: nothing allocated per token
  }
}

/** z[i, h*dv + c] = out[h, i, c]: per-head attention output [heads, n, dv] to rows [n, heads*dv]. */
export function headsToRows(out: Float64Array, outOff: number, z: Float64Array, heads: number, n: number, dv: number): void {
  const width = heads * dv;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) {
      const src = outOff + (h * n + i) * dv;
      const dst = i * width + h * dv;
      for (let c = 0; c < dv; c++) z[dst + c] = out[src + c]!;
    }
  }
}

/**
 * Attention of layer `layer` over rows [0, n) of s.q, s.k, s.v into s.z (rows, heads concatenated).
 * Whole-sequence attention() in model.logits; the layer's Decoder (step or chunk) in a session.
 */
export type AttendFn = (layer: number, n: number, s: RunState) => void;

/**
 * The transformer over tokens[start .. start + n) (n <= s.rows), attention by `attend`.
 * Writes logits [n, vocab] into `logits` from `logitsOff` on, or with `lastOnly` only the last row's [vocab].
 */
export function forward(c: ModelConfig, w: ModelWeights, tokens: ArrayLike<number>, start: number, n: number, s: RunState, attend: AttendFn, logits: Float64Array, logitsOff: number, lastOnly: boolean): void {
  const { dim, heads, keyDim, valueDim, hidden } = c;
  const qkDim = heads * keyDim;
  const vDim = heads * valueDim;
  embed(s.x, w.tokEmbeddings, tokens, start, n, dim);
  for (let l = 0; l < c.layers; l++) {
    const L = w.layers[l]!;
    // attention sublayer: x += concat_h attention(a Wq^T, a Wk^T, a Wv^T) Wo^T
    rmsnorm(s.a, s.x, L.attentionNorm, n, dim, c);
    const qkv = n === 1 ? fusedFor(s, s.qkv, L.wq, L.wk, L.wv) : undefined;
    if (qkv !== undefined) linear(s, s.qkv!, s.a, qkv.key, 1, qkv.N, dim);
    else {
      linear(s, s.q, s.a, L.wq, n, qkDim, dim);
      linear(s, s.k, s.a, L.wk, n, qkDim, dim);
      linear(s, s.v, s.a, L.wv, n, vDim, dim);
    }
    attend(l, n, s);
    linear(s, s.x, s.z, L.wo, n, dim, vDim, true);
    // feed-forward sublayer: x += (silu(a W1^T) * (a W3^T)) W2^T, row-wise, so in blocks of GEMM_ROWS rows
    rmsnorm(s.a, s.x, L.ffnNorm, n, dim, c);
    for (let r = 0; r < n; r += s.blockRows) {
      const m = Math.min(s.blockRows, n - r);
      const h13 = n === 1 ? fusedFor(s, s.h13, L.w1, L.w3) : undefined;
      if (h13 !== undefined) linear(s, s.h13!, s.a, h13.key, 1, h13.N, dim);
      else {
        linear(s, s.h1, s.a, L.w1, m, hidden, dim, false, r * dim);
        linear(s, s.h3, s.a, L.w3, m, hidden, dim, false, r * dim);
      }
      (s.gemm.swiglu ?? swiglu)(s.h1, s.h3, m * hidden);
      linear(s, s.x, s.h1, L.w2, m, dim, hidden, true, 0, r * dim);
    }
  }
  // logits = rmsnorm(x, norm) Wout^T
  const first = lastOnly ? n - 1 : 0;
  rmsnorm(s.a, s.x, w.norm, n - first, dim, c, first * dim, 0);
  linear(s, logits, s.a, w.output, n - first, c.vocab, dim, false, 0, logitsOff);
}
