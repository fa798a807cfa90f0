// Messages between the pool (pool.ts, calling thread) and its workers (worker.ts). Plain data only: typed
// arrays travel by transfer (their buffers move, no copy), configs as the normalized public spec.
import type { AttentionConfig } from '../engine/config.js';
import type { MethodOption, PassStats } from '../engine/nearfield.js';
import type { DType } from '../engine/dtype.js';
import type { BackendOption } from '../backend/types.js';
import type { DecoderState } from '../engine/state.js';
import type { SplitSpec } from './exchange.js';

/**
 * The sub-config of one head group. `key` names it for the worker's cache; `spec` (heads = the group's
 * size, rpe = the group's specs) comes along only when the pool's mirror of that cache says it is missing.
 */
export interface GroupConfig {
  key: string;
  spec?: AttentionConfig;
}

/**
 * Whole-sequence attention of one head group: q, k: [g, n, keyDim]; v: [g, n, valueDim]. With `split`, one head
 * run by two workers at once (exchange.ts): q, k, v are views of split.shared, and only half 0 sends back z.
 */
export interface AttentionTask {
  kind: 'attention';
  id: number;
  config: GroupConfig;
  n: number;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  method: MethodOption;
  /** the caller's option, unresolved: the worker's attention() resolves it as the caller's would ('auto' runs on JS past the WASM limit) */
  backend: BackendOption;
  block: number;
  /** attention()'s dtype: 'float32' replies with a Float32Array z (a split one too: half 0's) */
  dtype: DType;
  /** collect onStats records (the callback itself stays on the calling thread) */
  stats: boolean;
  split?: SplitSpec;
}

/** One chunk of a head group's decoder: the group's state, q, k: [g, L, keyDim]; v: [g, L, valueDim]. */
export interface ChunkTask {
  kind: 'chunk';
  id: number;
  config: GroupConfig;
  L: number;
  state: DecoderState;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
}

export type Task = AttentionTask | ChunkTask;

export type AttentionStats = PassStats & { head: number; side: 'past' | 'future' };

/** An error crossing the thread boundary: the pool rebuilds the library's typed error from `name`. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** `recycle`: the task's input buffers, moved back for the pool to reuse (fresh memory costs page faults). */
export type Reply =
  | { id: number; ok: true; z: Float64Array | Float32Array; stats: AttentionStats[] | PassStats[]; state?: DecoderState; recycle: ArrayBuffer[] }
  | { id: number; ok: false; error: WireError; recycle: ArrayBuffer[] };

/** First message of a worker: its module graph loaded (so the pool knows the worker can run tasks). */
export interface Ready {
  ready: true;
}

/** Configs a worker keeps resolved (least recently used dropped first); the pool mirrors this cache exactly. */
export const CONFIG_CACHE_SIZE = 8;
