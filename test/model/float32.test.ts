// A model session of dtype 'float32' (SessionOptions.dtype): float32 Decoders and, on WASM, float32 one-row
// products (assembly/gemm.ts gemvPackedF32). Contract: its logits within 1e-4 relative per row (normwise, and
// max-norm) of the float64 session's and of PyTorch's float64 fixture logits; its generated tokens valid and
// the same for the same seed across runs and across snapshot/restore; float64 sessions unchanged; a bad dtype is a
// ConfigError, a hostile dtype byte in a snapshot a ModelError('snapshot').
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelFile } from '../../src/model/file.js';
import { ConfigError, ModelError } from '../../src/core/errors.js';
import { SESSION_HEADER_BYTES } from '../../src/model/snapshot.js';
import { crc32 } from '../../src/codec/index.js';
import type { Model } from '../../src/model/model.js';
import { createArena } from '../../src/index.js';
import { readF64, worstRow } from './fixtures.js';

const root = join(import.meta.dirname, '..', '..');
const modelPath = join(root, 'models', 'toeplitz-lm.safetensors');
const fixtures = join(root, 'test', 'fixtures', 'model');

/** Logits of `tokens` fed one token at a time (the one-row path: float32 products on WASM), then in two chunks. */
function streamed(model: Model, tokens: readonly number[], dtype: 'float32' | 'float64'): { oneByOne: Float64Array; chunked: Float64Array } {
  const V = model.config.vocab;
  const s = model.session({ dtype });
  const oneByOne = new Float64Array(tokens.length * V);
  for (let i = 0; i < tokens.length; i++) oneByOne.set(s.feed([tokens[i]!]), i * V);
  const t = model.session({ dtype });
  const chunked = new Float64Array(tokens.length * V);
  const cut = Math.floor(tokens.length / 3);
  chunked.set(t.feed(tokens.slice(0, cut)), 0);
  chunked.set(t.feed(tokens.slice(cut)), cut * V);
  return { oneByOne, chunked };
}

async function generated(s: ReturnType<Model['session']>, prompt: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of s.generate(prompt, { maxTokens: n })) out.push(t.token);
  return out;
}

describe.skipIf(!existsSync(modelPath))('a float32 session of the shipped model', () => {
  const meta = JSON.parse(readFileSync(join(fixtures, 'logits.json'), 'utf8')) as { n: number; vocab: number; files: { fft: string } };
  const prompt = (JSON.parse(readFileSync(join(fixtures, 'prompt.json'), 'utf8')) as { tokens: number[] }).tokens;
  const torch = readF64(join(fixtures, meta.files.fft));

  for (const backend of ['wasm', 'js'] as const) {
    it(`${backend}: logits within 1e-4 per row of the float64 session's and of PyTorch float64 (token by token and chunked)`, () => {
      const model = loadModelFile(modelPath, { backend });
      const f64 = streamed(model, prompt, 'float64');
      const f32 = streamed(model, prompt, 'float32');
      for (const [name, x] of [['one by one', f32.oneByOne], ['chunked', f32.chunked]] as const) {
        const vs64 = worstRow(x, f64.oneByOne, meta.vocab);
        const vsTorch = worstRow(x, torch, meta.vocab);
        expect(vs64, `${name} vs float64`).toBeLessThan(1e-4);
        expect(vsTorch, `${name} vs PyTorch`).toBeLessThan(1e-4);
        // not the float64 computation under another name: float32 rounding is visible
        expect(vs64, `${name} differs from float64`).toBeGreaterThan(1e-9);
      }
      // float64 sessions stay what they were: the PyTorch fixture to 1e-9
      expect(worstRow(f64.oneByOne, torch, meta.vocab)).toBeLessThan(1e-9);
    });
  }

  it('wasm: the one-row products are float32 (token by token differs from float64 products with float32 decoders)', () => {
    // a float32 session fed token by token vs chunked: chunks use float64 products, single tokens float32 ones
    const model = loadModelFile(modelPath, { backend: 'wasm' });
    const { oneByOne, chunked } = streamed(model, prompt.slice(0, 64), 'float32');
    expect(worstRow(oneByOne, chunked, meta.vocab)).toBeGreaterThan(1e-9);
    expect(worstRow(oneByOne, chunked, meta.vocab)).toBeLessThan(1e-4);
  });

  it('generated tokens: valid bytes, the same for the same seed across runs and across snapshot/restore', async () => {
    const model = loadModelFile(modelPath, { backend: 'wasm' });
    const opts = { dtype: 'float32' as const, seed: 7, temperature: 0.8 };
    const a = model.session(opts);
    expect(a.dtype).toBe('float32');
    const first = await generated(a, 'Call me Ishmael. ', 60);
    const b = model.session(opts);
    expect(await generated(b, 'Call me Ishmael. ', 60)).toEqual(first);
    for (const t of first) expect(Number.isInteger(t) && t >= 0 && t < 256).toBe(true);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(first)).length).toBeGreaterThan(0);
    // snapshot after 25 tokens: the restored session continues with the same tokens and the same logits bits
    const c = model.session(opts);
    const head = await generated(c, 'Call me Ishmael. ', 25);
    expect(head).toEqual(first.slice(0, 25));
    const snap = c.snapshot();
    const r = model.restore(snap);
    expect(r.dtype).toBe('float32');
    expect(Array.from(r.lastLogits()!)).toEqual(Array.from(c.lastLogits()!));
    const tailR = await generated(r, '', 35);
    const tailC = await generated(c, '', 35);
    expect(tailR).toEqual(first.slice(25));
    expect(tailC).toEqual(first.slice(25));
    expect(Array.from(r.lastLogits()!)).toEqual(Array.from(c.lastLogits()!));
    expect(r.snapshot()).toEqual(c.snapshot());
    // a float64 session of the same seed: its own tokens, snapshot records float64
    const d = model.session({ seed: 7, temperature: 0.8 });
    expect(d.dtype).toBe('float64');
    await generated(d, 'Call me Ishmael. ', 5);
    expect(model.restore(d.snapshot()).dtype).toBe('float64');
  });

  it('float32 sessions of a model on an arena: the same tokens as without, and restored from snapshots onto it', async () => {
    const plain = loadModelFile(modelPath, { backend: 'wasm' });
    const arena = createArena({ backend: 'wasm', bytes: 64 << 20 });
    const onArena = loadModelFile(modelPath, { backend: 'wasm', arena });
    const opts = { dtype: 'float32' as const, seed: 3, temperature: 0.9 };
    const want = await generated(plain.session(opts), 'The whale ', 40);
    const s = onArena.session(opts);
    expect(await generated(s, 'The whale ', 20)).toEqual(want.slice(0, 20));
    const r = onArena.restore(s.snapshot());
    s.dispose();
    expect(await generated(r, '', 20)).toEqual(want.slice(20));
    r.dispose();
  });

  it('the snapshot records the dtype: a hostile byte is a ModelError, a float64 snapshot byte-compatible with before', () => {
    const model = loadModelFile(modelPath, { backend: 'wasm' });
    const s = model.session({ dtype: 'float32', seed: 1 });
    s.feed([67, 97, 108, 108]);
    const good = s.snapshot();
    const at = SESSION_HEADER_BYTES + 32 + 48 + 16 + 1; // the dtype byte, after the backend byte
    expect(good[at]).toBe(1);
    const tamper = (v: number): Uint8Array => {
      const b = good.slice();
      b[at] = v;
      new DataView(b.buffer).setUint32(16, crc32(b.subarray(SESSION_HEADER_BYTES)), true);
      return b;
    };
    for (const v of [2, 255]) {
      expect(() => model.restore(tamper(v))).toThrow(ModelError);
      expect(() => model.restore(tamper(v))).toThrow(/the dtype byte must be 0 \('float64'\) or 1 \('float32'\)/);
    }
    // a float32 session's decoders under a float64 byte: refused (they do not match)
    expect(() => model.restore(tamper(0))).toThrow(/layer 0's decoder is float32, the session float64/);
    const f64 = model.session({ seed: 1 });
    f64.feed([67, 97, 108, 108]);
    expect(f64.snapshot()[at]).toBe(0);
  });

  it('a bad dtype is a ConfigError naming what it must be', () => {
    const model = loadModelFile(modelPath, { backend: 'wasm' });
    for (const bad of ['float16', 'f32', 32, {}]) {
      expect(() => model.session({ dtype: bad as never })).toThrow(ConfigError);
      expect(() => model.session({ dtype: bad as never })).toThrow(/options\.dtype must be 'float64' or 'float32'/);
    }
  });
});
