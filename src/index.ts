// toeplitz-attention: kernelized attention with relative positional encoding, exact and fast.
export { attention, referenceAttention, type AttentionOptions } from './engine/attention';
export { resolveConfig, type AttentionConfig, type FeatureSpec, type RpeSpec, type RpeSide, type Tail, type Normalize, type ResolvedConfig } from './engine/config';
export { ToeplitzAttentionError, ConfigError, ShapeError, StateError, SnapshotError, type SnapshotErrorCode } from './engine/errors';
export type { Tensor, FloatArray } from './engine/tensor';
export type { MethodOption, PassStats } from './engine/nearfield';
export { drawProjection } from './math/projection';
export { Decoder, type DecoderOptions, type DecoderState, type HeadState } from './engine/decoder';
export { rpe, t5Bucket, alibiSlopes, type T5BucketOptions, type T5Options } from './engine/rpe';
export { Rng, createRng } from './math/rng';
