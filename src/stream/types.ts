// Public types of toeplitz-attention/rx: tokens in, outputs out, sources and options.
import type { NdArray } from 'ndarray';
import type { Observable } from 'rxjs';
import type { Decoder } from '../codec/decoder.js';
import type { AttentionConfig } from '../engine/config.js';

/** One token: q, k: [heads, keyDim]; v: [heads, valueDim]. */
export interface Token {
  q: NdArray;
  k: NdArray;
  v: NdArray;
}

/** The output for one token: its 0-based position in the decoder's stream and z: [heads, valueDim]. */
export interface Attended {
  position: number;
  z: NdArray<Float64Array>;
}

/** L tokens at once: q, k: [heads, L, keyDim]; v: [heads, L, valueDim]. */
export interface ChunkToken {
  q: NdArray;
  k: NdArray;
  v: NdArray;
}

/** The output for one chunk: position of its first token and z: [heads, L, valueDim]. */
export interface AttendedChunk {
  position: number;
  z: NdArray<Float64Array>;
}

/**
 * Where the decoder comes from. A config gives a fresh Decoder per subscription (cold); a Decoder is shared
 * (the caller manages it, e.g. snapshots it after an error); `{ restore }` restores a fresh Decoder from
 * snapshot bytes per subscription (cold), continuing at the snapshot's position.
 */
export type AttendSource = AttentionConfig | Decoder | { restore: Uint8Array };

/** Receives checkpoint bytes and the position (tokens consumed) they were taken at. */
export type CheckpointSinkFn = (bytes: Uint8Array, position: number) => void | Promise<void>;

export interface CheckpointOptions {
  /** take a snapshot every `every` tokens (for chunks/groups: at the first boundary at or past each multiple) */
  every: number;
  /** a function, or a file path written atomically (writeFileAtomic of `toeplitz-attention/codec`) */
  sink: CheckpointSinkFn | string;
  /** rx operators only: also take a checkpoint (on demand) whenever this emits, at the current boundary */
  trigger?: Observable<unknown>;
}

export interface GroupOptions {
  /** close a group when it holds `count` tokens */
  count?: number;
  /** close a group `timeMs` after its first token arrived (bounds the added latency) */
  timeMs?: number;
}

export interface AttendOptions {
  checkpoint?: CheckpointOptions;
  /** group single tokens into decoder.chunk calls; outputs stay one per token, in order */
  group?: GroupOptions;
}
