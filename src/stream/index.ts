// toeplitz-attention/rx: attention as RxJS operators over token and chunk streams, with grouping,
// checkpoints (resume continues exactly), clean failure, and a pull-based async-iterable path.
// This folder is the only part of the library that imports rxjs.
//
// Which to use:
// - attend(source, options?)            single tokens pushed to you (RxJS); options.group batches them.
// - attendGrouped(source, { group })    the same with grouping explicit.
// - attendChunks(source, options?)      blocks of tokens [heads, L, dim] (highest throughput).
// - attendAsync(source, tokens, opts?)  tokens you pull (AsyncIterable): natural backpressure.
export { attend, type AttendStreamOptions } from './attend.js';
export { attendGrouped, type AttendGroupedOptions } from './attendGrouped.js';
export { attendChunks } from './attendChunks.js';
export { attendAsync } from './attendAsync.js';
// checkpoint files written by a path sink are read back with loadSnapshot from toeplitz-attention/codec
export type { Token, Attended, ChunkToken, AttendedChunk, AttendSource, AttendOptions, CheckpointOptions, CheckpointSinkFn, GroupOptions } from './types.js';
export { fromGeneration, generateEach, type GeneratingSession, type GenerationOptions } from './generate.js';
