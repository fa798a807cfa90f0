// toeplitz-lm/2 (per-head decay tails): config and tensor validation, the forward pass against the formulas
// read literally, a decay rate of 0 equal to the clip tail, sessions and snapshots, and the bounded state.
import { describe, expect, it } from 'vitest';
import { ModelError, checkModelConfig, createModel, encodeModel, loadModel, parseSafetensors, randomWeights, tensorTable, type ModelWeights } from '../../src/model/index.js';
import { encodeSafetensors } from '../../src/model/safetensors.js';
import { bytesOf, maxRowRelError, referenceLogits, tinyConfig, tinyModel } from './tiny.js';

const v2 = tinyConfig({ rpe: { length: 8, tail: 'decay' } });

/** Weights of `cfg` with every layer's decay rates replaced by `rates(l)` [heads]. */
function withRates(w: ModelWeights, rates: (l: number) => number[]): ModelWeights {
  return { ...w, layers: w.layers.map((layer, l) => ({ ...layer, rpeDecay: Float64Array.from(rates(l)) })) };
}

/** A v2 file whose rpe_decay tensors hold `rates` (F64, so the values arrive exactly). */
function fileWithRates(rates: number[]): Uint8Array {
  const w = randomWeights(v2, 3);
  const arrays = tensorTable(v2).map((spec) => {
    const l = /^layers\.(\d+)\./.exec(spec.name);
    if (spec.name.endsWith('attention.rpe_decay')) return Float64Array.from(rates);
    const layer = l ? w.layers[Number(l[1])]! : null;
    const field: Record<string, Float64Array> = layer
      ? { 'attention_norm.weight': layer.attentionNorm, 'attention.wq.weight': layer.wq, 'attention.wk.weight': layer.wk, 'attention.wv.weight': layer.wv, 'attention.wo.weight': layer.wo, 'attention.projection': layer.projection, 'attention.rpe_bias': layer.rpeBias, 'ffn_norm.weight': layer.ffnNorm, 'feed_forward.w1.weight': layer.w1, 'feed_forward.w2.weight': layer.w2, 'feed_forward.w3.weight': layer.w3 }
      : { 'tok_embeddings.weight': w.tokEmbeddings, 'norm.weight': w.norm };
    return field[l ? spec.name.slice(l[0].length) : spec.name]!;
  });
  return encodeSafetensors(tensorTable(v2).map((spec, i) => ({ name: spec.name, shape: spec.shape, data: arrays[i]!, dtype: 'F64' as const })), { config: JSON.stringify(v2) });
}

describe('toeplitz-lm/2 config', () => {
  it("rpe.tail 'decay' is format toeplitz-lm/2 (implied when the format is left out) and adds rpe_decay [heads] after each rpe_bias", () => {
    expect(v2.format).toBe('toeplitz-lm/2');
    expect(v2.rpe).toEqual({ length: 8, tail: 'decay' });
    const names = tensorTable(v2).map((t) => t.name);
    expect(names.indexOf('layers.1.attention.rpe_decay')).toBe(names.indexOf('layers.1.attention.rpe_bias') + 1);
    expect(tensorTable(v2).find((t) => t.name === 'layers.0.attention.rpe_decay')!.shape).toEqual([2]);
    expect(tensorTable(tinyConfig()).some((t) => t.name.endsWith('rpe_decay'))).toBe(false);
  });

  it('refuses a format and tail that disagree', () => {
    expect(() => checkModelConfig({ ...v2, format: 'toeplitz-lm/1' })).toThrow(/^config: config.rpe.tail must be "clip", got "decay"/);
    expect(() => checkModelConfig({ ...tinyConfig(), format: 'toeplitz-lm/2' })).toThrow(/^config: config.rpe.tail must be "decay" in a toeplitz-lm\/2 file, got "clip"/);
    expect(() => checkModelConfig({ ...v2, format: 'toeplitz-lm/3' })).toThrow(/config.format must be "toeplitz-lm\/1" or "toeplitz-lm\/2", got "toeplitz-lm\/3"/);
  });
});

describe('toeplitz-lm/2 weights', () => {
  it('encodeModel / loadModel round trip (F64 exact, F32 widened), randomWeights draws rates in [1/1024, 1/4]', () => {
    const w = randomWeights(v2, 4);
    for (const layer of w.layers) for (const r of layer.rpeDecay!) expect(r >= 1 / 1024 && r <= 1 / 4).toBe(true);
    const m = loadModel(encodeModel(v2, w, { dtype: 'F64' }));
    expect(m.config.format).toBe('toeplitz-lm/2');
    expect(Array.from(m.weights.layers[1]!.rpeDecay!)).toEqual(Array.from(w.layers[1]!.rpeDecay!));
    const m32 = loadModel(encodeModel(v2, w, { dtype: 'F32' }));
    expect(Array.from(m32.weights.layers[0]!.rpeDecay!)).toEqual(Array.from(Float32Array.from(w.layers[0]!.rpeDecay!)));
    // v1 random weights are drawn exactly as before the format existed (no rates, same stream)
    const w1 = randomWeights(tinyConfig(), 4);
    expect(w1.layers[0]!.rpeDecay).toBeUndefined();
  });

  it('refuses negative, NaN and infinite rates in a file, and missing or misplaced rpeDecay in memory, with a ModelError', () => {
    expect(() => loadModel(fileWithRates([0.01, -0.5]))).toThrow(/^tensor: tensor "layers.0.attention.rpe_decay" must hold decay rates r >= 0 \(finite\), got -0.5 for head 1/);
    for (const bad of [NaN, Infinity]) {
      // the tensor reader refuses non-finite values of any tensor first
      expect(() => loadModel(fileWithRates([0.01, bad]))).toThrow(ModelError);
      expect(() => loadModel(fileWithRates([0.01, bad]))).toThrow(new RegExp(`^tensor: tensor "layers.0.attention.rpe_decay" must hold finite values, got ${bad}`));
    }
    expect(loadModel(fileWithRates([0, 0.25])).weights.layers[0]!.rpeDecay![0]).toBe(0); // r = 0 is allowed: the clip tail
    const w = randomWeights(v2, 5);
    expect(() => createModel(v2, withRates(w, () => [0.1, -1e-9]))).toThrow(/rpe_decay" must hold decay rates r >= 0 \(finite\), got -1e-9 for head 1/);
    const { rpeDecay: _dropped, ...noRates } = w.layers[0]!;
    expect(() => createModel(v2, { ...w, layers: [noRates, w.layers[1]!] })).toThrow(/weight "layers.0.attention.rpe_decay" must be a Float64Array of \[2\] = 2 values, got undefined/);
    const v1 = tinyConfig();
    expect(() => createModel(v1, withRates(randomWeights(v1, 5), () => [0.1, 0.1]))).toThrow(/layer 0 has rpeDecay, but the config's rpe.tail is "clip"/);
    // a v2 file without its rpe_decay tensors, and a v1 file with them
    const v1File = encodeModel(v1, randomWeights(v1, 5));
    const v1Tensors = parseSafetensors(v1File).tensors.map((t) => ({ name: t.name, shape: t.shape, data: new Float64Array(t.shape.reduce((a, b) => a * b, 1)), dtype: 'F32' as const }));
    expect(() => loadModel(encodeSafetensors(v1Tensors, { config: JSON.stringify(v2) }))).toThrow(/missing 2: layers.0.attention.rpe_decay, layers.1.attention.rpe_decay/);
    const extra = [...v1Tensors, { name: 'layers.0.attention.rpe_decay', shape: [2], data: new Float64Array(2), dtype: 'F32' as const }];
    expect(() => loadModel(encodeSafetensors(extra, { config: JSON.stringify(v1) }))).toThrow(/has no tensor named "layers.0.attention.rpe_decay"/);
  });
});

describe('toeplitz-lm/2 forward and sessions', () => {
  const tokens = bytesOf('Call me Ishmael. Some years ago, never mind how long precisely, I thought I would sail.'); // 87 > K = 8

  it('model.logits equals the formulas read literally (decay tail b(K-1) - r (t - K + 1)) within 1e-9 per row, both methods', () => {
    const w = withRates(randomWeights(v2, 6), (l) => [0.3 + l, 0.05]);
    for (const method of ['fft', 'direct'] as const) {
      const m = createModel(v2, w, { method });
      expect(maxRowRelError(m.logits(tokens), referenceLogits(m, tokens), 256)).toBeLessThan(1e-9);
    }
  });

  it('a rate of 0 computes the clip tail (logits equal to the v1 model of the same weights to 1e-12), a rate > 0 does not', () => {
    const w = randomWeights(v2, 7);
    const clip = createModel(tinyConfig(), { ...w, layers: w.layers.map(({ rpeDecay: _r, ...l }) => l) }).logits(tokens);
    expect(maxRowRelError(createModel(v2, withRates(w, () => [0, 0])).logits(tokens), clip, 256)).toBeLessThan(1e-12);
    expect(maxRowRelError(createModel(v2, withRates(w, () => [0.5, 0.5])).logits(tokens), clip, 256)).toBeGreaterThan(1e-3);
  });

  it('a session streams the same logits, snapshots and restores exactly, refuses a snapshot of the same weights with other rates', async () => {
    const model = tinyModel(8, { rpe: { length: 8, tail: 'decay' } });
    const s = model.session({ seed: 3, temperature: 1 });
    const streamed = new Float64Array(tokens.length * 256);
    for (const [a, b] of [[0, 1], [1, 9], [9, 40], [40, tokens.length]] as const) streamed.set(s.feed(tokens.subarray(a, b)), a * 256);
    expect(maxRowRelError(streamed, model.logits(tokens), 256)).toBeLessThan(1e-9);
    const restored = model.restore(s.snapshot());
    const take = async (x: typeof s): Promise<number[]> => {
      const out: number[] = [];
      for await (const t of x.generate('', { maxTokens: 20 })) out.push(t.token);
      return out;
    };
    expect(await take(restored)).toEqual(await take(s));
    const other = createModel(model.config, withRates(model.weights, () => [0.125, 0.125]));
    expect(() => other.restore(model.session().snapshot())).toThrow(ModelError);
  });
});
