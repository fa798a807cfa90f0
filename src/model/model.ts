// toeplitz-lm in TypeScript: load a safetensors file, compute logits of a whole sequence with attention(),
// open generation sessions (one Decoder per layer) and restore them from snapshots.
import ndarray from 'ndarray';
import { attention, ShapeError, type AttentionConfig, type AttentionOptions } from '../index.js';
import { describe, ModelError, ConfigError } from '../core/errors.js';
import { checkTokens, copyTokens } from './tokens.js';

export { checkTokens };
import { checkModelConfig, informational, type ModelConfig } from './config.js';
import { parseSafetensors, someNames } from './safetensors.js';
import { checkWeights, modelFingerprint, readWeights, type ModelWeights } from './weights.js';
import { createRunState, forward, headsToRows, linearWorkspaceEntries, packedLinears, type AttendFn, type GemmFn, type RunState } from './forward.js';
import { DEFAULT_MAX_STATE_BYTES, blockRows, checkModelMemory, chunkRows } from './memory.js';
import { checkArenaOption, checkBackendOption, createWorkspace, resolveBackend, type Arena, type BackendName } from '../backend/index.js';
import { checkMethodOption } from '../engine/nearfield.js';
import type { DType } from '../engine/dtype.js';
import { Session, restoreSession, type RestoreOptions, type SessionOptions } from './session.js';

/** How attention runs (passed to attention() and every Decoder). */
export interface ModelOptions {
  /** near-field method: 'auto' (cost model, default), 'fft' or 'direct' */
  method?: 'auto' | 'fft' | 'direct';
  /** kernels: 'auto' (WASM SIMD where supported, default), 'js' or 'wasm' */
  backend?: 'auto' | 'js' | 'wasm';
  /** largest decoder state one session may need, in bytes (default 1 GiB): larger configs are refused at load */
  maxStateBytes?: number;
  /** an arena (createArena) the decoders of the model's sessions take their state from (the model runs on its backend) */
  arena?: Arena;
}

/** Validate model options (the one place): a ConfigError names the bad field. */
export function checkModelOptions(options: unknown): ModelOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw new ConfigError(`model options must be an object { method?, backend?, maxStateBytes?, arena? }, got ${describe(options)}`);
  const o = options as ModelOptions;
  if (o.method !== undefined && o.method !== 'auto' && o.method !== 'fft' && o.method !== 'direct') throw new ConfigError(`options.method must be 'auto', 'fft' or 'direct', got ${describe(o.method)}`);
  checkBackendOption(o.backend);
  checkArenaOption(o.arena, o.backend);
  if (o.maxStateBytes !== undefined && (typeof o.maxStateBytes !== 'number' || !(o.maxStateBytes > 0))) throw new ConfigError(`options.maxStateBytes must be a number > 0, got ${describe(o.maxStateBytes)}`);
  return o;
}

export class Model {
  readonly config: ModelConfig;
  /** informational keys of the file's config (corpus, steps, losses, ...) */
  readonly info: Readonly<Record<string, unknown>>;
  readonly weights: ModelWeights;
  /** per layer: the attention config of DESIGN section 9 (causal, PRF with the layer's W, RPE per head: clip tail, or decay in v2) */
  readonly attentionConfigs: readonly AttentionConfig[];
  readonly options: Readonly<ModelOptions>;
  /** the backend the model's matrix products run on ('wasm': packed weights resident in its memory) */
  readonly backend: BackendName;
  /** the GEMM of the model's workspace, shared by model.logits and every session (calls are synchronous) */
  readonly gemm: GemmFn;
  /** rows per GEMM call and FFN block (memory.ts) */
  private readonly blockRows: number;
  private fingerprintCache: Uint8Array | null = null;

  constructor(config: ModelConfig, weights: ModelWeights, info: Record<string, unknown> = {}, options: ModelOptions = {}) {
    options = checkModelOptions(options);
    checkModelMemory(config, options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES);
    this.config = config;
    this.info = Object.freeze({ ...info });
    this.options = Object.freeze({ ...options });
    checkMethodOption(options.method); // refused now, not at the first logits or session
    this.blockRows = blockRows(config);
    this.backend = options.arena?.backend ?? resolveBackend(checkBackendOption(options.backend));
    // every linear layer's W is packed once into the model's workspace (WASM: resident in its memory, sized for
    // exactly that plus the copies of one product's activations); the weights themselves stay as given
    // (float32 panels for weights that are exactly float32 on WASM: the same bits from half the bytes per token)
    const wasm = this.backend === 'wasm';
    const ws = createWorkspace(this.backend, wasm ? linearWorkspaceEntries(config, weights, this.blockRows, wasm) : 0);
    this.gemm = packedLinears(config, weights, ws, wasm);
    this.weights = weights;
    const { heads, keyDim, valueDim } = config;
    const K = config.rpe.length;
    this.attentionConfigs = weights.layers.map((layer) => ({
      heads,
      keyDim,
      valueDim,
      causal: true,
      features: { kind: 'prf', count: config.features.count, projection: layer.projection, normalize: 'l2' },
      // v1: the clip tail; v2: head h's decay tail { decay: r_h } (the same bounded decoder state)
      rpe: Array.from({ length: heads }, (_, h) => ({ past: { bias: layer.rpeBias.subarray(h * K, (h + 1) * K), tail: config.rpe.tail === 'decay' ? { decay: layer.rpeDecay![h]! } : ('clip' as const) } })),
    }));
  }

  /** SHA-256 of the config and weights (values, not file bytes): what ties a session snapshot to this model. */
  get fingerprint(): Uint8Array {
    this.fingerprintCache ??= modelFingerprint(this.config, this.weights);
    return this.fingerprintCache.slice();
  }

  /** @internal working memory of a forward pass over up to `rows` tokens (sessions and logits). */
  runState(rows: number, dtype: DType = 'float64'): RunState {
    return createRunState(this.config, rows, dtype === 'float32' ? (this.gemm.float32 ?? this.gemm) : this.gemm, this.blockRows);
  }

  /** @internal the rows a feed chunk of `requested` tokens runs with (lowered to bound working memory). */
  chunkRows(requested: number): number {
    return chunkRows(this.config, requested);
  }

  /**
   * Logits [n, vocab] row-major of a whole sequence (causal), computed with attention(). A forward pass
   * that overflows float64 (weights too large for this input) is a ModelError 'overflow', never
   * non-finite logits.
   */
  logits(tokens: ArrayLike<number>): Float64Array {
    const c = this.config;
    tokens = copyTokens(tokens, c.vocab);
    const n = tokens.length;
    const logits = new Float64Array(n * c.vocab);
    if (n === 0) return logits;
    const s = this.runState(n);
    const { heads, keyDim: d, valueDim: dv } = c;
    const engine = this.options as AttentionOptions;
    const attend: AttendFn = (l, rows, st) => {
      // rows [n, heads*dim] viewed as [heads, n, dim] through strides: no copy
      const q = ndarray(st.q, [heads, rows, d], [d, heads * d, 1]);
      const k = ndarray(st.k, [heads, rows, d], [d, heads * d, 1]);
      const v = ndarray(st.v, [heads, rows, dv], [dv, heads * dv, 1]);
      const z = attention(this.attentionConfigs[l]!, q, k, v, engine);
      headsToRows(z.data, z.offset, st.z, heads, rows, dv);
    };
    try {
      forward(c, this.weights, tokens, 0, n, s, attend, logits, 0, false);
    } catch (e) {
      if (e instanceof ShapeError) throw new ModelError('overflow', `the forward pass overflowed float64 (${e.message})`);
      throw e;
    }
    for (let i = 0; i < logits.length; i++) {
      if (!Number.isFinite(logits[i]!)) throw new ModelError('overflow', `the forward pass overflowed float64: logit ${i % c.vocab} of token ${Math.floor(i / c.vocab)} is ${describe(logits[i])}`);
    }
    return logits;
  }

  /**
   * A generation session (one Decoder per layer), sampling with the given options; `dtype: 'float32'` for a float32
   * session (float32 decoders and, on WASM, float32 one-row products: SessionOptions), default 'float64'.
   */
  session(options?: SessionOptions): Session {
    return new Session(this, options);
  }

  /**
   * A session from session.snapshot() bytes, continuing exactly; refuses another model's snapshot, and
   * (unless options.backend is 'model') one made on another backend than this model's (ModelError 'backend').
   */
  restore(bytes: Uint8Array, options?: RestoreOptions): Session {
    return restoreSession(this, bytes, options);
  }
}

/** A model from toeplitz-lm safetensors bytes (DESIGN section 9); bad bytes -> ModelError. */
export function loadModel(bytes: Uint8Array, options?: ModelOptions): Model {
  options = checkModelOptions(options);
  const file = parseSafetensors(bytes);
  const text = file.metadata.config;
  if (text === undefined) throw new ModelError('config', `__metadata__.config must hold the model config (JSON), got ${Object.keys(file.metadata).length === 0 ? 'no __metadata__' : `only keys [${someNames(Object.keys(file.metadata))}]`}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ModelError('config', `__metadata__.config must be JSON, got a parse error: ${(e as Error).message.slice(0, 200)}`);
  }
  const config = checkModelConfig(parsed);
  checkModelMemory(config, options.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES); // before any tensor is read
  const weights = readWeights(file, config);
  return new Model(config, weights, informational(parsed as Record<string, unknown>), options);
}

/** A model from a config and in-memory weights (e.g. randomWeights, or weights converted from elsewhere). */
export function createModel(config: ModelConfig | Omit<ModelConfig, 'format'>, weights: ModelWeights, options?: ModelOptions): Model {
  options = checkModelOptions(options);
  const cfg = checkModelConfig(config);
  checkWeights(cfg, weights);
  return new Model(cfg, weights, {}, options);
}
