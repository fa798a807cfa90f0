// Held-out cross-entropy in bits per byte, streamed through a session (bounded memory at any length),
// overall and by position: what the model makes of long context.
import { StateError, ConfigError, ShapeError, describe } from '../core/errors.js';
import type { Model } from './model.js';
import { copyTokens } from './tokens.js';
import type { Session } from './session.js';

/** Bucket starts (positions of the predicted byte): 0-256, 256-1k, 1k-4k, 4k-16k, 16k+. */
export const POSITION_BUCKETS: readonly number[] = [0, 256, 1024, 4096, 16384];

export interface BucketResult {
  /** positions [from, to) of the predicted byte */
  from: number;
  to: number;
  /** predictions in the bucket */
  count: number;
  /** NaN when count is 0 (no prediction fell in the bucket) */
  bitsPerByte: number;
}

export interface Evaluation {
  /** predictions made: every byte after the first */
  count: number;
  bitsPerByte: number;
  buckets: BucketResult[];
  seconds: number;
}

export interface EvaluateOptions {
  /** tokens per session.feed call (default 512) */
  chunkSize?: number;
  /** after each chunk: (bytes done, bytes in all) */
  onProgress?: (done: number, total: number) => void;
  /** bucket starts, ascending, the first 0 (default POSITION_BUCKETS) */
  buckets?: readonly number[];
  /** a fresh session of `model` to stream through (default: a new one); it is left at the end of `tokens`,
   *  e.g. to generate from a long stream's end */
  session?: Session;
}

/** Bits per byte of `tokens` under the model: -log2 p(t_{i+1} | t_0..t_i), averaged over i, streamed from the start. */
export function evaluate(model: Model, tokens: ArrayLike<number>, options: EvaluateOptions = {}): Evaluation {
  const V = model.config.vocab;
  if (options === null || typeof options !== 'object') throw new ConfigError(`evaluate options must be an object { chunkSize?, onProgress?, buckets? }, got ${describe(options)}`);
  tokens = copyTokens(tokens, V);
  if (tokens.length < 2) throw new ShapeError(`evaluate needs at least 2 tokens (the first is never predicted), got ${tokens.length}`);
  const chunk = options.chunkSize ?? 512;
  if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunkSize must be a positive integer, got ${describe(chunk)}`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ConfigError(`onProgress must be a function, got ${describe(options.onProgress)}`);
  const starts = checkBuckets(options.buckets ?? POSITION_BUCKETS);
  const sums = new Float64Array(starts.length);
  const counts = new Float64Array(starts.length);
  const session = options.session ?? model.session();
  if (session.model !== model || session.position !== 0) throw new StateError(`evaluate needs a fresh session of this model (position 0), got ${session.model !== model ? "a session of another model" : `one at position ${session.position}`}`);
  const n = tokens.length;
  const t0 = performance.now();
  let bucket = 0;
  let prev: Float64Array | null = null; // logits of the previous chunk's last row
  for (let p = 0; p < n; p += chunk) {
    const L = Math.min(chunk, n - p);
    const rows = session.feed((tokens as Uint8Array).subarray(p, p + L), { chunkSize: L });
    // row i (token p + i) predicts token p + i + 1; the previous chunk's last row predicts token p
    for (let i = -1; i < L - 1; i++) {
      const target = p + i + 1;
      if (target === 0) continue;
      const row = i < 0 ? prev! : rows;
      const off = i < 0 ? 0 : i * V;
      let max = -Infinity;
      for (let j = 0; j < V; j++) max = Math.max(max, row[off + j]!);
      let sum = 0;
      for (let j = 0; j < V; j++) sum += Math.exp(row[off + j]! - max);
      const nats = max + Math.log(sum) - row[off + tokens[target]!]!;
      while (bucket + 1 < starts.length && target >= starts[bucket + 1]!) bucket++;
      sums[bucket] = sums[bucket]! + nats / Math.LN2;
      counts[bucket] = counts[bucket]! + 1;
    }
    prev = rows.subarray((L - 1) * V, L * V);
    options.onProgress?.(p + L, n);
  }
  let total = 0;
  let count = 0;
  const buckets: BucketResult[] = starts.map((from, b) => {
    total += sums[b]!;
    count += counts[b]!;
    return { from, to: starts[b + 1] ?? Infinity, count: counts[b]!, bitsPerByte: counts[b]! > 0 ? sums[b]! / counts[b]! : NaN };
  });
  return { count, bitsPerByte: count > 0 ? total / count : NaN, buckets, seconds: (performance.now() - t0) / 1000 };
}

/** Bucket starts: a non-empty array of integers, the first 0, strictly ascending (a copy). */
function checkBuckets(value: unknown): number[] {
  const fail = (got: string): never => {
    throw new ConfigError(`buckets must be a non-empty array of integer positions starting at 0, strictly ascending, got ${got}`);
  };
  if (!Array.isArray(value) || value.length === 0 || value.length > 4096) fail(describe(value));
  const out = Array.from(value as unknown[]);
  out.forEach((b, i) => {
    if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || (i === 0 && b !== 0) || (i > 0 && b <= (out[i - 1] as number))) fail(`${describe(b)} at index ${i}`);
  });
  return out as number[];
}
