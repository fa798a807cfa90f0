// attendChunks(source, options?): OperatorFunction<ChunkToken, AttendedChunk>, one output per chunk.
import type { OperatorFunction } from 'rxjs';
import { operate } from './operate.js';
import type { AttendOptions, AttendSource, AttendedChunk, ChunkToken } from './types.js';

/**
 * Attend a stream of chunks (q, k: [heads, L, keyDim]; v: [heads, L, valueDim]) through decoder.chunk:
 * the fastest path when the producer already has blocks of tokens (e.g. a document reader). Each output has
 * the position of the chunk's first token and z: [heads, L, valueDim]. Checkpoints are taken at the first
 * chunk boundary at or past each multiple of `every`. A refused chunk errors the stream with the typed
 * error and leaves the decoder as it was before that chunk.
 */
export function attendChunks(source: AttendSource, options?: Omit<AttendOptions, 'group'>): OperatorFunction<ChunkToken, AttendedChunk> {
  return operate<ChunkToken, AttendedChunk>(source, options === undefined ? undefined : { ...options, group: undefined }, ({ core, emit }) => ({
    next: (c) => {
      core.chunk(c, emit);
      core.checkpoints.ifDue();
    },
  }));
}
