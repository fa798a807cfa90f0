// The weights of a toeplitz-lm model as plain float64 arrays (llama2.c's TransformerWeights), read from and
// written to safetensors, plus a seeded random initialization for tests and demos, and the fingerprint
// that ties a session snapshot to its model.
import { describe, ModelError } from '../core/errors.js';
import { Rng } from '../math/rng.js';
import { drawProjection } from '../index.js';
import { checkModelConfig, tensorTable, type ModelConfig } from './config.js';
import { FLOAT32_MAX, encodeSafetensors, readTensor, type DType, type SafetensorsFile } from './safetensors.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** One transformer block. Linear weights are [out, in] row-major. */
export interface LayerWeights {
  attentionNorm: Float64Array; // [dim]
  wq: Float64Array; // [heads * keyDim, dim]
  wk: Float64Array; // [heads * keyDim, dim]
  wv: Float64Array; // [heads * valueDim, dim]
  wo: Float64Array; // [dim, heads * valueDim]
  projection: Float64Array; // [count, keyDim]  the PRF matrix W, shared by the layer's heads
  rpeBias: Float64Array; // [heads, rpe.length]  b(0..K-1) per head
  /** [heads]  r_h >= 0 of the decay tail (toeplitz-lm/2 only; absent with the clip tail) */
  rpeDecay?: Float64Array;
  ffnNorm: Float64Array; // [dim]
  w1: Float64Array; // [hidden, dim]
  w2: Float64Array; // [dim, hidden]
  w3: Float64Array; // [hidden, dim]
}

export interface ModelWeights {
  tokEmbeddings: Float64Array; // [vocab, dim]
  layers: LayerWeights[];
  norm: Float64Array; // [dim]
  /** [vocab, dim]; the same array as tokEmbeddings when the config ties them */
  output: Float64Array;
}

type LayerField = Exclude<keyof LayerWeights, 'rpeDecay'>;

const LAYER_FIELDS: readonly (readonly [string, LayerField])[] = [
  ['attention_norm.weight', 'attentionNorm'],
  ['attention.wq.weight', 'wq'],
  ['attention.wk.weight', 'wk'],
  ['attention.wv.weight', 'wv'],
  ['attention.wo.weight', 'wo'],
  ['attention.projection', 'projection'],
  ['attention.rpe_bias', 'rpeBias'],
  ['ffn_norm.weight', 'ffnNorm'],
  ['feed_forward.w1.weight', 'w1'],
  ['feed_forward.w2.weight', 'w2'],
  ['feed_forward.w3.weight', 'w3'],
];

/** The layer fields of a config in tensorTable order (rpeDecay after rpeBias in a toeplitz-lm/2 model). */
function layerFields(config: ModelConfig): readonly (keyof LayerWeights)[] {
  const fields: (keyof LayerWeights)[] = LAYER_FIELDS.map(([, f]) => f);
  if (config.rpe.tail === 'decay') fields.splice(fields.indexOf('rpeBias') + 1, 0, 'rpeDecay');
  return fields;
}

/** The arrays of `w` in tensorTable order (output left out when tied). */
export function weightArrays(config: ModelConfig, w: ModelWeights): Float64Array[] {
  const out = [w.tokEmbeddings];
  const fields = layerFields(config);
  for (const layer of w.layers) for (const field of fields) out.push(layer[field]!);
  out.push(w.norm);
  if (!config.tiedEmbedding) out.push(w.output);
  return out;
}

function fromArrays(config: ModelConfig, arrays: Float64Array[]): ModelWeights {
  let i = 0;
  const next = (): Float64Array => arrays[i++]!;
  const tokEmbeddings = next();
  const layers: LayerWeights[] = [];
  const fields = layerFields(config);
  for (let l = 0; l < config.layers; l++) {
    const layer = {} as LayerWeights;
    for (const field of fields) layer[field] = next();
    layers.push(layer);
  }
  const norm = next();
  const output = config.tiedEmbedding ? tokEmbeddings : next();
  return { tokEmbeddings, layers, norm, output };
}

/** Check a parsed file's tensors against the config (names, dtypes, shapes), then read them as float64. */
export function readWeights(file: SafetensorsFile, config: ModelConfig): ModelWeights {
  const table = tensorTable(config);
  const expected = new Set(table.map((t) => t.name));
  const missing = table.filter((t) => !file.byName.has(t.name)).map((t) => t.name);
  if (missing.length > 0) {
    throw new ModelError('tensor', `the config (${config.layers} layers, tiedEmbedding ${config.tiedEmbedding}) needs ${table.length} tensors; missing ${missing.length}: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}`);
  }
  const extra = file.tensors.filter((t) => !expected.has(t.name)).map((t) => t.name);
  if (extra.length > 0) {
    throw new ModelError('tensor', `the config (${config.layers} layers, tiedEmbedding ${config.tiedEmbedding}) has no tensor named ${extra.slice(0, 4).map((n) => `"${n}"`).join(', ')}${extra.length > 4 ? ', ...' : ''}`);
  }
  for (const spec of table) {
    const entry = file.byName.get(spec.name)!;
    if (entry.shape.length !== spec.shape.length || entry.shape.some((s, a) => s !== spec.shape[a])) {
      throw new ModelError('tensor', `tensor "${spec.name}" must have shape [${spec.shape.join(', ')}] for this config, got [${entry.shape.join(', ')}]`);
    }
  }
  // the float32 range (the trainer's dtype) even in F64 files: larger weights overflow a forward pass
  const weights = fromArrays(config, table.map((spec) => readTensor(file, file.byName.get(spec.name)!, FLOAT32_MAX)));
  checkDecayRates(config, weights);
  return weights;
}

/** toeplitz-lm/2: every r_h finite and >= 0 (a negative rate would make the tail grow without bound). */
function checkDecayRates(config: ModelConfig, w: ModelWeights): void {
  if (config.rpe.tail !== 'decay') return;
  w.layers.forEach((layer, l) => {
    const r = layer.rpeDecay!;
    for (let h = 0; h < r.length; h++) {
      if (!(Number.isFinite(r[h]!) && r[h]! >= 0)) throw new ModelError('tensor', `tensor "layers.${l}.attention.rpe_decay" must hold decay rates r >= 0 (finite), got ${describe(r[h])} for head ${h}`);
    }
  });
}

/** Check in-memory weights against the config: every array present with the right length and finite. */
export function checkWeights(config: ModelConfig, w: ModelWeights): void {
  if (w === null || typeof w !== 'object' || !Array.isArray(w.layers) || w.layers.length !== config.layers) {
    throw new ModelError('tensor', `weights must be { tokEmbeddings, layers: [${config.layers}], norm, output? }, got ${describe(w)}`);
  }
  const table = tensorTable(config);
  const arrays = weightArrays(config, w);
  table.forEach((spec, i) => {
    const a = arrays[i];
    const size = spec.shape.reduce((x, y) => x * y, 1);
    if (!(a instanceof Float64Array) || a.length !== size) {
      throw new ModelError('tensor', `weight "${spec.name}" must be a Float64Array of [${spec.shape.join(', ')}] = ${size} values, got ${describe(a)}`);
    }
    for (let j = 0; j < a.length; j++) {
      if (!Number.isFinite(a[j]!)) throw new ModelError('tensor', `weight "${spec.name}" must hold finite values, got ${describe(a[j])} at flat index ${j}`);
      if (Math.abs(a[j]!) > FLOAT32_MAX) throw new ModelError('tensor', `weight "${spec.name}" must hold values in the float32 range (|x| <= ${FLOAT32_MAX}), got ${a[j]} at flat index ${j}`);
    }
  });
  if (config.rpe.tail !== 'decay') {
    const l = w.layers.findIndex((layer) => layer.rpeDecay !== undefined);
    if (l >= 0) throw new ModelError('tensor', `layer ${l} has rpeDecay, but the config's rpe.tail is "${config.rpe.tail}" (format ${config.format}); decay rates need rpe.tail "decay" (toeplitz-lm/2)`);
  }
  checkDecayRates(config, w);
}

/** Options of encodeModel. */
export interface EncodeModelOptions {
  /** storage dtype (default 'F32', as the trainer exports; F64 keeps float64 weights exact) */
  dtype?: DType;
  /** informational keys added to __metadata__.config (corpus, steps, losses, ...) */
  info?: Record<string, unknown>;
}

/** A toeplitz-lm safetensors file of `weights` (the inverse of loadModel). */
export function encodeModel(config: ModelConfig, weights: ModelWeights, options: EncodeModelOptions = {}): Uint8Array {
  const cfg = checkModelConfig(config);
  checkWeights(cfg, weights);
  const dtype = options.dtype ?? 'F32';
  const arrays = weightArrays(cfg, weights);
  const tensors = tensorTable(cfg).map((spec, i) => ({ name: spec.name, shape: spec.shape, data: arrays[i]!, dtype }));
  return encodeSafetensors(tensors, { config: JSON.stringify({ ...options.info, ...cfg }) });
}

/**
 * Seeded random weights (embeddings N(0, 1), linear layers N(0, 1/in), unit norms
 * but the final one, the library's seeded orthogonal W per layer, decreasing RPE tables, decay rates in
 * [1/1024, 1/4] for a toeplitz-lm/2 config). Not a
 * language model: for tests, benchmarks and demos before a trained file exists.
 */
export function randomWeights(config: ModelConfig, seed = 1): ModelWeights {
  const cfg = checkModelConfig(config);
  const rng = new Rng(seed);
  const gauss = (n: number, std: number): Float64Array => {
    const a = new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.nextGaussian() * std;
    return a;
  };
  const ones = (n: number): Float64Array => new Float64Array(n).fill(1);
  const { vocab, dim, heads, keyDim, valueDim, hidden } = cfg;
  const K = cfg.rpe.length;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    const rpeBias = new Float64Array(heads * K);
    for (let h = 0; h < heads; h++) {
      const rate = 0.2 + 0.8 * rng.nextFloat64();
      for (let t = 0; t < K; t++) rpeBias[h * K + t] = -rate * Math.log1p(t);
    }
    // toeplitz-lm/2: r_h log-uniform in [1/1024, 1/4] (drawn only then: v1 weights are as before)
    const rpeDecay = cfg.rpe.tail === 'decay' ? Float64Array.from({ length: heads }, () => Math.exp(Math.log(1 / 1024) + Math.log(256) * rng.nextFloat64())) : undefined;
    layers.push({
      attentionNorm: ones(dim),
      wq: gauss(heads * keyDim * dim, 1 / Math.sqrt(dim)),
      wk: gauss(heads * keyDim * dim, 1 / Math.sqrt(dim)),
      wv: gauss(heads * valueDim * dim, 1 / Math.sqrt(dim)),
      wo: gauss(dim * heads * valueDim, 1 / Math.sqrt(heads * valueDim)),
      projection: drawProjection(cfg.features.count, keyDim, seed * 1000 + l),
      rpeBias,
      ...(rpeDecay ? { rpeDecay } : {}),
      ffnNorm: ones(dim),
      w1: gauss(hidden * dim, 1 / Math.sqrt(dim)),
      w2: gauss(dim * hidden, 1 / Math.sqrt(hidden)),
      w3: gauss(hidden * dim, 1 / Math.sqrt(dim)),
    });
  }
  const tokEmbeddings = gauss(vocab * dim, 1);
  // final norm 1/sqrt(dim): logits of order 1 (a near-uniform, not a wildly peaked, random model)
  return { tokEmbeddings, layers, norm: new Float64Array(dim).fill(1 / Math.sqrt(dim)), output: cfg.tiedEmbedding ? tokEmbeddings : gauss(vocab * dim, 1 / Math.sqrt(dim)) };
}

/**
 * SHA-256 over the config (contract keys, JSON) and every weight as float64 little-endian bytes in
 * tensorTable order: the same values give the same fingerprint whatever the file's dtype or metadata.
 */
export function modelFingerprint(config: ModelConfig, weights: ModelWeights): Uint8Array {
  const hash = sha256.create().update(new TextEncoder().encode(JSON.stringify(config)));
  const little = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
  const scratch = new DataView(new ArrayBuffer(8 * 1024));
  const scratchBytes = new Uint8Array(scratch.buffer);
  for (const a of weightArrays(config, weights)) {
    if (little) {
      hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      continue;
    }
    for (let i = 0; i < a.length; i += 1024) {
      const n = Math.min(1024, a.length - i);
      for (let j = 0; j < n; j++) scratch.setFloat64(8 * j, a[i + j]!, true);
      hash.update(scratchBytes.subarray(0, 8 * n));
    }
  }
  return hash.digest();
}
