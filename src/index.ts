// toeplitz-attention: kernelized attention with relative positional encoding, exact and fast.
export { attention, referenceAttention, type AttentionOptions, type AttentionResult, type DType } from './engine/attention.js';
export { resolveConfig, type AttentionConfig, type FeatureSpec, type RpeSpec, type RpeSide, type Tail, type Normalize, type ResolvedConfig } from './engine/config.js';
export { ToeplitzAttentionError, ConfigError, ShapeError, StateError, SnapshotError, ResourceError, type SnapshotErrorCode, type ResourceKind } from './core/errors.js';
export type { Tensor, FloatArray } from './engine/tensor.js';
export type { MethodOption, PassStats } from './engine/nearfield.js';
export { drawProjection } from './math/projection.js';
export { DecoderCore, type DecoderOptions, type DecoderState, type HeadState } from './engine/decoder.js';
export { Decoder } from './codec/decoder.js';
export { rpe, t5Bucket, alibiSlopes, type T5BucketOptions, type T5Options } from './engine/rpe.js';
export { Rng, createRng } from './math/rng.js';
export { initWasm, wasmSupported, wasmStatus, type WasmStatus } from './backend/wasm.js';
export type { BackendName, BackendOption } from './backend/types.js';
export { createArena, Arena, type ArenaOptions } from './backend/index.js';
