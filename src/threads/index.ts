// toeplitz-attention/threads (Node only): a pool of worker threads that splits the heads of attention() and
// Decoder.chunk over the machine's cores, with results equal to the single-threaded calls bit for bit.
export { AttentionPool, createPool, type ChunkResult, type PoolOptions } from './pool.js';
