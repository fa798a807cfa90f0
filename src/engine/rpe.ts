// Ready-made relative positional encodings (DESIGN section 2): plain linear attention, ALiBi / RetNet
// decays, sliding windows, explicit tables and T5-style clipped buckets expanded into a table.
import type { RpeSide, RpeSpec, Tail } from './config.js';
import { ConfigError, describe } from '../core/errors.js';
import { MAX_TABLE } from '../core/limits.js';
import { checkBiasTable, checkDecayRate, resolveTail } from './config.js';

function positiveInteger(value: unknown, name: string, max = MAX_TABLE): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(`${name} must be an integer in [1, ${max}], got ${describe(value)}`);
  }
  return value;
}

// bias and tail rules are the config's own (one rule, one place)
function checkBias(bias: unknown, name: string): number[] {
  return Array.from(checkBiasTable(bias, name));
}

function biasValue(value: unknown, name: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value === Infinity) {
    throw new ConfigError(`${name} must be a finite number or -Infinity, got ${describe(value)}`);
  }
  return value;
}

function checkTail(tail: unknown, where = 'rpe'): Tail {
  const t = resolveTail(tail, where);
  return t.kind === 'decay' ? { decay: t.rate } : t.kind;
}

const decayRate = checkDecayRate;

// ---------------------------------------------------------------------------------------------------
// T5 buckets.

export interface T5BucketOptions {
  /** total number of buckets (T5 default 32) */
  numBuckets: number;
  /** distance from which every lag shares the last bucket of its side (T5 default 128) */
  maxDistance: number;
  /** true for the encoder (future lags use the upper half of the buckets), false for the decoder */
  bidirectional: boolean;
}

interface BucketParams {
  /** buckets per side (numBuckets, or floor(numBuckets / 2) when bidirectional) */
  half: number;
  maxExact: number;
  /** float32 log(maxDistance / maxExact), as T5 computes it */
  logRange: number;
  bidirectional: boolean;
}

function bucketParams(options: unknown, where: string): BucketParams {
  if (options === null || typeof options !== 'object') {
    throw new ConfigError(`${where} options must be an object { numBuckets, maxDistance, bidirectional }, got ${describe(options)}`);
  }
  const o = options as Partial<T5BucketOptions>;
  const bidirectional = o.bidirectional;
  if (typeof bidirectional !== 'boolean') {
    throw new ConfigError(`${where} bidirectional must be a boolean, got ${describe(bidirectional)}`);
  }
  const minBuckets = bidirectional ? 4 : 2;
  const numBuckets = o.numBuckets;
  if (typeof numBuckets !== 'number' || !Number.isInteger(numBuckets) || numBuckets < minBuckets || numBuckets > 1 << 20) {
    throw new ConfigError(`${where} numBuckets must be an integer in [${minBuckets}, ${1 << 20}]${bidirectional ? ' (bidirectional)' : ''}, got ${describe(numBuckets)}`);
  }
  const half = bidirectional ? Math.floor(numBuckets / 2) : numBuckets;
  const maxExact = Math.floor(half / 2);
  const maxDistance = o.maxDistance;
  if (typeof maxDistance !== 'number' || !Number.isInteger(maxDistance) || maxDistance <= maxExact || maxDistance > 1 << 24) {
    throw new ConfigError(`${where} maxDistance must be an integer in [${maxExact + 1}, ${1 << 24}] (above the ${maxExact} exact buckets), got ${describe(maxDistance)}`);
  }
  return { half, maxExact, logRange: Math.fround(Math.log(maxDistance / maxExact)), bidirectional };
}

/** Bucket of a lag >= 0 within one side (0 .. half-1), in T5's float32 arithmetic. */
function sideBucket(n: number, p: BucketParams): number {
  if (n < p.maxExact) return n;
  const f = Math.fround;
  const ratio = f(f(n) / p.maxExact);
  const scaled = f(f(f(Math.log(ratio)) / p.logRange) * (p.half - p.maxExact));
  return Math.min(p.maxExact + Math.trunc(scaled), p.half - 1);
}

function bucketOf(lag: number, p: BucketParams): number {
  if (p.bidirectional) return lag < 0 ? p.half + sideBucket(-lag, p) : sideBucket(lag, p);
  return sideBucket(Math.max(lag, 0), p);
}

/**
 * T5's `_relative_position_bucket` for lag = query position - key position (= -relative_position).
 * Lags below numBuckets/4 (bidirectional) or numBuckets/2 get their own bucket, then buckets grow
 * logarithmically up to maxDistance, after which every lag shares the side's last bucket. Bidirectional:
 * past lags (t >= 0) use buckets 0 .. half-1, future lags (t < 0) use half .. 2 half - 1. Unidirectional:
 * future lags fall in bucket 0. The logarithm is taken in float32, exactly as the T5 implementations do.
 */
export function t5Bucket(lag: number, options: T5BucketOptions): number {
  if (typeof lag !== 'number' || !Number.isInteger(lag)) {
    throw new ConfigError(`t5Bucket lag must be an integer, got ${describe(lag)}`);
  }
  return bucketOf(lag, bucketParams(options, 't5Bucket'));
}

export interface T5Options extends T5BucketOptions {
  /** one learned bias per bucket: numBuckets entries */
  bucketBias: ArrayLike<number>;
}

/** Smallest lag >= 0 whose bucket is the side's last (every larger lag shares it: buckets are monotone). */
function saturationLag(p: BucketParams): number {
  let t = 0;
  while (sideBucket(t, p) < p.half - 1) t++;
  return t;
}

/**
 * T5 relative attention bias, expanded into an RPE table: past side b(0..T) with T the lag where the
 * bucket saturates, tail 'clip'; the future side lists b(-1..-T) (bidirectional) or the constant
 * bucket-0 bias (unidirectional: T5 puts every future lag in bucket 0).
 */
function t5(options: T5Options): RpeSpec {
  const p = bucketParams(options, 'rpe.t5');
  const bias = checkBias(options.bucketBias, 'rpe.t5 bucketBias');
  if (bias.length !== options.numBuckets) {
    throw new ConfigError(`rpe.t5 bucketBias must hold numBuckets = ${options.numBuckets} entries, got ${bias.length}`);
  }
  const T = saturationLag(p);
  const past = new Array<number>(T + 1);
  for (let t = 0; t <= T; t++) past[t] = bias[bucketOf(t, p)]!;
  if (!p.bidirectional) return { past: { bias: past, tail: 'clip' }, future: { bias: [bias[0]!], tail: 'clip' } };
  const future = new Array<number>(T);
  for (let s = 1; s <= T; s++) future[s - 1] = bias[bucketOf(-s, p)]!;
  return { past: { bias: past, tail: 'clip' }, future: { bias: future, tail: 'clip' } };
}

// ---------------------------------------------------------------------------------------------------
// ALiBi slopes.

function powerOfTwoSlopes(n: number): number[] {
  const out: number[] = [];
  for (let i = 1; i <= n; i++) out.push(Math.pow(2, (-8 * i) / n));
  return out;
}

/**
 * ALiBi head slopes (Press et al.): 2^(-8 i / heads), i = 1..heads, for a power of two; otherwise the
 * slopes of the closest lower power of two p, then every other slope of 2p until there are `heads`.
 */
export function alibiSlopes(heads: number): number[] {
  positiveInteger(heads, 'alibi heads', 4096);
  const p = Math.pow(2, Math.floor(Math.log2(heads)));
  if (p === heads) return powerOfTwoSlopes(heads);
  const extra = powerOfTwoSlopes(2 * p).filter((_, i) => i % 2 === 0).slice(0, heads - p);
  return powerOfTwoSlopes(p).concat(extra);
}

// ---------------------------------------------------------------------------------------------------
// Presets.

function side(bias: number[], tail: Tail): RpeSide {
  return { bias, tail };
}

function decay(rate: number): RpeSpec {
  return { past: side([0], { decay: decayRate(rate, 'rpe.decay rate') }) };
}

export const rpe = {
  /** b = 0 at every lag: plain (causal or bidirectional) linear attention. */
  none(): RpeSpec {
    return { past: side([0], 'clip') };
  },
  /** b(t) = -rate |t| (ALiBi / RetNet-style exponential decay c(t) = exp(-rate |t|)), rate >= 0. */
  decay,
  /** RetNet: c(t) = gamma^t, gamma in (0, 1]: decay rate -ln gamma. */
  retnet(gamma: number): RpeSpec {
    if (typeof gamma !== 'number' || !(gamma > 0 && gamma <= 1)) {
      throw new ConfigError(`rpe.retnet gamma must be a number in (0, 1], got ${describe(gamma)}`);
    }
    return decay(-Math.log(gamma));
  },
  /** One decay per head with the standard ALiBi slopes (see alibiSlopes). */
  alibi(heads: number): RpeSpec[] {
    return alibiSlopes(heads).map((slope) => decay(slope));
  },
  /** Sliding window: lags 0..K-1 visible with bias `bias`, c = 0 beyond. */
  window(K: number, bias = 0): RpeSpec {
    positiveInteger(K, 'rpe.window K');
    const b = biasValue(bias, 'rpe.window bias');
    return { past: side(new Array<number>(K).fill(b), 'zero') };
  },
  /** An explicit table b(0..K-1) with a tail (default 'clip'); the future side mirrors it. */
  table(bias: ArrayLike<number>, tail?: Tail): RpeSpec {
    return { past: side(checkBias(bias, 'rpe.table bias'), checkTail(tail)) };
  },
  /** T5 bucketed relative bias expanded into a table (see t5Bucket). */
  t5,
};
