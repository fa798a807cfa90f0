// model.logits against the formulas read literally (the slow twin), across methods and dtypes; session.feed
// in any chunking equal to model.logits; token validation.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ShapeError } from '../../src/index.js';
import { createModel, encodeModel, loadModel, randomWeights, type ModelWeights } from '../../src/model/index.js';
import { bytesOf, maxRowRelError, referenceLogits, tinyConfig, tinyModel } from './tiny.js';

describe('model.logits', () => {
  it('equals the literal formulas (O(n^2) attention, unshifted features) within 1e-9 per row, past the RPE window', () => {
    const model = tinyModel(3);
    const tokens = bytesOf('It is a truth universally acknowledged, that a whale...'); // 55 > K = 8
    const got = model.logits(tokens);
    expect(got.length).toBe(tokens.length * 256);
    expect(maxRowRelError(got, referenceLogits(model, tokens), 256)).toBeLessThan(1e-9);
  });

  it('longer than one GEMM block of rows (300 tokens)', () => {
    const model = tinyModel(5);
    const tokens = Uint8Array.from({ length: 300 }, (_, i) => 32 + ((i * 7919) % 95));
    expect(maxRowRelError(model.logits(tokens), referenceLogits(model, tokens), 256)).toBeLessThan(1e-9);
  });

  it('untied output weights, more heads and layers', () => {
    const model = tinyModel(4, { tiedEmbedding: false, heads: 3, layers: 3, keyDim: 5, valueDim: 3, rpe: { length: 3, tail: 'clip' } });
    const tokens = bytesOf('Call me Ishmael.');
    expect(maxRowRelError(model.logits(tokens), referenceLogits(model, tokens), 256)).toBeLessThan(1e-9);
  });

  it("method 'fft' and 'direct' agree", () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 6);
    const tokens = bytesOf('x'.repeat(5) + 'The sea! the sea! '.repeat(6));
    const a = createModel(cfg, w, { method: 'fft' }).logits(tokens);
    const b = createModel(cfg, w, { method: 'direct' }).logits(tokens);
    expect(maxRowRelError(a, b, 256)).toBeLessThan(1e-10);
  });

  it('an F32 file computes with its float32 values widened exactly', () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 7);
    const round = (a: Float64Array): Float64Array => Float64Array.from(Float32Array.from(a));
    const w32: ModelWeights = { tokEmbeddings: round(w.tokEmbeddings), norm: round(w.norm), output: round(w.output), layers: w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, round(v)])) as unknown as typeof l) };
    w32.output = w32.tokEmbeddings;
    const tokens = bytesOf('whale');
    expect(Array.from(loadModel(encodeModel(cfg, w, { dtype: 'F32' })).logits(tokens))).toEqual(Array.from(createModel(cfg, w32).logits(tokens)));
  });

  it('refuses bad tokens with a ShapeError and returns [] for none', () => {
    const model = tinyModel();
    expect(model.logits([]).length).toBe(0);
    expect(() => model.logits([1, 256])).toThrow(ShapeError);
    expect(() => model.logits([1, 256])).toThrow(/tokens\[1\] must be an integer token id in \[0, 255\], got 256/);
    expect(() => model.logits([0.5])).toThrow(/got 0.5/);
    expect(() => model.logits('abc' as unknown as number[])).toThrow(/must be an array of token ids/);
  });
});

describe('session.feed', () => {
  const model = tinyModel(8);
  const text = bytesOf('Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul');
  const whole = model.logits(text);

  it('in any chunking (and any internal chunk size) equals model.logits of everything fed so far', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 40 }), (cuts, chunkSize) => {
        const s = model.session();
        const got = new Float64Array(whole.length);
        let p = 0;
        for (const c of cuts) {
          if (p >= text.length) break;
          const L = Math.min(c, text.length - p);
          got.set(s.feed(text.subarray(p, p + L), { chunkSize }), p * 256);
          p += L;
        }
        if (p < text.length) got.set(s.feed(text.subarray(p)), p * 256);
        expect(s.position).toBe(text.length);
        expect(maxRowRelError(got, whole, 256)).toBeLessThan(1e-9);
        expect(Array.from(s.lastLogits()!)).toEqual(Array.from(got.subarray(got.length - 256)));
      }),
      { numRuns: 25, seed: 3 },
    );
  });

  it('reports progress per chunk and can return only the last row', () => {
    const s = model.session();
    const seen: [number, number][] = [];
    const last = s.feed(text, { chunkSize: 40, lastOnly: true, onProgress: (done, total) => seen.push([done, total]) });
    expect(seen).toEqual([[40, text.length], [80, text.length], [text.length, text.length]]);
    expect(last.length).toBe(256);
    expect(maxRowRelError(last, whole.subarray(whole.length - 256), 256)).toBeLessThan(1e-9);
  });

  it('validates tokens and options before touching the state', () => {
    const s = model.session();
    expect(() => s.feed([65, -1])).toThrow(/tokens\[1\] must be an integer token id/);
    expect(() => s.feed([65], { chunkSize: 0 })).toThrow(/chunkSize must be a positive integer, got 0/);
    expect(s.position).toBe(0);
    expect(s.lastLogits()).toBeNull();
  });
});
