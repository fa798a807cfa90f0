// toeplitz-lm in TypeScript: load a safetensors file, compute logits of a whole sequence with attention(),
// open generation sessions (one Decoder per layer) and restore them from snapshots.
import ndarray from 'ndarray';
import { attention, ShapeError, type AttentionConfig, type AttentionOptions } from '../index.js';
import { describe } from '../core/errors.js';
import { ModelError } from './errors.js';
import { checkTokens } from './tokens.js';

export { checkTokens };
import { checkModelConfig, informational, type ModelConfig } from './config.js';
import { parseSafetensors } from './safetensors.js';
import { checkWeights, modelFingerprint, readWeights, type ModelWeights } from './weights.js';
import { GEMM_ROWS, createRunState, forward, headsToRows, type AttendFn, type GemmFn } from './forward.js';
import { checkBackendOption, createWorkspace, resolveBackend, type BackendName } from '../backend/index.js';
import { weightArrays } from './weights.js';
import { Session, restoreSession, type SessionOptions } from './session.js';

/** How attention runs (passed to attention() and every Decoder). */
export interface ModelOptions {
  /** near-field method: 'auto' (cost model, default), 'fft' or 'direct' */
  method?: 'auto' | 'fft' | 'direct';
  /** kernels: 'auto' (WASM SIMD where supported, default), 'js' or 'wasm' */
  backend?: 'auto' | 'js' | 'wasm';
}

export class Model {
  readonly config: ModelConfig;
  /** informational keys of the file's config (corpus, steps, losses, ...) */
  readonly info: Readonly<Record<string, unknown>>;
  readonly weights: ModelWeights;
  /** per layer: the attention config of DESIGN section 9 (causal, PRF with the layer's W, RPE per head: clip tail, or decay in v2) */
  readonly attentionConfigs: readonly AttentionConfig[];
  readonly options: Readonly<ModelOptions>;
  /** the backend the model's matrix products run on ('wasm': weights resident in its memory) */
  readonly backend: BackendName;
  /** the GEMM of the model's workspace, shared by model.logits and every session (calls are synchronous) */
  readonly gemm: GemmFn;
  private fingerprintCache: Uint8Array | null = null;

  constructor(config: ModelConfig, weights: ModelWeights, info: Record<string, unknown> = {}, options: ModelOptions = {}) {
    this.config = config;
    this.info = Object.freeze({ ...info });
    this.options = Object.freeze({ ...options });
    this.backend = resolveBackend(checkBackendOption(options.backend));
    if (this.backend === 'wasm') {
      // weights move into the workspace's memory, so the WASM GEMM reads them in place; activations outside
      // it are staged per call (GEMM_ROWS rows at most, hence the scratch below)
      const arrays = weightArrays(config, weights);
      const widest = Math.max(config.hidden, config.vocab, config.heads * config.keyDim, config.heads * config.valueDim);
      const capacity = arrays.reduce((sum, a) => sum + a.length + 7, 0) + 2 * GEMM_ROWS * (config.dim + widest) + 1024;
      const ws = createWorkspace('wasm', capacity);
      const resident = new Map<Float64Array, Float64Array>();
      const move = (a: Float64Array): Float64Array => {
        let r = resident.get(a);
        if (r === undefined) {
          r = ws.f64(a.length);
          r.set(a);
          resident.set(a, r);
        }
        return r;
      };
      weights = {
        tokEmbeddings: move(weights.tokEmbeddings),
        layers: weights.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, a]) => [k, move(a)])) as unknown as typeof l),
        norm: move(weights.norm),
        output: move(weights.output), // tied: the same resident array as tokEmbeddings
      };
      this.gemm = (g) => ws.gemm(g);
    } else {
      const ws = createWorkspace('js', 0);
      this.gemm = (g) => ws.gemm(g);
    }
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

  /** Logits [n, vocab] row-major of a whole sequence (causal), computed with attention(). */
  logits(tokens: ArrayLike<number>): Float64Array {
    const c = this.config;
    checkTokens(tokens, c.vocab);
    const n = tokens.length;
    const logits = new Float64Array(n * c.vocab);
    if (n === 0) return logits;
    const s = createRunState(c, n, this.gemm);
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
    forward(c, this.weights, tokens, 0, n, s, attend, logits, 0, false);
    return logits;
  }

  /** A generation session (one Decoder per layer), sampling with the given options. */
  session(options?: SessionOptions): Session {
    return new Session(this, options);
  }

  /** A session from session.snapshot() bytes, continuing exactly; refuses another model's snapshot. */
  restore(bytes: Uint8Array): Session {
    return restoreSession(this, bytes);
  }
}

/** A model from toeplitz-lm safetensors bytes (DESIGN section 9); bad bytes -> ModelError. */
export function loadModel(bytes: Uint8Array, options: ModelOptions = {}): Model {
  const file = parseSafetensors(bytes);
  const text = file.metadata.config;
  if (text === undefined) throw new ModelError('config', `__metadata__.config must hold the model config (JSON), got ${Object.keys(file.metadata).length === 0 ? 'no __metadata__' : `only keys [${Object.keys(file.metadata).join(', ')}]`}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ModelError('config', `__metadata__.config must be JSON, got a parse error: ${(e as Error).message}`);
  }
  const config = checkModelConfig(parsed);
  const weights = readWeights(file, config);
  return new Model(config, weights, informational(parsed as Record<string, unknown>), options);
}

/** A model from a config and in-memory weights (e.g. randomWeights, or weights converted from elsewhere). */
export function createModel(config: ModelConfig | Omit<ModelConfig, 'format'>, weights: ModelWeights, options: ModelOptions = {}): Model {
  const cfg = checkModelConfig(config);
  checkWeights(cfg, weights);
  return new Model(cfg, weights, {}, options);
}
