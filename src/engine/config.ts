// Public configuration types, their validation, and resolution into the plain data the kernels use.
import { ConfigError, describe } from '../core/errors.js';
import { MAX_DERIVED_BYTES, MAX_PROJECTION_ENTRIES, MAX_TABLE } from '../core/limits.js';
import { kernelLogAt, type CausalKernel, type ResolvedTail } from '../math/kernel.js';
import { drawProjection } from '../math/projection.js';

export type { Tail, RpeSide, RpeSpec, Normalize, FeatureSpec, AttentionConfig, ResolvedFeatures } from '../core/types.js';
import type { Tail, RpeSide, RpeSpec, FeatureSpec, AttentionConfig, ResolvedFeatures } from '../core/types.js';

/** A validated config with defaults filled in, every array owned, and the RPE lowered to causal kernels. */
export interface ResolvedConfig {
  readonly heads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly causal: boolean;
  readonly features: ResolvedFeatures;
  /** m: feature dimension (count for PRF, keyDim for deterministic maps) */
  readonly featureDim: number;
  /** per head: kernel over lags t >= 0 */
  readonly past: readonly CausalKernel[];
  /** per head: kernel over s >= 0 for lag -s (c at s = 0 is zero); null when causal */
  readonly future: readonly (CausalKernel | null)[];
  /** the normalized public config (plain data; what snapshots store) */
  readonly spec: AttentionConfig;
}

/** Configs resolved here (an unforgeable mark: a user object that merely looks resolved is not one). */
const resolvedConfigs = new WeakSet<object>();

/** True for a config that resolveConfig() returned. */
function isResolvedConfig(config: unknown): config is ResolvedConfig {
  return typeof config === 'object' && config !== null && resolvedConfigs.has(config);
}

/** The one entry every builder uses: a resolved config as is, anything else through resolveConfig. */
export function toResolvedConfig(config: AttentionConfig | ResolvedConfig): ResolvedConfig {
  return isResolvedConfig(config) ? config : resolveConfig(config as AttentionConfig);
}

function positiveInt(value: unknown, name: string, max = 1 << 24): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${name} must be an integer in [1, ${max}], got ${describe(value)}`);
  }
  return value;
}

/** A decay rate: finite and >= 0 (shared with the RPE presets; `name` is how messages call it). */
export function checkDecayRate(rate: unknown, name: string): number {
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) {
    throw new ConfigError(`${name} must be a finite number >= 0, got ${describe(rate)}`);
  }
  return rate === 0 ? 0 : rate; // no -0
}

/** Validate a tail rule (shared with the RPE presets). */
export function resolveTail(tail: unknown, where: string): ResolvedTail {
  if (tail === undefined || tail === 'clip') return { kind: 'clip' };
  if (tail === 'zero') return { kind: 'zero' };
  if (typeof tail === 'object' && tail !== null && 'decay' in tail) {
    return { kind: 'decay', rate: checkDecayRate((tail as { decay: unknown }).decay, `${where}.tail.decay`) };
  }
  throw new ConfigError(`${where}.tail must be 'clip', 'zero' or { decay: rate }, got ${describe(tail)}`);
}

/** A bias table: 1 to MAX_TABLE entries, each finite or -Infinity (shared with the RPE presets; `name` names it in messages). */
export function checkBiasTable(bias: unknown, name: string): Float64Array {
  if (bias === null || typeof bias !== 'object' || typeof (bias as ArrayLike<number>).length !== 'number') {
    throw new ConfigError(`${name} must be an array of numbers, got ${describe(bias)}`);
  }
  const list = bias as ArrayLike<unknown>;
  if (list.length < 1 || list.length > MAX_TABLE) {
    throw new ConfigError(`${name} must hold 1 to ${MAX_TABLE} entries, got ${list.length}`);
  }
  const out = new Float64Array(list.length);
  for (let t = 0; t < list.length; t++) {
    const b = list[t];
    if (typeof b !== 'number' || Number.isNaN(b) || b === Infinity) {
      throw new ConfigError(`${name}[${t}] must be a finite number or -Infinity, got ${describe(b)}`);
    }
    out[t] = b;
  }
  return out;
}

function resolveSide(side: unknown, where: string): { logBias: Float64Array; tail: ResolvedTail } {
  if (side === null || typeof side !== 'object') {
    throw new ConfigError(`${where} must be an object { bias, tail? }, got ${describe(side)}`);
  }
  const s = side as RpeSide;
  return { logBias: checkBiasTable(s.bias, `${where}.bias`), tail: resolveTail(s.tail, where) };
}

/** The future side as a causal kernel over s >= 0: entry 0 is -Infinity (lag 0 belongs to the past side). */
function futureKernel(side: { logBias: Float64Array; tail: ResolvedTail }): CausalKernel {
  const logBias = new Float64Array(side.logBias.length + 1);
  logBias[0] = -Infinity;
  logBias.set(side.logBias, 1);
  return { logBias, tail: side.tail };
}

/** Mirror: b(-s) = b_past(s) for s >= 1, written as a causal kernel with at least two entries. */
function mirrorKernel(past: CausalKernel): CausalKernel {
  const K = Math.max(past.logBias.length, 2);
  const logBias = new Float64Array(K);
  logBias[0] = -Infinity;
  for (let s = 1; s < K; s++) logBias[s] = kernelLogAt(past, s);
  return { logBias, tail: past.tail };
}

function resolveFeatures(f: unknown, keyDim: number): ResolvedFeatures {
  if (f === null || typeof f !== 'object') {
    throw new ConfigError(`features must be an object { kind: 'prf' | 'elu+1' | 'relu', ... }, got ${describe(f)}`);
  }
  const kind = (f as { kind?: unknown }).kind;
  if (kind === 'elu+1' || kind === 'relu') return { kind };
  if (kind !== 'prf') {
    throw new ConfigError(`features.kind must be 'prf', 'elu+1' or 'relu', got ${describe(kind)}`);
  }
  const spec = f as Extract<FeatureSpec, { kind: 'prf' }>;
  const count = positiveInt(spec.count, 'features.count', 1 << 16);
  if (count * keyDim > MAX_PROJECTION_ENTRIES) {
    throw new ConfigError(`features.count x keyDim = ${count} x ${keyDim} would need ${count * keyDim * 8} bytes for W, more than the limit of ${MAX_PROJECTION_ENTRIES * 8} bytes (${MAX_PROJECTION_ENTRIES} entries)`);
  }
  const normalize = spec.normalize ?? 'l2';
  if (normalize !== 'l2' && normalize !== 'scale' && normalize !== 'none') {
    throw new ConfigError(`features.normalize must be 'l2', 'scale' or 'none', got ${describe(normalize)}`);
  }
  const orthogonal = spec.orthogonal ?? true;
  if (typeof orthogonal !== 'boolean') {
    throw new ConfigError(`features.orthogonal must be a boolean, got ${describe(orthogonal)}`);
  }
  if (spec.projection !== undefined) {
    const w = spec.projection;
    if (!(w instanceof Float64Array) && !(w instanceof Float32Array)) {
      throw new ConfigError(`features.projection must be a Float64Array or Float32Array of count x keyDim = ${count * keyDim} entries, got ${describe(w)}`);
    }
    if (w.length !== count * keyDim) {
      throw new ConfigError(`features.projection must hold count x keyDim = ${count} x ${keyDim} = ${count * keyDim} entries, got ${w.length}`);
    }
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i]!)) {
        throw new ConfigError(`features.projection[${i}] must be finite, got ${describe(w[i])}`);
      }
    }
    return { kind: 'prf', count, normalize, projection: Float64Array.from(w), seed: null, orthogonal };
  }
  const seed = spec.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw new ConfigError(`features.seed must be a finite number, got ${describe(seed)}`);
  }
  return { kind: 'prf', count, normalize, projection: drawProjection(count, keyDim, seed, orthogonal), seed, orthogonal };
}

/** Validate a public config and lower it; throws ConfigError naming the field, what was expected and what arrived. */
export function resolveConfig(config: AttentionConfig | ResolvedConfig): ResolvedConfig {
  if (config === null || typeof config !== 'object') {
    throw new ConfigError(`config must be an object { heads, keyDim, valueDim, causal?, features, rpe }, got ${describe(config)}`);
  }
  if (isResolvedConfig(config)) return config;
  const heads = positiveInt(config.heads, 'heads', 4096);
  const keyDim = positiveInt(config.keyDim, 'keyDim', 1 << 16);
  const valueDim = positiveInt(config.valueDim, 'valueDim', 1 << 16);
  const causal = config.causal ?? true;
  if (typeof causal !== 'boolean') throw new ConfigError(`causal must be a boolean, got ${describe(causal)}`);
  const features = resolveFeatures(config.features, keyDim);
  const featureDim = features.kind === 'prf' ? features.count : keyDim;

  const rpeList = Array.isArray(config.rpe) ? config.rpe : [config.rpe];
  if (Array.isArray(config.rpe) && rpeList.length !== heads) {
    throw new ConfigError(`rpe must be one spec or an array of one per head (${heads}), got an array of length ${rpeList.length}`);
  }
  const past: CausalKernel[] = [];
  const future: (CausalKernel | null)[] = [];
  const specs: RpeSpec[] = [];
  for (let h = 0; h < heads; h++) {
    const where = Array.isArray(config.rpe) ? `rpe[${h}]` : 'rpe';
    const spec = rpeList[Array.isArray(config.rpe) ? h : 0];
    if (spec === null || typeof spec !== 'object') {
      throw new ConfigError(`${where} must be an object { past, future? }, got ${describe(spec)}`);
    }
    if (h > 0 && !Array.isArray(config.rpe)) {
      past.push(past[0]!);
      future.push(future[0]!);
      continue;
    }
    const p = resolveSide(spec.past, `${where}.past`);
    past.push(p);
    const f = spec.future === undefined ? null : resolveSide(spec.future, `${where}.future`);
    future.push(causal ? null : f === null ? mirrorKernel(p) : futureKernel(f));
    specs.push({
      past: { bias: Array.from(p.logBias), tail: tailSpec(p.tail) },
      ...(f === null ? {} : { future: { bias: Array.from(f.logBias), tail: tailSpec(f.tail) } }),
    });
  }
  const featureSpec: FeatureSpec =
    features.kind === 'prf'
      ? { kind: 'prf', count: features.count, normalize: features.normalize, orthogonal: features.orthogonal, projection: features.projection, ...(features.seed === null ? {} : { seed: features.seed }) }
      : { kind: features.kind };
  const spec: AttentionConfig = {
    heads,
    keyDim,
    valueDim,
    causal,
    features: featureSpec,
    rpe: Array.isArray(config.rpe) ? specs : specs[0]!,
  };
  // derived tables: one float64 per lag of every distinct kernel (shared RPEs are stored once)
  const distinct = new Set<CausalKernel>([...past, ...future.filter((f): f is CausalKernel => f !== null)]);
  let derived = 0;
  for (const kern of distinct) derived += kern.logBias.length * 8;
  if (derived > MAX_DERIVED_BYTES) {
    throw new ConfigError(`rpe tables would need ${derived} bytes of kernel values (${distinct.size} distinct tables), more than the limit of ${MAX_DERIVED_BYTES} bytes`);
  }
  const resolved: ResolvedConfig = { heads, keyDim, valueDim, causal, features, featureDim, past, future, spec };
  resolvedConfigs.add(resolved);
  return resolved;
}

function tailSpec(tail: ResolvedTail): Tail {
  return tail.kind === 'decay' ? { decay: tail.rate } : tail.kind;
}
