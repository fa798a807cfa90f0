// toeplitz-attention/model: toeplitz-lm, a byte-level language model built on this library's attention
// (DESIGN section 9), run in TypeScript. Browser-safe: Node file helpers are in ./file.ts (loadModelFile).
export { loadModel, createModel, checkModelOptions, Model, type ModelOptions } from './model.js';
// the WASM ready step (needed only where a runtime refuses a synchronous compile; see initWasm)
export { initWasm, wasmSupported, wasmStatus, type WasmStatus } from '../backend/wasm.js';
export { Session, type SessionOptions, type FeedOptions, type GenerateOptions, type GeneratedToken, type RestoreOptions } from './session.js';
export { checkSamplerOptions, type SamplerOptions, type ResolvedSampler } from './sampler.js';
export { checkModelConfig, tensorTable, MODEL_FORMAT, MODEL_FORMAT_V2, type ModelFormat, type ModelConfig, type ModelConfigInput, type TensorSpec } from './config.js';
export { encodeModel, randomWeights, modelFingerprint, type ModelWeights, type LayerWeights, type EncodeModelOptions } from './weights.js';
export { parseSafetensors, readTensor, encodeSafetensors, MAX_HEADER_BYTES, type DType, type TensorEntry, type TensorInput, type SafetensorsFile } from './safetensors.js';
export { evaluate, POSITION_BUCKETS, type Evaluation, type EvaluateOptions, type BucketResult } from './evaluate.js';
export { SESSION_MAGIC, SESSION_FORMAT_VERSION, SESSION_READABLE_VERSIONS } from './snapshot.js';
export { DEFAULT_MAX_STATE_BYTES, sessionStateBytes } from './memory.js';
export { ModelError, type ModelErrorCode } from '../core/errors.js';
