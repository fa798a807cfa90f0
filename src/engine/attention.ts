// Whole-sequence attention (causal or bidirectional), and the O(n^2) reference, at the public boundary.
import ndarray, { type NdArray } from 'ndarray';
import { toResolvedConfig, type AttentionConfig, type ResolvedConfig } from './config.js';
import { ConfigError, describe } from '../core/errors.js';
import { checkSequence, copyHead, zeros, type CheckedTensor } from './tensor.js';
import { attendBuffer, checkMethodOption, finalizeRows, planPass, PartitionCache, type BufferPass, type MethodOption, type PassPlan, type PassStats } from './nearfield.js';
import type { ChannelSplit } from '../math/fftconv.js';
import { exp2, keyFeatures, powerOfTwoAbove, queryFeatures } from '../math/features.js';
import { VALUE_EXP_LIMIT } from './state.js';
import { kernelMaxLog, shiftKernel } from '../math/kernel.js';
import { referenceHead } from '../math/reference.js';
import { checkDtypeOption, type DType } from './dtype.js';
import { attendBuffer32, planPass32 } from './nearfield32.js';
import { declare, layoutFloats, type Layout } from '../backend/layout.js';
import { acquireWorkspace, checkBackendOption, releaseWorkspace, resolveBackend, workspaceFits, type BackendName, type BackendOption, type Workspace } from '../backend/index.js';

export type { DType };

/** What attention() returns for a dtype: Float64Array-backed for 'float64', Float32Array-backed for 'float32'. */
export type AttentionResult<D extends DType> = NdArray<D extends 'float32' ? Float32Array : Float64Array>;

export interface AttentionOptions<D extends DType = 'float64'> {
  /** 'auto' (cost model, default), 'fft' (S-form: partitioned FFT) or 'direct' (A-form) */
  method?: MethodOption;
  /**
   * 'float64' (default, the reference) or 'float32': the FFT near field (the O(n log n) hot loop) runs on float32
   * channels, about twice as fast on WASM; features, the far field, the A-form ('direct') and the
   * final sums stay float64. Contract: per-row error vs the float64 oracle <= 1e-4 of the row's value scale
   * (rows the estimate doubts are recomputed in float64). The result is then Float32Array-backed.
   */
  dtype?: D;
  /** 'auto' (WASM SIMD where supported, default), 'js' or 'wasm' */
  backend?: BackendOption;
  /** force the FFT block size (a power of two >= 16); for experiments and tests */
  block?: number;
  /** receives, per head and side, which method ran and how many rows the FFT path repaired */
  onStats?: (stats: PassStats & { head: number; side: 'past' | 'future' }) => void;
}

export interface Checked {
  cfg: ResolvedConfig;
  q: CheckedTensor;
  k: CheckedTensor;
  v: CheckedTensor;
  n: number;
}

/** Resolve a config (or accept a resolved one) and validate q, k, v: [heads, n, dim]. */
export function checkInputs(config: AttentionConfig | ResolvedConfig, q: unknown, k: unknown, v: unknown): Checked {
  const cfg = toResolvedConfig(config);
  return { cfg, ...checkSequence(cfg, 'n', q, k, v) };
}

/** attention()'s option checks (method, block, backend, dtype), in its order: the pool runs them on the calling thread. */
export function checkOptions(options: AttentionOptions<DType> | undefined): Required<Pick<AttentionOptions<DType>, 'method' | 'block' | 'backend' | 'dtype'>> {
  const method = checkMethodOption(options?.method);
  const dtype = checkDtypeOption(options?.dtype);
  const block = options?.block ?? 0;
  if (block !== 0 && (!Number.isInteger(block) || block < 16 || (block & (block - 1)) !== 0)) {
    throw new ConfigError(`options.block must be a power of two >= 16, got ${describe(block)}`);
  }
  return { method, block, backend: checkBackendOption(options?.backend), dtype };
}

/** Reverse rows in place: x: [n, dim]. */
function reverseRows(x: Float64Array, n: number, dim: number): void {
  for (let i = 0, j = n - 1; i < j; i++, j--) {
    for (let c = 0; c < dim; c++) {
      const t = x[i * dim + c]!;
      x[i * dim + c] = x[j * dim + c]!;
      x[j * dim + c] = t;
    }
  }
}

/**
 * Whole-sequence attention. q, k: [heads, n, keyDim]; v: [heads, n, valueDim] -> [heads, n, valueDim].
 * options.method: 'auto' | 'fft' | 'direct'; options.dtype: 'float64' (default) -> a Float64Array-backed result,
 * 'float32' -> Float32Array-backed (inputs may be either; values beyond the float32 range are clamped to it).
 */
export function attention<D extends DType = 'float64'>(config: AttentionConfig | ResolvedConfig, q: NdArray, k: NdArray, v: NdArray, options?: AttentionOptions<D>): AttentionResult<D> {
  return attentionSplit(config, q, k, v, options, undefined);
}

/**
 * attention() with every FFT pass's channels shared with another thread running the same call (the pool splits
 * one head over two workers this way, threads/pool.ts; math/fftconv.ts ChannelSplit): with split.half 0 the
 * result is attention()'s bit for bit; with half 1 it is not meaningful (that thread only hands channels over).
 * split undefined: attention() itself. Either dtype (float32: nearfield32.ts, the halves on a value column's edge).
 */
export function attentionSplit<D extends DType = 'float64'>(config: AttentionConfig | ResolvedConfig, q: NdArray, k: NdArray, v: NdArray, options: AttentionOptions<D> | undefined, split: ChannelSplit | undefined): AttentionResult<D> {
  const { method, block, backend, dtype } = checkOptions(options);
  const { cfg, q: qv, k: kv, v: vv, n } = checkInputs(config, q, k, v);
  const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
  const out = dtype === 'float32' ? ndarray(new Float32Array(heads * n * dv), [heads, n, dv]) : zeros([heads, n, dv]);
  if (n === 0) return out as AttentionResult<D>;
  const planOne = dtype === 'float32' ? planPass32 : planPass;
  // plan every pass first (pure), then one workspace for the call sized for the largest: inputs, features,
  // accumulators, far state, FFT plans and scratch
  const plan = (name: BackendName): { plans: PassPlan[][]; floats: number } => {
    const plans: PassPlan[][] = [];
    let scratch = 0;
    // FFT plans outlive their pass (one per size, kept by the workspace): every distinct size is counted
    const planSizes = new Map<number, number>();
    for (let h = 0; h < heads; h++) {
      const sides = [cfg.past[h]!, cfg.future[h] ?? null].filter((s) => s !== null);
      plans.push(sides.map((kern) => planOne(kern.logBias.length, method, block, 0, n, m, dv, name)));
      for (const p of plans[h]!) {
        scratch = Math.max(scratch, p.scratch);
        if (p.method === 'fft') planSizes.set(p.block, p.planFloats);
      }
    }
    let planFloats = 0;
    for (const f of planSizes.values()) planFloats += f;
    return { plans, floats: layoutFloats(layout) + scratch + planFloats };
  };
  const layout = callLayout(cfg, n);
  let backendName = resolveBackend(backend);
  let { plans, floats } = plan(backendName);
  // past the 4 GiB of wasm32, 'auto' runs on JS; a forced 'wasm' gets the ResourceError naming the limit
  if (backendName === 'wasm' && backend === 'auto' && !workspaceFits('wasm', floats)) ({ plans, floats } = plan((backendName = 'js')));
  const ws = acquireWorkspace(backendName, floats);
  try {
    attendHeads(cfg, qv, kv, vv, n, method, block, plans, ws, layout, out, options?.onStats, dtype, split);
  } finally {
    releaseWorkspace(ws);
  }
  return out as AttentionResult<D>;
}

/** The arrays a call keeps across its heads and passes (the passes' scratch comes after them, planned per pass). */
function callLayout(cfg: ResolvedConfig, n: number): Layout {
  const { keyDim: d, valueDim: dv, featureDim: m } = cfg;
  const f = cfg.features;
  const f64 = (name: string, length: number) => ({ name, type: 'f64' as const, length });
  return declare([
    f64('x', n * Math.max(d, dv)), // [n, max(d, dv)] one head's q, k rows
    f64('phiQ', n * m), // [n, m]
    f64('phiK', n * m), // [n, m]
    f64('vals', n * dv), // [n, dv]
    f64('acc', n * (dv + 1)), // [n, dv + 1] numerators and the denominator
    f64('farSum', m * (dv + 1)), // [m, dv + 1]
    f64('farComp', m * (dv + 1)),
    f64('W', f.kind === 'prf' ? f.projection.length : 0), // [m, d]
  ]);
}

/** Every head of a checked call, on one workspace (taken by attention() and given back after). out: [heads, n, dv]. */
function attendHeads(
  cfg: ResolvedConfig, qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, n: number, method: MethodOption, block: number,
  plans: PassPlan[][], ws: Workspace, layout: Layout, out: NdArray<Float64Array | Float32Array>, onStats: AttentionOptions['onStats'], dtype: DType, split: ChannelSplit | undefined,
): void {
  const attend = dtype === 'float32' ? attendBuffer32 : attendBuffer;
  const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
  const views = ws.take(layout);
  const x = views.f64('x');
  const phiQ = views.f64('phiQ');
  const phiK = views.f64('phiK');
  const vals = views.f64('vals');
  const acc = views.f64('acc');
  const far = { sum: views.f64('farSum'), comp: views.f64('farComp') };
  // feature maps on the backend, with W in the workspace
  const f = cfg.features;
  const W = f.kind === 'prf' ? views.f64('W') : undefined;
  if (W !== undefined && f.kind === 'prf') W.set(f.projection);
  const pass: Omit<BufferPass, 'kernel' | 'partitions'> = { method, block, phiK, v: vals, phiQ, q0: 0, nb: n, m, dv, far, acc, split };
  for (let h = 0; h < heads; h++) {
    // a split head: each half computes one feature map and they swap (the same values, row by row)
    const swap = split?.swapFeatures !== undefined;
    if (!swap || split.half === 0) {
      copyHead(qv, h, x);
      queryFeatures(cfg.features, d, x, n, phiQ, ws, W);
    }
    if (!swap || split.half === 1) {
      copyHead(kv, h, x);
      keyFeatures(cfg.features, d, x, n, phiK, ws, W);
    }
    if (swap) split.swapFeatures!(split.half === 0 ? phiQ : phiK, split.half === 0 ? phiK : phiQ, n * m);
    copyHead(vv, h, vals);
    const valueScale = dtype === 'float32' ? normalizeValues(vals, n * dv) : scaleValues(vals, n * dv);
    acc.fill(0);
    const past = cfg.past[h]!;
    const future = cfg.future[h] ?? null;
    const shift = Math.max(kernelMaxLog(past), future === null ? -Infinity : kernelMaxLog(future));
    if (shift === -Infinity) continue; // every weight is zero: zero outputs
    far.sum.fill(0);
    far.comp.fill(0);
    const pastKernel = shiftKernel(past, shift);
    const pastStats = attend({ ...pass, kernel: pastKernel, partitions: new PartitionCache() }, plans[h]![0]!, ws);
    onStats?.({ ...pastStats, head: h, side: 'past' });
    if (future !== null) {
      // anti-causal part = causal pass over the reversed sequence with the future kernel
      reverseRows(phiQ, n, m);
      reverseRows(phiK, n, m);
      reverseRows(vals, n, dv);
      reverseRows(acc, n, dv + 1);
      far.sum.fill(0);
      far.comp.fill(0);
      const futureStats = attend({ ...pass, kernel: shiftKernel(future, shift), partitions: new PartitionCache() }, plans[h]![1]!, ws);
      onStats?.({ ...futureStats, head: h, side: 'future' });
      reverseRows(acc, n, dv + 1);
    }
    if (out.data instanceof Float32Array) finalizeRows32(acc, n, dv, out.data, h * n * dv, valueScale);
    else finalizeRows(acc, n, dv, out.data, h * n * dv, valueScale);
  }
}

/**
 * float32 channels: values scaled by a power of two (exactly) so that max |v| is in (1, 2], far from float32's
 * overflow and underflow; returns the factor that undoes it (1 when v is all zero).
 */
function normalizeValues(v: Float64Array, len: number): number {
  let vMax = 0;
  for (let i = 0; i < len; i++) vMax = Math.max(vMax, Math.abs(v[i]!));
  if (vMax === 0 || !Number.isFinite(vMax)) return 1;
  const e = powerOfTwoAbove(vMax) - 1; // 2^e < vMax <= 2^(e+1)
  if (e === 0) return 1;
  const f = exp2(-e);
  for (let i = 0; i < len; i++) v[i] = v[i]! * f;
  return exp2(e);
}

const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * finalizeRows (nearfield.ts) into float32: out[i, col] = scale acc[i, col] / acc[i, dv], clamped to the float32 range
 * (|z| <= max |v| 2, so only values scaled down from beyond 2^100 can need the clamp).
 */
function finalizeRows32(acc: Float64Array, rows: number, dv: number, out: Float32Array, outOff: number, scale: number): void {
  const w1 = dv + 1;
  const clamp = !(scale <= 2 ** 100);
  for (let i = 0; i < rows; i++) {
    const den = acc[i * w1 + dv]!;
    const o = outOff + i * dv;
    if (!(den > 0)) {
      out.fill(0, o, o + dv);
      continue;
    }
    for (let col = 0; col < dv; col++) {
      const z = (acc[i * w1 + col]! / den) * scale;
      out[o + col] = clamp ? Math.min(FLOAT32_MAX, Math.max(-FLOAT32_MAX, z)) : z;
    }
  }
}

/**
 * Values near the top of the float64 range would overflow the weighted sums: scale them by a power of two
 * (exactly) below 2^VALUE_EXP_LIMIT and return the factor that undoes it (1 almost always).
 */
function scaleValues(v: Float64Array, len: number): number {
  let vMax = 0;
  for (let i = 0; i < len; i++) vMax = Math.max(vMax, Math.abs(v[i]!));
  if (vMax < 2 ** VALUE_EXP_LIMIT) return 1;
  const e = powerOfTwoAbove(vMax) - VALUE_EXP_LIMIT + 1;
  const f = exp2(-e);
  for (let i = 0; i < len; i++) v[i] = v[i]! * f;
  return exp2(e);
}

/** The O(n^2) float64 oracle, straight from the formula: same shapes as attention(). */
export function referenceAttention(config: AttentionConfig | ResolvedConfig, q: NdArray, k: NdArray, v: NdArray): NdArray<Float64Array> {
  const { cfg, q: qv, k: kv, v: vv, n } = checkInputs(config, q, k, v);
  const { heads, keyDim: d, valueDim: dv } = cfg;
  const out = zeros([heads, n, dv]);
  const qh = new Float64Array(n * d);
  const kh = new Float64Array(n * d);
  const vh = new Float64Array(n * dv);
  const oh = new Float64Array(n * dv);
  for (let h = 0; h < heads; h++) {
    copyHead(qv, h, qh);
    copyHead(kv, h, kh);
    copyHead(vv, h, vh);
    referenceHead(cfg, h, qh, kh, vh, n, oh);
    out.data.set(oh, h * n * dv);
  }
  return out;
}

