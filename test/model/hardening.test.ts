// Issue 22 (hardening, round 3), the model's findings: each test failed on the code before its fix.
//   2  weights outside the float32 range; overflow inside a layer or in the logits leaves the session whole
//   3  config sizes bounded by memory (decoder state refused at load, chunk and block rows lowered)
//   6  restore sets the sampler's generator state (v2) or advances it in O(log n) (v1): no replay
//   7  the prompt and fed tokens are copied when checked
//   11 typed errors for bad options; evaluate buckets validated; safetensors names like "constructor"
//   12 the snapshot records its backend: honoured, or refused with ModelError 'backend'
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, ShapeError } from '../../src/index.js';
import { encodeState, parseSnapshot } from '../../src/codec/index.js';
import { Rng } from '../../src/math/rng.js';
import {
  ModelError, createModel, encodeModel, encodeSafetensors, evaluate, loadModel, parseSafetensors, randomWeights, readTensor,
  type GeneratedToken, type Model, type Session,
} from '../../src/model/index.js';
import { decodeSession, encodeSession } from '../../src/model/snapshot.js';
import { bytesOf, tinyConfig, tinyModel } from './tiny.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const prompt = 'Call me Ishmael. ';

async function collect(it: AsyncIterable<GeneratedToken>): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const g of it) out.push(g);
  return out;
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof ModelError ? `ModelError ${e.code}` : (e as Error).name;
  }
  return 'no error';
}

/** Every layer's decoder position (the torn state of the finding: [1, 0]). */
const positions = (s: Session): number[] => (s as unknown as { decoders: { position: number }[] }).decoders.map((d) => d.position);

describe('finding 2: weights in the float32 range; a refused forward pass leaves the whole session unchanged', () => {
  it('a file with finite weights beyond the float32 range (1.7e308) is refused at load, naming the tensor', () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 1);
    w.layers[1]!.wq[3] = 1.7e308;
    expect(code(() => loadModel(encodeModel(cfg, w, { dtype: 'F64' })))).toBe('ModelError tensor');
    expect(() => loadModel(encodeModel(cfg, randomWeights(cfg, 1), { dtype: 'F64' }).map((x) => x))).not.toThrow();
    // encodeModel itself checks the weights the same way (so does createModel)
    expect(() => createModel(cfg, w)).toThrow(/weight "layers\.1\.attention\.wq\.weight" must hold values in the float32 range .* got 1\.7e\+308 at flat index 3/);
    // the file path: encode F64 by hand (encodeModel refuses), loadModel names the tensor
    const bytes = encodeSafetensors(
      [{ name: 'x', shape: [2], data: Float64Array.of(1, -3.5e38) }],
      {},
    );
    const file = parseSafetensors(bytes);
    expect(() => readTensor(file, file.tensors[0]!, 3.4028234663852886e38)).toThrow(/tensor "x" must hold values with \|x\| <= 3\.4028234663852886e\+38, got -3\.5e\+38 at flat index 1/);
  });

  function poisoned(seed: number): { model: Model; restore: () => void; poison: (f: (m: Model) => void) => void } {
    const model = tinyModel(seed);
    const saved = model.weights.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, a]) => [k, (a as Float64Array).slice()])));
    const norm = model.weights.norm.slice();
    return {
      model,
      poison: (f) => f(model),
      restore: () => {
        model.weights.layers.forEach((l, i) => Object.entries(saved[i]!).forEach(([k, a]) => (l as unknown as Record<string, Float64Array>)[k]!.set(a)));
        model.weights.norm.set(norm);
      },
    };
  }

  /** Make layer `l`'s decoder refuse its next `times` calls as an overflowing input would (the session steps through stepRows, feeds chunks through chunk; step is the public entry). */
  function failNext(s: Session, l: number, times = 1): void {
    const dec = (s as unknown as { decoders: Record<string, (...a: unknown[]) => unknown>[] }).decoders[l]!;
    let left = times;
    for (const method of ['step', 'stepRows', 'chunk']) {
      const original = dec[method]!.bind(dec);
      dec[method] = (...a: unknown[]) => {
        if (left > 0) {
          left--;
          throw new ShapeError('q must hold finite numbers, got Infinity (injected)');
        }
        return original(...a);
      };
    }
  }

  it('a layer refusing its input after layer 0 advanced is a ModelError "overflow" and changes nothing, in any chunking', () => {
    const model = tinyModel(21);
    const s = model.session({ seed: 3 });
    s.feed(bytesOf(prompt));
    s.feed(bytesOf('abc'), { chunkSize: 1 });
    const before = s.snapshot();
    const lastBefore = s.lastLogits()!;
    for (const [chunkSize, failAt] of [[1, 1], [2, 1], [5, 2], [256, 1], [3, 3]] as const) {
      failNext(s, 1, 1);
      // the failAt-th call of layer 1 fails: earlier chunks (and layer 0 of this one) had advanced
      if (failAt > 1) failNext(s, 1, 0);
      let progress = 0;
      expect(code(() => s.feed(bytesOf('hello world'), { chunkSize, onProgress: () => progress++ }))).toBe('ModelError overflow');
      expect(positions(s)).toEqual(Array(model.config.layers).fill(prompt.length + 3));
      expect(s.snapshot()).toEqual(before);
      expect(s.lastLogits()).toEqual(lastBefore);
    }
    // a failure in a later chunk, after earlier chunks of the same call went through every layer
    const dec1 = (s as unknown as { decoders: { chunk: (...a: unknown[]) => unknown }[] }).decoders[1]!;
    const chunk = dec1.chunk.bind(dec1);
    let calls = 0;
    dec1.chunk = (...a: unknown[]) => {
      if (++calls === 3) throw new ShapeError('q must hold finite numbers, got Infinity (injected)');
      return chunk(...a);
    };
    expect(code(() => s.feed(bytesOf('hello world'), { chunkSize: 2 }))).toBe('ModelError overflow');
    dec1.chunk = chunk;
    expect(s.snapshot()).toEqual(before);
    // and it continues exactly as a session that never saw the refused calls
    const twin = model.session({ seed: 3 });
    twin.feed(bytesOf(prompt));
    twin.feed(bytesOf('abc'), { chunkSize: 1 });
    expect(s.feed(bytesOf('xyz'))).toEqual(twin.feed(bytesOf('xyz')));
    expect(s.snapshot()).toEqual(twin.snapshot());
  });

  it('weights overflowing layer 1 after load: the call is refused as "overflow", never a torn session (unchanged, or StateError if it cannot be undone)', () => {
    const p = poisoned(24);
    const s = p.model.session({ seed: 3 });
    s.feed(bytesOf(prompt));
    const before = s.snapshot();
    p.poison((m) => (m.weights.layers[1]!.attentionNorm.fill(1e300), m.weights.layers[1]!.ffnNorm.fill(1e300)));
    expect(code(() => s.feed(bytesOf('hello')))).toBe('ModelError overflow');
    // the rollback point was taken at this call (the prompt call was larger than nothing journaled before it)
    // or the replay of journaled calls failed under the changed weights: either unchanged or refused, never torn
    let after: Uint8Array | string;
    try {
      after = s.snapshot();
    } catch (e) {
      after = (e as Error).name;
    }
    if (typeof after === 'string') {
      expect(after).toBe('StateError');
      expect(() => s.feed(bytesOf('x'))).toThrow(/a refused call could not be undone .* were model\.weights changed after load\?/);
    } else {
      expect(after).toEqual(before);
      expect(new Set(positions(s)).size).toBe(1);
    }
  });

  it('an overflow only in the logits is refused (never ±Infinity logits) by feed, generate and model.logits; snapshot bytes unchanged', async () => {
    const p = poisoned(22);
    const s = p.model.session({ seed: 5, temperature: 1 });
    await collect(s.generate(prompt, { maxTokens: 3 }));
    const before = s.snapshot();
    p.poison((m) => m.weights.norm.fill(1e308));
    expect(code(() => s.feed(bytesOf('q')))).toBe('ModelError overflow');
    expect(code(() => s.feed(bytesOf('qrs'), { lastOnly: true }))).toBe('ModelError overflow');
    expect(s.snapshot()).toEqual(before);
    // generate: the sampled token's forward pass overflows; the draw is undone too
    await expect(collect(s.generate('', { maxTokens: 2 }))).rejects.toMatchObject({ name: 'ModelError', code: 'overflow' });
    expect(s.snapshot()).toEqual(before);
    expect(code(() => p.model.logits(bytesOf('abc')))).toBe('ModelError overflow');
    p.restore();
    const twin = p.model.session({ seed: 5, temperature: 1 });
    await collect(twin.generate(prompt, { maxTokens: 3 }));
    expect(await collect(s.generate('', { maxTokens: 6 }))).toEqual(await collect(twin.generate('', { maxTokens: 6 })));
    expect(s.snapshot()).toEqual(twin.snapshot());
  });

  it('a failure after hundreds of journaled steps replays them exactly (the rollback point is older than the call)', async () => {
    const model = tinyModel(23);
    const s = model.session({ seed: 8, temperature: 1 });
    await collect(s.generate(prompt, { maxTokens: 300 }));
    s.feed(bytesOf('forced text'), { chunkSize: 3 });
    const before = s.snapshot();
    failNext(s, 1);
    expect(code(() => s.feed(bytesOf('more')))).toBe('ModelError overflow');
    expect(s.snapshot()).toEqual(before);
    // generate: the sampled token's layer 1 fails; the draw is undone too
    failNext(s, 1);
    await expect(collect(s.generate('', { maxTokens: 3 }))).rejects.toMatchObject({ name: 'ModelError', code: 'overflow' });
    expect(s.snapshot()).toEqual(before);
  });
});

describe('finding 3: memory bounded by the config, not only each size', () => {
  it('heads x valueDim = 65536 in a ~1 MB file is refused at load with what a session would need; maxStateBytes allows it', () => {
    const cfg = tinyConfig({ dim: 1, layers: 1, heads: 1, keyDim: 1, valueDim: 65536, hidden: 1, features: { kind: 'prf', count: 1024, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' } });
    const bytes = encodeModel(cfg, randomWeights(cfg, 1));
    expect(bytes.length).toBeLessThan(2e6);
    let message = '';
    try {
      loadModel(bytes);
    } catch (e) {
      expect(e).toBeInstanceOf(ModelError);
      expect((e as ModelError).code).toBe('too-large');
      message = (e as Error).message;
    }
    expect(message).toMatch(/a session of this model would need up to 102[0-9]\.\d MiB of decoder state .* more than the 1024\.0 MiB allowed; pass \{ maxStateBytes \}/);
    expect(loadModel(bytes, { maxStateBytes: 2 ** 31, backend: 'js' }).config.valueDim).toBe(65536);
  });

  it('heads x valueDim = 65536 in a 0.5 MB file (1 feature): feeding 160 tokens lowers the chunk rows (300 tokens took ~870 MiB RSS)', () => {
    const cfg = tinyConfig({ dim: 1, layers: 1, heads: 1, keyDim: 1, valueDim: 65536, hidden: 1, features: { kind: 'prf', count: 1, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' } });
    const bytes = encodeModel(cfg, randomWeights(cfg, 1));
    expect(bytes.length).toBeLessThan(6e5);
    const model = loadModel(bytes);
    const base = process.memoryUsage().arrayBuffers;
    const s = model.session();
    const logits = s.feed(new Uint8Array(160).fill(65), { lastOnly: true });
    expect(logits.every(Number.isFinite)).toBe(true);
    expect(process.memoryUsage().arrayBuffers - base).toBeLessThan(160 * 2 ** 20);
  });

  it('hidden 2^20 with dim 1 (a 12.6 MB file) loads (no RangeError) and generates with bounded working memory', async () => {
    const cfg = tinyConfig({ dim: 1, layers: 1, heads: 1, keyDim: 1, valueDim: 1, hidden: 2 ** 20, features: { kind: 'prf', count: 2, normalize: 'l2' }, rpe: { length: 4, tail: 'clip' } });
    const bytes = encodeModel(cfg, randomWeights(cfg, 1));
    const model = loadModel(bytes);
    const s = model.session({ seed: 1 });
    const t = performance.now();
    const base = process.memoryUsage().arrayBuffers;
    const out = await collect(s.generate('hi', { maxTokens: 3 }));
    expect(out).toHaveLength(3);
    expect(s.lastLogits()!.every(Number.isFinite)).toBe(true);
    expect(process.memoryUsage().arrayBuffers - base).toBeLessThan(256 * 2 ** 20);
    expect(performance.now() - t).toBeLessThan(5000);
  });

  it('hidden 2^18 with dim 1: feeding tokens keeps the FFN scratch small (rows per block lowered), finite logits', () => {
    const cfg = tinyConfig({ dim: 1, layers: 1, heads: 1, keyDim: 1, valueDim: 1, hidden: 2 ** 18, features: { kind: 'prf', count: 2, normalize: 'l2' }, rpe: { length: 4, tail: 'clip' } });
    const model = loadModel(encodeModel(cfg, randomWeights(cfg, 2)), { backend: 'js' });
    const tokens = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 255);
    const s = model.session();
    const t = performance.now();
    const got = s.feed(tokens);
    expect(performance.now() - t).toBeLessThan(5000);
    const many = (s as unknown as { many: { h1: Float64Array; h3: Float64Array } }).many;
    // before: [min(rows, 256), hidden] each (64 rows: 128 MiB each, 300 rows: 512 MiB each); now 15 rows per block
    expect(many.h1.byteLength + many.h3.byteLength).toBeLessThanOrEqual(64 * 2 ** 20);
    expect(got.every(Number.isFinite)).toBe(true);
  });
});

describe('finding 6: restore does not replay the sampler\'s draws', () => {
  /** A valid-CRC snapshot of `model` moved to `position` with `draws`: every layer's decoder too (its state is bounded). */
  function craft(model: Model, s: Session, position: number, draws: number, version: number): Uint8Array {
    const p = decodeSession(s.snapshot(), 256, model.config.layers);
    const decoders = p.decoders.map((b) => {
      const { config, state } = parseSnapshot(b);
      return encodeState(config, { ...state, position });
    });
    const rng = new Rng(p.seed);
    rng.advance(draws);
    return encodeSession({ ...p, position, draws, decoders, rngWords: rng.getState().words, backend: model.backend }, version);
  }

  it('a crafted version-1 snapshot with draws 2^30 restores in well under a second (was 5-7 s), at the generator advanced 2^30 words', () => {
    const model = tinyModel(11);
    const s = model.session({ seed: 9, temperature: 1 });
    s.feed(bytesOf(prompt));
    const bytes = craft(model, s, 2 ** 29, 2 ** 30, 1);
    expect(bytes.length).toBeLessThan(12000);
    const t = performance.now();
    const r = model.restore(bytes);
    expect(performance.now() - t).toBeLessThan(1000);
    expect(r.position).toBe(2 ** 29);
    const expected = new Rng(9);
    expected.advance(2 ** 30);
    expect(decodeSession(r.snapshot(), 256, model.config.layers).rngWords).toEqual(expected.getState().words);
  });

  it('version 2 stores the generator state: the same crafted snapshot restores in O(1) and continues like the v1 one', async () => {
    const model = tinyModel(11);
    const s = model.session({ seed: 9, temperature: 1 });
    s.feed(bytesOf(prompt));
    const v1 = model.restore(craft(model, s, 2 ** 29, 2 ** 30, 1));
    const v2 = model.restore(craft(model, s, 2 ** 29, 2 ** 30, 2));
    expect(await collect(v2.generate('', { maxTokens: 5 }))).toEqual(await collect(v1.generate('', { maxTokens: 5 })));
    expect(v2.snapshot()).toEqual(v1.snapshot());
  });

  it('the version-1 fixture (test/fixtures/session-v1.bin, written by the v1 writer) restores and continues exactly', async () => {
    const f = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'session-v1.json'), 'utf8')) as { modelSeed: number; position: number; after: number; tokens: number[]; lastLogitsSha256: string };
    const bytes = new Uint8Array(readFileSync(join(root, 'test', 'fixtures', 'session-v1.bin')));
    expect(new DataView(bytes.buffer).getUint16(8, true)).toBe(1);
    const cfg = tinyConfig();
    const model = loadModel(encodeModel(cfg, randomWeights(cfg, f.modelSeed), { dtype: 'F64' }), { backend: 'js' });
    const r = model.restore(bytes);
    expect(r.position).toBe(f.position);
    const out = await collect(r.generate('', { maxTokens: f.after }));
    expect(out.map((g) => g.token)).toEqual(f.tokens);
    expect(createHash('sha256').update(new Uint8Array(r.lastLogits()!.buffer)).digest('hex')).toBe(f.lastLogitsSha256);
    // and it is written back as version 2, which restores the same
    const again = r.snapshot();
    expect(new DataView(again.buffer).getUint16(8, true)).toBe(2);
    expect(model.restore(again).snapshot()).toEqual(again);
  });
});

describe('finding 7: tokens are copied when checked', () => {
  it('generate(): a prompt array changed after the call (to [300, 1.5, -7]) is not what gets fed', async () => {
    const model = tinyModel(11);
    const original = Array.from(bytesOf(prompt));
    const arr = original.slice();
    const it = model.session({ seed: 2 }).generate(arr, { maxTokens: 4 });
    arr.length = 3;
    arr[0] = 300;
    arr[1] = 1.5;
    arr[2] = -7;
    const got = await collect(it);
    expect(got).toEqual(await collect(model.session({ seed: 2 }).generate(original, { maxTokens: 4 })));
  });

  it('feed(): an onProgress that rewrites the caller\'s array does not change later chunks', () => {
    const model = tinyModel(11);
    const tokens = Array.from(bytesOf('a longer text to feed in chunks of four'));
    const want = model.session().feed(tokens.slice(), { chunkSize: 4 });
    const got = model.session().feed(tokens, { chunkSize: 4, onProgress: () => tokens.fill(300) });
    expect(got).toEqual(want);
    // onProgress may not feed the same session (the rollback journal records calls in order)
    const s = model.session();
    expect(() => s.feed(tokens.slice(0, 8).fill(65), { chunkSize: 4, onProgress: () => s.feed([66]) })).toThrow(/feed\(\) is not allowed inside a feed\(\) call on this session/);
    expect(s.position).toBe(0);
    expect(() => s.feed([65])).not.toThrow();
  });
});

describe('finding 11: typed errors and refused options', () => {
  const model = tinyModel(11);
  const bytes = encodeModel(tinyConfig(), randomWeights(tinyConfig(), 1));

  it('loadModel / createModel options: null and unknown values are ConfigErrors at load', () => {
    expect(() => loadModel(bytes, null as never)).toThrow(ConfigError);
    expect(() => loadModel(bytes, { method: 'bogus' as never })).toThrow(/options\.method must be 'auto', 'fft' or 'direct', got "bogus"/);
    expect(() => loadModel(bytes, { backend: 'gpu' as never })).toThrow(ConfigError);
    expect(() => loadModel(bytes, { maxStateBytes: -1 })).toThrow(/maxStateBytes must be a number > 0/);
    expect(() => createModel(tinyConfig(), randomWeights(tinyConfig(), 1), null as never)).toThrow(ConfigError);
  });

  it('generate: stop null or 5 and a signal that is not an AbortSignal are ConfigErrors at the call', () => {
    const s = model.session();
    expect(() => s.generate(prompt, { maxTokens: 1, stop: null as never })).toThrow(ConfigError);
    expect(() => s.generate(prompt, { maxTokens: 1, stop: 5 as never })).toThrow(/stop must be a non-empty string or an array of them, got 5/);
    expect(() => s.generate(prompt, { maxTokens: 1, stop: [5] as never })).toThrow(ConfigError);
    expect(() => s.generate(prompt, { maxTokens: 1, signal: {} as never })).toThrow(/signal must be an AbortSignal/);
    expect(() => s.generate(null as never, { maxTokens: 1 })).toThrow(ShapeError);
    expect(s.position).toBe(0);
  });

  it('feed: a length of -1 (or 2.5, or NaN) is a ShapeError; options null a ConfigError; nothing changes', () => {
    const s = model.session();
    s.feed(bytesOf('ab'));
    const before = s.snapshot();
    for (const length of [-1, 2.5, NaN, 2 ** 40]) expect(() => s.feed({ length } as never)).toThrow(ShapeError);
    expect(() => s.feed([1], null as never)).toThrow(ConfigError);
    expect(() => model.logits({ length: -1 } as never)).toThrow(ShapeError);
    expect(s.snapshot()).toEqual(before);
  });

  it('evaluate: buckets are validated (never NaN from a bad list); fewer than 2 tokens refused', () => {
    const text = bytesOf('some text to score, long enough');
    for (const buckets of [[], [5, 0], [0, 10, 10], [0, NaN], [1, 5], 'x', [0, 2.5]]) expect(() => evaluate(model, text, { buckets: buckets as never })).toThrow(ConfigError);
    expect(() => evaluate(model, text, { chunkSize: 0 })).toThrow(ConfigError);
    expect(() => evaluate(model, bytesOf('a'))).toThrow(ShapeError);
    const r = evaluate(model, text, { buckets: [0, 4] });
    expect(Number.isFinite(r.bitsPerByte)).toBe(true);
    expect(r.buckets.every((b) => Number.isFinite(b.bitsPerByte))).toBe(true);
  });

  it('encodeSafetensors writes tensors named constructor, toString, __proto__, hasOwnProperty; the reader agrees', () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    const bytes = encodeSafetensors(names.map((name, i) => ({ name, shape: [1], data: Float64Array.of(i) })), { toString: 'x', constructor: 'y' });
    const file = parseSafetensors(bytes);
    expect(file.tensors.map((t) => t.name)).toEqual(names);
    expect(names.map((n) => readTensor(file, file.byName.get(n)!)[0])).toEqual([0, 1, 2, 3, 4]);
    expect(file.metadata.toString).toBe('x');
    expect(Object.getPrototypeOf(file.metadata)).toBeNull();
    // a "__proto__" metadata key is a plain key: nothing is polluted
    const proto = parseSafetensors(encodeSafetensors([], JSON.parse('{"__proto__":"p","polluted":"no"}') as Record<string, string>));
    expect(Object.keys(proto.metadata)).toEqual(['__proto__', 'polluted']);
    expect(proto.metadata['__proto__']).toBe('p');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => encodeSafetensors([{ name: 'a', shape: [1], data: Float64Array.of(1) }, { name: 'a', shape: [1], data: Float64Array.of(1) }])).toThrow(/unique/);
  });
});

describe('finding 12: the backend a snapshot was made on', () => {
  it('a WASM snapshot restored into a JS model is a ModelError "backend" saying how to continue; { backend: "model" } continues on JS', async () => {
    const cfg = tinyConfig();
    const bytes = encodeModel(cfg, randomWeights(cfg, 4), { dtype: 'F64' });
    const wasm = loadModel(bytes, { backend: 'wasm' });
    const js = loadModel(bytes, { backend: 'js' });
    const s = wasm.session({ seed: 1, temperature: 0.9 });
    await collect(s.generate(prompt, { maxTokens: 5 }));
    const snap = s.snapshot();
    let message = '';
    try {
      js.restore(snap);
    } catch (e) {
      expect((e as ModelError).code).toBe('backend');
      message = (e as Error).message;
    }
    expect(message).toMatch(/made on the 'wasm' backend and this model runs on 'js'.*Load the model with \{ backend: 'wasm' \}.*restore with \{ backend: 'model' \}/);
    expect(() => js.restore(snap, { backend: 'bogus' as never })).toThrow(ConfigError);
    const moved = js.restore(snap, { backend: 'model' });
    const exact = wasm.restore(snap);
    const a = moved.feed(bytesOf('forced'));
    const b = exact.feed(bytesOf('forced'));
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    expect(worst).toBeLessThan(1e-9);
    // the moved session now records 'js': it restores exactly into the JS model
    const again = moved.snapshot();
    expect(js.restore(again).snapshot()).toEqual(again);
  });

  it('where WebAssembly is unavailable (node --jitless) a WASM snapshot is refused as "backend", not as damaged; { backend: "model" } continues', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzlm-backend-'));
    try {
      const cfg = tinyConfig();
      const bytes = encodeModel(cfg, randomWeights(cfg, 4), { dtype: 'F64' });
      writeFileSync(join(dir, 'm.safetensors'), bytes);
      const s = loadModel(bytes, { backend: 'wasm' }).session({ seed: 1 });
      s.feed(bytesOf(prompt));
      writeFileSync(join(dir, 's.bin'), s.snapshot());
      const child = spawnSync(process.execPath, ['--jitless', '--import', 'tsx', join(here, 'restore-backend-child.ts'), join(dir, 'm.safetensors'), join(dir, 's.bin')], { cwd: root, encoding: 'utf8' });
      expect(child.status, child.stderr).toBe(0);
      const got = JSON.parse(child.stdout.trim().split('\n').pop()!) as { backend: string; exact: string; model: number };
      expect(got.backend).toBe('js');
      expect(got.exact).toMatch(/^ModelError backend: .*'wasm'/);
      expect(got.model).toBe(prompt.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
