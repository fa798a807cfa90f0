// The toeplitz-lm architecture config (DESIGN section 9): its validation, and the tensor table it implies.
// The one place that knows what a valid config is; the reader, the writer and the random-model helper
// all go through `checkModelConfig`.
import { describe, ModelError } from '../core/errors.js';

export const MODEL_FORMAT = 'toeplitz-lm/1';
/** toeplitz-lm/2: per-head decay tails (`rpe.tail: 'decay'`, tensor `layers.{l}.attention.rpe_decay [heads]`). */
export const MODEL_FORMAT_V2 = 'toeplitz-lm/2';
export type ModelFormat = typeof MODEL_FORMAT | typeof MODEL_FORMAT_V2;
/** The RPE tail of each format: v1 clips b(t) = b(K-1) past the table, v2 decays b(K-1) - r_h (t - K + 1). */
const FORMAT_TAIL = { [MODEL_FORMAT]: 'clip', [MODEL_FORMAT_V2]: 'decay' } as const;

/** The architecture (the `__metadata__.config` of a toeplitz-lm file, without its informational keys). */
export interface ModelConfig {
  readonly format: ModelFormat;
  /** 256: token id = byte value */
  readonly vocab: number;
  readonly dim: number;
  readonly layers: number;
  readonly heads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  /** SwiGLU hidden size */
  readonly hidden: number;
  readonly features: { readonly kind: 'prf'; readonly count: number; readonly normalize: 'l2' };
  /** K = length: b(0..K-1) per head; beyond it clipped (v1) or decayed at the head's rate (v2) */
  readonly rpe: { readonly length: number; readonly tail: 'clip' | 'decay' };
  readonly normEps: number;
  /** output.weight absent: the logits reuse tok_embeddings.weight */
  readonly tiedEmbedding: boolean;
}

/** The config as a user writes it (format optional: implied by rpe.tail). */
export type ModelConfigInput = Omit<ModelConfig, 'format'> & { format?: ModelFormat };

const CONTRACT_KEYS = ['format', 'vocab', 'dim', 'layers', 'heads', 'keyDim', 'valueDim', 'hidden', 'features', 'rpe', 'normEps', 'tiedEmbedding'];

// generous caps: they only keep a hostile header from asking for absurd allocations
const MAX_SIZE = 1 << 16;
const MAX_LAYERS = 1024;
const MAX_RPE = 1 << 20;

function fail(message: string): never {
  throw new ModelError('config', message);
}

function size(c: Record<string, unknown>, key: string, max: number, where = 'config'): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) fail(`${where}.${key} must be an integer in [1, ${max}], got ${describe(v)}`);
  return v;
}

function object(v: unknown, where: string, shape: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${where} must be an object ${shape}, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

/**
 * Validate a config (parsed JSON or user input) and return it normalized (contract keys only, frozen).
 * Informational keys (corpus, steps, losses) are allowed and left out; `informational()` returns them.
 */
export function checkModelConfig(value: unknown): ModelConfig {
  const c = object(value, 'config', '{ format, vocab, dim, layers, heads, keyDim, valueDim, hidden, features, rpe, normEps, tiedEmbedding }');
  const rpeTail = c.rpe !== null && typeof c.rpe === 'object' ? (c.rpe as Record<string, unknown>).tail : undefined;
  const format = c.format ?? (rpeTail === 'decay' ? MODEL_FORMAT_V2 : MODEL_FORMAT);
  if (format !== MODEL_FORMAT && format !== MODEL_FORMAT_V2) fail(`config.format must be "${MODEL_FORMAT}" or "${MODEL_FORMAT_V2}", got ${describe(format)}`);
  if (c.vocab !== 256) fail(`config.vocab must be 256 (byte-level: token id = byte value), got ${describe(c.vocab)}`);
  const dim = size(c, 'dim', MAX_SIZE);
  const layers = size(c, 'layers', MAX_LAYERS);
  const heads = size(c, 'heads', 4096);
  const keyDim = size(c, 'keyDim', MAX_SIZE);
  const valueDim = size(c, 'valueDim', MAX_SIZE);
  const hidden = size(c, 'hidden', 1 << 20);
  const f = object(c.features, 'config.features', `{ kind: 'prf', count, normalize: 'l2' }`);
  if (f.kind !== 'prf') fail(`config.features.kind must be "prf", got ${describe(f.kind)}`);
  const count = size(f, 'count', MAX_SIZE, 'config.features');
  if (f.normalize !== 'l2') fail(`config.features.normalize must be "l2" (the paper's NPRF), got ${describe(f.normalize)}`);
  const tail = FORMAT_TAIL[format];
  const r = object(c.rpe, 'config.rpe', `{ length, tail: '${tail}' }`);
  const length = size(r, 'length', MAX_RPE, 'config.rpe');
  if (r.tail !== tail) fail(`config.rpe.tail must be "${tail}"${format === MODEL_FORMAT ? '' : ` in a ${format} file`}, got ${describe(r.tail)}`);
  const normEps = c.normEps;
  if (typeof normEps !== 'number' || !Number.isFinite(normEps) || normEps <= 0) fail(`config.normEps must be a finite number > 0, got ${describe(normEps)}`);
  if (typeof c.tiedEmbedding !== 'boolean') fail(`config.tiedEmbedding must be a boolean, got ${describe(c.tiedEmbedding)}`);
  if (heads * keyDim > MAX_SIZE || heads * valueDim > MAX_SIZE) fail(`heads x keyDim and heads x valueDim must be at most ${MAX_SIZE}, got ${heads} x ${keyDim} and ${heads} x ${valueDim}`);
  return Object.freeze({
    format,
    vocab: 256,
    dim,
    layers,
    heads,
    keyDim,
    valueDim,
    hidden,
    features: Object.freeze({ kind: 'prf', count, normalize: 'l2' }),
    rpe: Object.freeze({ length, tail }),
    normEps,
    tiedEmbedding: c.tiedEmbedding,
  } as const);
}

/** The keys of a parsed config beyond the contract (training notes: corpus, steps, losses, ...). */
export function informational(value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!CONTRACT_KEYS.includes(k)) out[k] = v;
  return out;
}

/** One tensor of the file: name and shape. */
export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Every tensor a file of this config holds, in the trainer's write order (DESIGN section 9). */
export function tensorTable(c: ModelConfig): TensorSpec[] {
  const { vocab, dim, heads, keyDim, valueDim, hidden } = c;
  const out: TensorSpec[] = [{ name: 'tok_embeddings.weight', shape: [vocab, dim] }];
  for (let l = 0; l < c.layers; l++) {
    const p = `layers.${l}.`;
    out.push(
      { name: p + 'attention_norm.weight', shape: [dim] },
      { name: p + 'attention.wq.weight', shape: [heads * keyDim, dim] },
      { name: p + 'attention.wk.weight', shape: [heads * keyDim, dim] },
      { name: p + 'attention.wv.weight', shape: [heads * valueDim, dim] },
      { name: p + 'attention.wo.weight', shape: [dim, heads * valueDim] },
      { name: p + 'attention.projection', shape: [c.features.count, keyDim] },
      { name: p + 'attention.rpe_bias', shape: [heads, c.rpe.length] },
      ...(c.rpe.tail === 'decay' ? [{ name: p + 'attention.rpe_decay', shape: [heads] }] : []),
      { name: p + 'ffn_norm.weight', shape: [dim] },
      { name: p + 'feed_forward.w1.weight', shape: [hidden, dim] },
      { name: p + 'feed_forward.w2.weight', shape: [dim, hidden] },
      { name: p + 'feed_forward.w3.weight', shape: [hidden, dim] },
    );
  }
  out.push({ name: 'norm.weight', shape: [dim] });
  if (!c.tiedEmbedding) out.push({ name: 'output.weight', shape: [vocab, dim] });
  return out;
}
