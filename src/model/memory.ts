// What a model's config asks of memory beyond its weights, checked at load against budgets, so that a
// small file cannot make a session or a feed call allocate without bound (a config's sizes are each
// capped, but their products are what memory pays for).
//   - decoder state of one session at its largest (every layer's rings full at the RPE window, far-field
//     sums m x dv per head): refused above ModelOptions.maxStateBytes (default 1 GiB);
//   - rows per GEMM call and per FFN block: fewer than GEMM_ROWS when the layers are wide, so the FFN
//     scratch and the WASM staging of activations stay under STAGE_FLOATS;
//   - rows per feed chunk: the chunk size asked for, lowered (not refused) to fit CHUNK_BYTES of working
//     memory per chunk. Results do not depend on it beyond rounding (any chunking equals model.logits).
import { ModelError } from '../core/errors.js';
import type { ModelConfig } from './config.js';
import { GEMM_ROWS } from './forward.js';

/** Default cap on one session's decoder state (ModelOptions.maxStateBytes). */
export const DEFAULT_MAX_STATE_BYTES = 2 ** 30;
/** Working memory a feed chunk aims at (its rows are lowered to fit). */
export const CHUNK_BYTES = 64 * 2 ** 20;
/** Float64 entries of per-call scratch for a block of rows: FFN activations, WASM staging (32 MiB). */
export const STAGE_FLOATS = 4 * 2 ** 20;

function widest(c: ModelConfig): number {
  return Math.max(c.hidden, c.vocab, c.heads * c.keyDim, c.heads * c.valueDim);
}

/** Rows per GEMM call and per FFN block: GEMM_ROWS, or fewer so a block's (dim + widest) x rows fits STAGE_FLOATS. */
export function blockRows(c: ModelConfig): number {
  return Math.max(1, Math.min(GEMM_ROWS, Math.floor(STAGE_FLOATS / (c.dim + widest(c)))));
}

/** Float64 entries of working memory per token of a chunk: the forward's rows and the decoder's chunk scratch. */
function rowFloats(c: ModelConfig): number {
  const m = c.features.count;
  return 2 * c.dim + 4 * c.heads * c.keyDim + 2 * c.heads * c.valueDim + 2 * c.heads * (2 * m + c.valueDim);
}

/** The rows a feed chunk of `requested` tokens runs with: at most what fits CHUNK_BYTES, at least 1. */
export function chunkRows(c: ModelConfig, requested: number): number {
  return Math.max(1, Math.min(requested, Math.floor(CHUNK_BYTES / 8 / rowFloats(c))));
}

/** Bytes of one session's decoder state at its largest (rings full, far-field sums, kernel tables), all layers. */
export function sessionStateBytes(c: ModelConfig): number {
  const m = c.features.count;
  const dv = c.valueDim;
  const K = c.rpe.length;
  const perHead = K * (m + dv + 4) + 2 * m * (dv + 1) + 8;
  return 8 * c.layers * (c.heads * perHead + m * c.keyDim);
}

/** Refuse a config whose sessions would need more state than `maxStateBytes` (a ModelError 'too-large' saying how much). */
export function checkModelMemory(c: ModelConfig, maxStateBytes: number): void {
  const need = sessionStateBytes(c);
  if (need > maxStateBytes) {
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new ModelError(
      'too-large',
      `a session of this model would need up to ${mib(need)} of decoder state (${c.layers} layers x ${c.heads} heads x (RPE window ${c.rpe.length} x (features ${c.features.count} + valueDim ${c.valueDim}) + far-field ${c.features.count} x ${c.valueDim})), ` +
        `more than the ${mib(maxStateBytes)} allowed; pass { maxStateBytes } to loadModel to allow it`,
    );
  }
}
