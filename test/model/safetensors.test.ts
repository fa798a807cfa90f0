// The safetensors reader and writer: round trips, every refusal with its message, and fuzzing (bit flips,
// truncations, crafted headers): bad bytes are a ModelError, never a crash, a hang or a silent load.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ModelError, checkModelConfig, encodeModel, encodeSafetensors, loadModel, parseSafetensors, randomWeights, readTensor, tensorTable } from '../../src/model/index.js';
import { ToeplitzAttentionError } from '../../src/index.js';
import { tinyConfig } from './tiny.js';

const cfg = tinyConfig();
const weights = randomWeights(cfg, 5);
const good = encodeModel(cfg, weights, { dtype: 'F32', info: { corpus: 'test' } });

/** A file with header JSON `header` (object) and `data` bytes. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: number): Uint8Array {
  const text = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setUint32(0, lengthOverride ?? text.length, true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function headerOf(bytes: Uint8Array): Record<string, unknown> {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
}

function dataOf(bytes: Uint8Array): Uint8Array {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  return bytes.slice(8 + n);
}

function refusal(bytes: Uint8Array): ModelError {
  try {
    loadModel(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelError);
    expect(e).toBeInstanceOf(ToeplitzAttentionError);
    expect((e as Error).name).toBe('ModelError');
    return e as ModelError;
  }
  throw new Error('expected a ModelError, the bytes loaded');
}

describe('safetensors', () => {
  it('round-trips tensors and metadata (F32 and F64), data 8-byte aligned', () => {
    const a = Float64Array.of(1, -2.5, 1 / 3, 1e-300);
    const b = Float32Array.of(0.1, 7);
    const bytes = encodeSafetensors([{ name: 'a', shape: [2, 2], data: a }, { name: 'b', shape: [2], data: b }, { name: 'e', shape: [0, 3], data: new Float64Array(0) }], { k: 'v' });
    const f = parseSafetensors(bytes);
    expect(f.dataStart % 8).toBe(0);
    expect(f.metadata).toEqual({ k: 'v' });
    expect(f.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([['a', 'F64', [2, 2]], ['b', 'F32', [2]], ['e', 'F64', [0, 3]]]);
    expect(Array.from(readTensor(f, f.byName.get('a')!))).toEqual(Array.from(a));
    expect(Array.from(readTensor(f, f.byName.get('b')!))).toEqual(Array.from(b));
  });

  it('a model file round-trips: F64 exactly, F32 as float32-rounded values, informational keys kept apart', () => {
    const m64 = loadModel(encodeModel(cfg, weights, { dtype: 'F64' }));
    expect(Array.from(m64.weights.layers[1]!.w2)).toEqual(Array.from(weights.layers[1]!.w2));
    const m32 = loadModel(good);
    expect(Array.from(m32.weights.tokEmbeddings)).toEqual(Array.from(Float32Array.from(weights.tokEmbeddings)));
    expect(m32.config).toEqual(cfg);
    expect(m32.info).toEqual({ corpus: 'test' });
    expect(m32.weights.output).toBe(m32.weights.tokEmbeddings); // tied
    const untied = tinyConfig({ tiedEmbedding: false });
    const mu = loadModel(encodeModel(untied, randomWeights(untied, 2)));
    expect(mu.weights.output).not.toBe(mu.weights.tokEmbeddings);
    expect(tensorTable(untied).at(-1)!.name).toBe('output.weight');
  });

  it('reads the trainer\'s layout (Python json.dumps with separators, space padding, F32)', () => {
    // what train/export.py writes: compact JSON, __metadata__ first, spaces up to 8-byte alignment
    const f = parseSafetensors(good);
    expect(Object.keys(headerOf(good))[0]).toBe('__metadata__');
    expect(f.tensors.map((t) => t.name)).toEqual(tensorTable(cfg).map((t) => t.name));
  });

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['fewer than 8 bytes', () => good.subarray(0, 5), /^truncated: a safetensors file starts with an 8-byte header length, got 5 bytes/],
    ['a header length beyond the file', () => craft('{}', new Uint8Array(0), 1000), /^truncated: the header length field says 1000 bytes, but only 2 bytes follow it/],
    ['a header length over 2^32', () => { const b = good.slice(); new DataView(b.buffer).setUint32(4, 1, true); return b; }, /^truncated: the header length field says 42949\d+ bytes/],
    ['invalid JSON', () => craft('{"a": '), /^header: the header must be JSON, got a parse error/],
    ['invalid UTF-8', () => craft(new TextDecoder('latin1').decode(Uint8Array.of(0x7b, 0xff, 0x7d))), /^header: .*(UTF-8|JSON)/],
    ['a JSON array', () => craft('[1,2]'), /^header: the header must be a JSON object, got an array of length 2/],
    ['no config', () => craft({}), /^config: __metadata__.config must hold the model config \(JSON\), got no __metadata__/],
    ['non-string metadata', () => craft({ __metadata__: { config: 5 } }), /^header: __metadata__\["config"\] must be a string, got 5/],
    ['config not JSON', () => craft({ __metadata__: { config: '{' } }), /^config: __metadata__.config must be JSON/],
    ['wrong format', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, format: 'llama2' }) } }), /^config: config.format must be "toeplitz-lm\/1" or "toeplitz-lm\/2", got "llama2"/],
    ['vocab not 256', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, vocab: 512 }) } }), /^config: config.vocab must be 256 .*got 512/],
    ['a non-integer size', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, dim: 2.5 }) } }), /^config: config.dim must be an integer in \[1, 65536\], got 2.5/],
    ['features not prf', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, features: { kind: 'relu' } }) } }), /^config: config.features.kind must be "prf", got "relu"/],
    ['normalize not l2', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, features: { kind: 'prf', count: 6, normalize: 'scale' } }) } }), /^config: config.features.normalize must be "l2"/],
    ['tail not clip', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, rpe: { length: 8, tail: 'zero' } }) } }), /^config: config.rpe.tail must be "clip", got "zero"/],
    ['normEps 0', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, normEps: 0 }) } }), /^config: config.normEps must be a finite number > 0, got 0/],
    ['tiedEmbedding missing', () => craft({ __metadata__: { config: JSON.stringify({ ...cfg, tiedEmbedding: undefined }) } }), /^config: config.tiedEmbedding must be a boolean, got undefined/],
    ['a missing tensor', () => encodeSafetensors(tensorTable(cfg).filter((t) => t.name !== 'norm.weight').map((t) => ({ name: t.name, shape: t.shape, data: new Float64Array(t.shape.reduce((a, b) => a * b, 1)) })), { config: JSON.stringify(cfg) }), /^tensor: the config \(2 layers, tiedEmbedding true\) needs 24 tensors; missing 1: norm.weight$/],
    ['an extra tensor', () => encodeSafetensors([...tensorTable(cfg).map((t, i) => ({ name: t.name, shape: t.shape, data: new Float64Array(t.shape.reduce((a, b) => a * b, 1)).fill(i === 0 ? 0.5 : 1) })), { name: 'layers.9.x', shape: [1], data: Float64Array.of(1) }], { config: JSON.stringify(cfg) }), /^tensor: the config \(2 layers, tiedEmbedding true\) has no tensor named "layers.9.x"/],
    ['a wrong shape', () => encodeSafetensors(tensorTable(cfg).map((t) => ({ name: t.name, shape: t.name === 'norm.weight' ? [2, 8] : t.shape, data: new Float64Array(t.shape.reduce((a, b) => a * b, 1)) })), { config: JSON.stringify(cfg) }), /^tensor: tensor "norm.weight" must have shape \[16\] for this config, got \[2, 8\]/],
    ['an unsupported dtype', () => { const h = headerOf(good); (h['norm.weight'] as { dtype: string }).dtype = 'BF16'; return craft(h, dataOf(good)); }, /^tensor: tensor "norm.weight" must have dtype "F32" or "F64", got "BF16"/],
    ['offsets past the data', () => { const h = headerOf(good); (h['norm.weight'] as { data_offsets: number[] }).data_offsets = [0, 1e9]; return craft(h, dataOf(good)); }, /^tensor: tensor "norm.weight" must have data_offsets 0 <= begin <= end <= \d+ \(the data section\), got \[0,1000000000\]/],
    ['a size that does not match the shape', () => { const h = headerOf(good); const e = h['norm.weight'] as { data_offsets: number[] }; e.data_offsets = [e.data_offsets[0]!, e.data_offsets[1]! - 4]; return craft(h, dataOf(good)); }, /^tensor: tensor "norm.weight" of shape \[16\] F32 must span 64 bytes, got data_offsets \[\d+, \d+\] \(60 bytes\)/],
    ['overlapping tensors', () => { const h = headerOf(good); (h['norm.weight'] as { data_offsets: number[] }).data_offsets = [0, 64]; return craft(h, dataOf(good)); }, /^tensor: tensor "(norm.weight|tok_embeddings.weight)" starts at data byte \d+, expected \d+ .*overlap/],
    ['trailing bytes', () => craft(headerOf(good), Uint8Array.from([...dataOf(good), 0, 0, 0, 0])), /^header: the data section must end with the last tensor at byte \d+, got 4 extra bytes after it/],
    ['a shape bigger than the data', () => { const h = headerOf(good); (h['norm.weight'] as { shape: number[] }).shape = [1e6, 1e6, 1e6]; return craft(h, dataOf(good)); }, /^tensor: tensor "norm.weight" of shape \[1000000, 1000000, 1000000\] F32 needs more bytes than the data section holds/],
    ['an unknown entry key', () => { const h = headerOf(good); (h['norm.weight'] as Record<string, unknown>).strides = [1]; return craft(h, dataOf(good)); }, /^header: header entry "norm.weight" has an unknown key "strides"/],
    ['a NaN weight', () => { const w = randomWeights(cfg, 5); w.layers[0]!.wq[3] = NaN; return encodeSafetensors(tensorTable(cfg).map((t, i) => ({ name: t.name, shape: t.shape, data: [w.tokEmbeddings, ...w.layers.flatMap((l) => [l.attentionNorm, l.wq, l.wk, l.wv, l.wo, l.projection, l.rpeBias, l.ffnNorm, l.w1, l.w2, l.w3]), w.norm][i]! })), { config: JSON.stringify(cfg) }); }, /^tensor: tensor "layers.0.attention.wq.weight" must hold finite values, got NaN at flat index 3/],
  ];
  it.each(cases)('refuses %s with a ModelError that says what was expected and what arrived', (_name, make, message) => {
    expect(refusal(make()).message).toMatch(message);
  });

  it('the writer refuses bad input', () => {
    expect(() => encodeSafetensors([{ name: 'a', shape: [3], data: new Float64Array(2) }])).toThrow(/tensor "a" of shape \[3\] needs 3 values, got 2/);
    expect(() => encodeSafetensors([{ name: 'a', shape: [1], data: new Float64Array(1) }, { name: 'a', shape: [1], data: new Float64Array(1) }])).toThrow(ModelError);
    const w = randomWeights(cfg, 1);
    w.norm = new Float64Array(3);
    expect(() => encodeModel(cfg, w)).toThrow(/weight "norm.weight" must be a Float64Array of \[16\] = 16 values, got a Float64Array of length 3/);
  });

  it('fuzz: bit flips, truncations and crafted headers are refused with a ModelError or load finite weights', () => {
    const n = new DataView(good.buffer).getUint32(0, true);
    fc.assert(
      fc.property(
        fc.oneof(
          // bit flips anywhere, weighted towards the header
          fc.array(fc.tuple(fc.nat({ max: 8 + n + 64 }), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
            const b = good.slice();
            for (const [at, bit] of flips) b[at] = b[at]! ^ (1 << bit);
            return b;
          }),
          fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
            const b = good.slice();
            for (const [at, bit] of flips) b[at] = b[at]! ^ (1 << bit);
            return b;
          }),
          // truncations
          fc.nat({ max: good.length - 1 }).map((len) => good.slice(0, len)),
          // crafted headers: random JSON values and random entries
          fc.jsonValue().map((j) => craft(JSON.stringify(j) ?? 'null', dataOf(good))),
          fc.dictionary(fc.constantFrom('norm.weight', 'tok_embeddings.weight', 'x', '__metadata__'), fc.record({ dtype: fc.constantFrom('F32', 'F64', 'I8', 3), shape: fc.array(fc.integer({ min: -2, max: 4096 }), { maxLength: 3 }), data_offsets: fc.array(fc.integer({ min: -1, max: 70000 }), { maxLength: 3 }) }, { requiredKeys: [] })).map((h) => craft(h, dataOf(good))),
        ),
        (bytes) => {
          try {
            const m = loadModel(bytes);
            // a flip inside the data can leave a valid file with other (finite) weights
            for (const a of [m.weights.tokEmbeddings, m.weights.norm]) for (const x of a) expect(Number.isFinite(x)).toBe(true);
          } catch (e) {
            if (!(e instanceof ModelError)) throw e;
          }
        },
      ),
      { numRuns: 250, seed: 12 },
    );
  });
});

describe('bounded headers and metadata (issue 22, finding 10), and what held before', () => {
  it('a 15.7 MB header with 1.2M __metadata__ keys is refused quickly, with a short message (was ~4 s and 10.9M characters)', () => {
    const keys = Array.from({ length: 1_200_000 }, (_, i) => `"k${i}":""`);
    const text = `{"__metadata__":{${keys.join(',')}}}`;
    expect(text.length).toBeGreaterThan(15e6);
    expect(text.length).toBeLessThan(16 * 2 ** 20); // under the header cap: the metadata bound is what refuses it
    const bytes = craft(text);
    const t0 = performance.now();
    const e = refusal(bytes);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.message).toBe('header: the header must hold at most 65793 JSON keys (16384 tensors of 4 keys, 256 metadata keys), got 1200001');
    // fewer keys than the header bound, more than the metadata's: refused by the metadata bound, naming a few
    const three = refusal(craft({ __metadata__: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, ''])) }));
    expect(three.message).toMatch(/^header: __metadata__ must hold at most 256 keys, got 300 \("k0", "k1", .*, … \(300 in all\)\)$/);
    expect(e.message.length).toBeLessThan(400);
    // at the bound: 256 keys without config is refused for the missing config, naming a few keys only
    const many = refusal(craft({ __metadata__: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`key${i}`, 'x'])) }));
    expect(many.message).toMatch(/^config: __metadata__\.config must hold the model config \(JSON\), got only keys \["key0", .*, … \(256 in all\)\]$/);
    expect(many.message.length).toBeLessThan(400);
  });

  it('long names and values are bounded too: a 2 KB tensor name, a 5 MB metadata value; messages stay short', () => {
    const long = 'n'.repeat(2000);
    const e = refusal(craft({ [long]: { dtype: 'F32', shape: [0], data_offsets: [0, 0] } }));
    expect(e.message).toMatch(/^header: tensor names must be at most 1024 characters, got one of 2000/);
    expect(e.message.length).toBeLessThan(300);
    const v = refusal(craft({ __metadata__: { config: 'x'.repeat(5 * 2 ** 20) } }));
    expect(v.message).toBe(`header: __metadata__["config"] must be at most ${4 * 2 ** 20} characters, got ${5 * 2 ** 20}`);
  });

  it('every truncation of a model file is refused (all lengths through the header, a stride through the data)', () => {
    const n = new DataView(good.buffer).getUint32(0, true);
    for (let len = 0; len < good.length; len += len < 8 + n + 64 ? 1 : 61) {
      expect(() => loadModel(good.subarray(0, len)), `length ${len}`).toThrow(ModelError);
    }
    // and every single bit flip of the 8-byte length and of the header's first and last 64 bytes
    for (const at of [...Array(8 + 64).keys(), ...Array.from({ length: 64 }, (_, i) => 8 + n - 64 + i)]) {
      for (let bit = 0; bit < 8; bit++) {
        const b = good.slice();
        b[at] = b[at]! ^ (1 << bit);
        try {
          loadModel(b);
        } catch (e) {
          if (!(e instanceof ModelError)) throw e;
        }
      }
    }
  });

  it('fuzz (structured): configs and metadata are refused with a ModelError within time and memory bounds, or load and generate finite logits', () => {
    // a valid config, then (in most cases) up to 3 edits: a bad value, a big size, or a key removed
    const validArb = fc.record({
      vocab: fc.constant(256),
      dim: fc.integer({ min: 1, max: 12 }),
      layers: fc.integer({ min: 1, max: 2 }),
      heads: fc.integer({ min: 1, max: 3 }),
      keyDim: fc.integer({ min: 1, max: 6 }),
      valueDim: fc.integer({ min: 1, max: 6 }),
      hidden: fc.integer({ min: 1, max: 24 }),
      features: fc.record({ kind: fc.constant('prf'), count: fc.integer({ min: 1, max: 6 }), normalize: fc.constant('l2') }),
      rpe: fc.record({ length: fc.integer({ min: 1, max: 12 }), tail: fc.constant('clip') }),
      normEps: fc.constantFrom(1e-5, 1e-6, 0.5),
      tiedEmbedding: fc.boolean(),
    });
    const paths = ['format', 'vocab', 'dim', 'layers', 'heads', 'keyDim', 'valueDim', 'hidden', 'features.kind', 'features.count', 'features.normalize', 'rpe.length', 'rpe.tail', 'normEps', 'tiedEmbedding', 'features', 'rpe'];
    const values = fc.constantFrom<unknown>(0, -1, 2.5, null, '8', 65536, 65537, 2 ** 20, 2 ** 20 + 1, 1e300, true, [], {}, 'toeplitz-lm/2', 'relu', 'zero', undefined, 1024, 4096);
    const editArb = fc.tuple(fc.constantFrom(...paths), values);
    const configArb = fc.tuple(validArb, fc.array(editArb, { maxLength: 3 })).map(([valid, edits]) => {
      const c = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
      for (const [path, value] of edits) {
        const [a, b] = path.split('.') as [string, string | undefined];
        if (b === undefined) c[a] = value;
        else if (c[a] !== null && typeof c[a] === 'object') (c[a] as Record<string, unknown>)[b] = value;
      }
      return c;
    });
    const caseArb = fc.record({
      config: configArb,
      extraKeys: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), // the writer refuses more (the reader's bound is tested above)
      scale: fc.constantFrom(1, 1, 1e3, 1e30, 3.4e38, 1e39),
      dtype: fc.constantFrom<'F32' | 'F64'>('F32', 'F64'),
      drop: fc.boolean(), // drop one tensor
      seed: fc.nat(),
    });
    const FLOATS = 400_000; // weights written for real up to this many; beyond, the header declares them (no data)
    let loaded = 0;
    const seen: string[] = [];
    fc.assert(
      fc.property(caseArb, (c) => {
        const metadata: Record<string, string> = { config: JSON.stringify(c.config) };
        for (let i = 0; i < c.extraKeys; i++) metadata[`note${i}`] = 'x';
        let table: { name: string; shape: number[] }[] = [];
        try {
          table = tensorTable(checkModelConfigLoose(c.config)).map((t) => ({ name: t.name, shape: [...t.shape] }));
        } catch {
          table = [{ name: 'norm.weight', shape: [4] }];
        }
        if (c.drop && table.length > 1) table.splice(c.seed % table.length, 1);
        const total = table.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
        let bytes: Uint8Array;
        if (total <= FLOATS) {
          let x = c.seed | 1;
          const rnd = (): number => ((x = (Math.imul(x, 1103515245) + 12345) | 0) / 2 ** 31) * c.scale;
          bytes = encodeSafetensors(table.map((t) => ({ name: t.name, shape: t.shape, data: Float64Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, rnd), dtype: c.dtype })), metadata);
        } else {
          // a header that declares the tensors (up to the float64 limits) with 16 bytes of data in all
          const header: Record<string, unknown> = { __metadata__: metadata };
          let at = 0;
          for (const t of table.slice(0, 64)) {
            const n = t.shape.reduce((a, b) => a * b, 1) * 4;
            header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + n] };
            at += n;
          }
          bytes = craft(header, new Uint8Array(16));
        }
        const t0 = performance.now();
        const before = process.memoryUsage().arrayBuffers;
        try {
          const model = loadModel(bytes, { backend: 'js' });
          const s = model.session({ seed: 1 });
          const logits = s.feed([72, 105, 33]);
          expect(logits.every(Number.isFinite)).toBe(true);
          loaded++;
        } catch (e) {
          if (!(e instanceof ModelError)) throw e;
          expect(e.message.length).toBeLessThan(2000);
          seen.push(e.message.slice(0, 60));
        }
        expect(performance.now() - t0).toBeLessThan(1500);
        expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(128 * 2 ** 20);
      }),
      { numRuns: 200, seed: 22 },
    );
    expect(loaded, seen.slice(0, 20).join('\n')).toBeGreaterThan(10); // the generator reaches valid models too, not only refusals
  });
});

/** The tensor table of a config, for the fuzz: the real check, so an invalid config gets a dummy table. */
function checkModelConfigLoose(c: unknown): ReturnType<typeof tinyConfig> {
  return checkModelConfig(c);
}
