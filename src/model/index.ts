// toeplitz-attention/model: toeplitz-lm, a byte-level language model built on this library's attention
// (DESIGN section 9), run in TypeScript. Browser-safe: Node file helpers are in ./file.ts (loadModelFile).
export { loadModel, createModel, Model, type ModelOptions } from './model.js';
export { Session, type SessionOptions, type FeedOptions, type GenerateOptions, type GeneratedToken } from './session.js';
export { checkSamplerOptions, type SamplerOptions, type ResolvedSampler } from './sampler.js';
export { checkModelConfig, tensorTable, MODEL_FORMAT, MODEL_FORMAT_V2, type ModelFormat, type ModelConfig, type ModelConfigInput, type TensorSpec } from './config.js';
export { encodeModel, randomWeights, modelFingerprint, type ModelWeights, type LayerWeights, type EncodeModelOptions } from './weights.js';
export { parseSafetensors, readTensor, encodeSafetensors, MAX_HEADER_BYTES, type Dtype, type TensorEntry, type TensorInput, type SafetensorsFile } from './safetensors.js';
export { evaluate, POSITION_BUCKETS, type Evaluation, type EvaluateOptions, type BucketResult } from './evaluate.js';
export { SESSION_MAGIC, SESSION_FORMAT_VERSION } from './snapshot.js';
export { ModelError, type ModelErrorCode } from './errors.js';
