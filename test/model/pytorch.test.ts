// The shipped model against PyTorch: the trainer's fixture (train/make_fixture.py) holds PyTorch's float64
// logits of a held-out prompt, by the FFT form (the paper's algorithm) and the direct O(n^2) form.
// model.logits (attention()) and a session's streamed logits (Decoder per layer) must match both within
// 1e-9 relative per row. No Python needed here. Outside CI it is skipped while no trained model exists
// (and TZLM_MODEL / TZLM_FIXTURES may point it at another model and fixture); in CI (process.env.CI set)
// it always runs on the shipped model and fixture, and fails when they are missing or redirected.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelFile } from '../../src/model/file.js';
import { readF64, worstRow } from './fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const ci = (process.env.CI ?? '') !== '' && process.env.CI !== 'false' && process.env.CI !== '0';
const shippedModel = join(root, 'models', 'toeplitz-lm.safetensors');
const shippedFixtures = join(root, 'test', 'fixtures', 'model');
// outside CI, overridable to check another model against its own fixture (e.g. one made from a random-weight file)
const shippedPath = ci ? shippedModel : (process.env.TZLM_MODEL ?? shippedModel);
const fixturesPath = ci ? shippedFixtures : (process.env.TZLM_FIXTURES ?? shippedFixtures);

describe.runIf(ci)('in CI the PyTorch comparison cannot be skipped or redirected', () => {
  it('runs on the shipped model and fixture: they exist, and TZLM_MODEL / TZLM_FIXTURES are not set', () => {
    expect(process.env.TZLM_MODEL, 'TZLM_MODEL must not be set in CI').toBeUndefined();
    expect(process.env.TZLM_FIXTURES, 'TZLM_FIXTURES must not be set in CI').toBeUndefined();
    expect(existsSync(shippedModel), `${shippedModel} is missing: CI must compare the shipped model with PyTorch`).toBe(true);
    expect(existsSync(join(shippedFixtures, 'logits.json')), `${shippedFixtures}/logits.json is missing`).toBe(true);
  });
});
// the previous default (toeplitz-lm/1, clip tail), kept with its own PyTorch fixture (not shipped in the package)
const v1Path = join(root, 'test', 'fixtures', 'model', 'v1', 'toeplitz-lm-v1.safetensors');
const v1Fixtures = join(root, 'test', 'fixtures', 'model', 'v1');

interface FixtureMeta {
  model: string;
  modelSha256: string;
  n: number;
  vocab: number;
  files: { fft: string; direct: string };
  promptBitsPerByte: number;
}

for (const [what, modelPath, fixtures] of [['the shipped model', shippedPath, fixturesPath], ['the toeplitz-lm/1 model', v1Path, v1Fixtures]] as const) {
  describe.skipIf(!ci && !existsSync(modelPath))(`${what} against PyTorch (${fixtures.slice(root.length + 1)})`, () => {
    it('the fixture exists and was made from the shipped model file', () => {
      expect(existsSync(join(fixtures, 'logits.json')), 'models/toeplitz-lm.safetensors exists but test/fixtures/model does not: run /usr/bin/python3 train/make_fixture.py').toBe(true);
      const meta = JSON.parse(readFileSync(join(fixtures, 'logits.json'), 'utf8')) as FixtureMeta;
      expect(createHash('sha256').update(readFileSync(modelPath)).digest('hex')).toBe(meta.modelSha256);
    });

    it('model.logits and streamed session logits equal PyTorch float64 (FFT and direct forms) within 1e-9 per row', () => {
      const meta = JSON.parse(readFileSync(join(fixtures, 'logits.json'), 'utf8')) as FixtureMeta;
      const prompt = JSON.parse(readFileSync(join(fixtures, 'prompt.json'), 'utf8')) as { tokens: number[] };
      const model = loadModelFile(modelPath);
      expect(prompt.tokens.length).toBe(meta.n);
      expect(model.config.vocab).toBe(meta.vocab);
      const fft = readF64(join(fixtures, meta.files.fft));
      const direct = readF64(join(fixtures, meta.files.direct));
      expect(fft.length).toBe(meta.n * meta.vocab);
      const whole = model.logits(prompt.tokens);
      expect(worstRow(whole, fft, meta.vocab)).toBeLessThan(1e-9);
      expect(worstRow(whole, direct, meta.vocab)).toBeLessThan(1e-9);
      // streamed: the prompt fed in uneven chunks through one Decoder per layer
      const s = model.session();
      const streamed = new Float64Array(whole.length);
      for (const [a, b] of [[0, 1], [1, 100], [100, 101], [101, 237], [237, meta.n]] as const) streamed.set(s.feed(prompt.tokens.slice(a, b)), a * meta.vocab);
      expect(worstRow(streamed, fft, meta.vocab)).toBeLessThan(1e-9);
      // and the fixture's own summary: bits per byte of the prompt
      let bits = 0;
      for (let i = 0; i + 1 < meta.n; i++) {
        const row = whole.subarray(i * meta.vocab, (i + 1) * meta.vocab);
        const max = Math.max(...row);
        bits += (max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0)) - row[prompt.tokens[i + 1]!]!) / Math.LN2;
      }
      expect(bits / (meta.n - 1)).toBeCloseTo(meta.promptBitsPerByte, 9);
    });
  });
}

// sha256 of the v1 model's float64 logits on its fixture prompt, computed by this library before the
// toeplitz-lm/2 format existed (commit 197a43a): v1 files must run exactly as before, bit for bit.
const V1_LOGITS_SHA256 = {
  js: { logits: '7196c46e0f37679203bbce523e986d29a6deb757558727030579d9afdbac6ace', session: 'ede0282004c31db6325ff201b3817ad5ff15ffcfafc3a0f136adda89c5c3f372' },
  wasm: { logits: '6da25a2573bf7c903d0f535fb6da4fa90391f0fc3e2ceb787672d635c3d3e55f', session: 'ba9fa010b5e7af26307effad9d617b0442653cb3b854305d2bda4b2f45644d23' },
} as const;

describe.skipIf(!existsSync(v1Path))('a toeplitz-lm/1 file runs exactly as before toeplitz-lm/2', () => {
  it('test/fixtures/model/v1/toeplitz-lm-v1.safetensors: model.logits and streamed session logits are bit-identical (js and wasm backends)', () => {
    const prompt = JSON.parse(readFileSync(join(v1Fixtures, 'prompt.json'), 'utf8')) as { tokens: number[] };
    for (const backend of ['js', 'wasm'] as const) {
      const model = loadModelFile(v1Path, { backend });
      expect(model.config.format).toBe('toeplitz-lm/1');
      const whole = model.logits(prompt.tokens);
      expect(createHash('sha256').update(new Uint8Array(whole.buffer)).digest('hex'), `${backend} logits`).toBe(V1_LOGITS_SHA256[backend].logits);
      const s = model.session();
      const h = createHash('sha256');
      for (const [a, b] of [[0, 1], [1, 100], [100, 101], [101, 237], [237, prompt.tokens.length]] as const) h.update(new Uint8Array(s.feed(prompt.tokens.slice(a, b)).buffer));
      expect(h.digest('hex'), `${backend} session`).toBe(V1_LOGITS_SHA256[backend].session);
    }
  });
});
