// The worker pool equals the single-threaded calls bit for bit: attention() over random configs (1-8 heads,
// per-head RPE lengths, both backends, every method, causal and bidirectional, float32 and strided inputs),
// DecoderCore.chunk (outputs, the state after, and what follows); errors are the library's typed errors;
// concurrent callers queue; close() ends the workers.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ndarray, { type NdArray } from 'ndarray';
import { attention, ConfigError, Decoder, DecoderCore, ShapeError, StateError, type AttentionConfig, type DecoderState } from '../../src/index.js';
import type { RpeSpec, Tail } from '../../src/engine/config.js';
import { Rng } from '../../src/math/rng.js';
import { checkDecoderState } from '../../src/engine/state.js';
import { resolveConfig } from '../../src/engine/config.js';
import { createPool, type AttentionPool } from '../../src/threads/index.js';
import { headGroups } from '../../src/threads/pool.js';
import { randomTensor, sliceRows as rows, uniform, errorOf } from '../helpers.js';

const BACKENDS = ['js', 'wasm'] as const;
const METHODS = ['auto', 'fft', 'direct'] as const;

/** Same bits (so -0 vs 0 and NaN payloads count), same length. */
function sameBits(a: Float64Array | Float32Array, b: Float64Array | Float32Array): boolean {
  return a.constructor === b.constructor && a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameState(a: DecoderState, b: DecoderState): void {
  expect({ ...a, heads: [] }).toEqual({ ...b, heads: [] });
  expect(a.heads.length).toBe(b.heads.length);
  a.heads.forEach((h, i) => {
    const g = b.heads[i]!;
    expect([h.keyExp, h.valueExp]).toEqual([g.keyExp, g.valueExp]);
    for (const key of ['ringK', 'ringV', 'farSum', 'farComp'] as const) expect(sameBits(h[key], g[key]), `head ${i} ${key}`).toBe(true);
  });
}

function randomTail(rng: Rng): Tail {
  const u = rng.nextFloat64();
  return u < 0.4 ? 'clip' : u < 0.7 ? 'zero' : { decay: uniform(rng, 0, 0.5) };
}

/** A random config: 1-8 heads, each with its own RPE table length (sometimes one shared spec), random features. */
function randomConfig(rng: Rng, opts: { causal?: boolean; maxK?: number } = {}): AttentionConfig {
  const heads = 1 + Math.floor(rng.nextFloat64() * 8);
  const keyDim = 1 + Math.floor(rng.nextFloat64() * 6);
  const valueDim = 1 + Math.floor(rng.nextFloat64() * 5);
  const maxK = opts.maxK ?? 80;
  const causal = opts.causal ?? rng.nextFloat64() < 0.7;
  const side = () => ({ bias: Array.from({ length: 1 + Math.floor(rng.nextFloat64() * maxK) }, () => (rng.nextFloat64() < 0.05 ? -Infinity : uniform(rng, -8, 3))), tail: randomTail(rng) });
  const spec = (): RpeSpec => (!causal && rng.nextFloat64() < 0.5 ? { past: side(), future: side() } : { past: side() });
  const u = rng.nextFloat64();
  const features: AttentionConfig['features'] =
    u < 0.7 ? { kind: 'prf', count: 1 + Math.floor(rng.nextFloat64() * 12), seed: Math.floor(rng.nextFloat64() * 1000), normalize: (['l2', 'scale', 'none'] as const)[Math.floor(rng.nextFloat64() * 3)]! } : u < 0.85 ? { kind: 'elu+1' } : { kind: 'relu' };
  return { heads, keyDim, valueDim, causal, features, rpe: rng.nextFloat64() < 0.25 ? spec() : Array.from({ length: heads }, spec) };
}

/** A [heads, n, dim] tensor over a larger buffer with a permuted layout (strided, offset view). */
function strided(rng: Rng, shape: [number, number, number]): NdArray<Float64Array> {
  const [a, b, c] = shape;
  const data = new Float64Array(a * b * c + 7);
  for (let i = 0; i < data.length; i++) data[i] = rng.nextGaussian();
  // layout [n, dim, heads] + offset 7
  return ndarray(data, shape, [1, c * a, a], 7);
}

// one pool for the whole file (a worker of the TypeScript sources takes about a second of CPU to start);
// three threads, so head groups come both even (2, 3, 6 heads) and uneven (4, 5, 7, 8 heads)
let pool: AttentionPool;

beforeAll(async () => {
  pool = createPool({ threads: 3 });
  await pool.ready();
});

afterAll(async () => {
  await pool.close();
});

describe('headGroups', () => {
  it('splits heads into contiguous groups whose sizes differ by at most one', () => {
    expect(headGroups(8, 2)).toEqual([[0, 4], [4, 8]]);
    expect(headGroups(5, 3)).toEqual([[0, 2], [2, 4], [4, 5]]);
    expect(headGroups(1, 2)).toEqual([[0, 1]]);
    expect(headGroups(3, 8)).toEqual([[0, 1], [1, 2], [2, 3]]);
  });
});

for (const backend of BACKENDS) describe(`pool.attention (${backend})`, () => {
  it('equals attention() bit for bit over random configs, methods, input and output dtypes, and layouts', async () => {
    const rng = new Rng(backend === 'js' ? 11 : 12);
    for (let trial = 0; trial < 16; trial++) {
      const config = randomConfig(rng);
      const n = 1 + Math.floor(rng.nextFloat64() * 200);
      const { heads, keyDim: d, valueDim: dv } = config;
      const dtype = trial % 3 === 2 ? 'f32' : 'f64';
      const q = trial % 4 === 3 ? strided(rng, [heads, n, d]) : randomTensor(rng, [heads, n, d], 1, dtype);
      const k = randomTensor(rng, [heads, n, d], 1.5, dtype);
      const v = randomTensor(rng, [heads, n, dv], 1, dtype);
      const method = METHODS[trial % 3]!;
      // the result's dtype: attention()'s float32 path every fourth trial (its result is Float32Array-backed)
      const out = trial % 4 === 1 ? 'float32' : 'float64';
      const options = { method, backend, dtype: out, ...(method === 'fft' && trial % 2 === 0 ? { block: 16 } : {}) } as const;
      const want = attention(config, q, k, v, options);
      const got = await pool.attention(config, q, k, v, options);
      expect(got.shape).toEqual([heads, n, dv]);
      expect(sameBits(got.data, want.data), `trial ${trial}: ${JSON.stringify({ heads, n, d, dv, method, out })}`).toBe(true);
    }
  });

  it('passes onStats the same records in the same order, on the calling thread', async () => {
    const rng = new Rng(3);
    const config: AttentionConfig = { heads: 5, keyDim: 4, valueDim: 3, causal: false, features: { kind: 'prf', count: 8 }, rpe: Array.from({ length: 5 }, (_, h) => ({ past: { bias: Array.from({ length: 10 + 40 * h }, (_, t) => -0.01 * t) } })) };
    const [q, k, v] = [randomTensor(rng, [5, 300, 4]), randomTensor(rng, [5, 300, 4]), randomTensor(rng, [5, 300, 3])];
    const want: unknown[] = [];
    const got: unknown[] = [];
    attention(config, q, k, v, { backend, onStats: (s) => want.push(s) });
    await pool.attention(config, q, k, v, { backend, onStats: (s) => got.push(s) });
    expect(got).toEqual(want);
    expect(got).toHaveLength(10);
  });
});

/** Step a decoder through `count` random tokens (history before the pooled chunk). */
function warm(decs: DecoderCore[], rng: Rng, count: number, steps: boolean): void {
  const { heads, keyDim: d, valueDim: dv } = decs[0]!.config;
  if (count === 0) return;
  const q = randomTensor(rng, [heads, count, d]);
  const k = randomTensor(rng, [heads, count, d], 1.5);
  const v = randomTensor(rng, [heads, count, dv]);
  for (const dec of decs) {
    if (steps) for (let i = 0; i < count; i++) dec.step(rows(q, i, i + 1, true), rows(k, i, i + 1, true), rows(v, i, i + 1, true));
    else dec.chunk(q, k, v);
  }
}

for (const backend of BACKENDS) describe(`pool.chunk (${backend})`, () => {
  it('equals decoder.chunk bit for bit: outputs, the state after, lastStats, and what follows', async () => {
    const rng = new Rng(backend === 'js' ? 21 : 22);
    for (let trial = 0; trial < 12; trial++) {
      const config = randomConfig(rng, { causal: true, maxK: 120 });
      const { heads, keyDim: d, valueDim: dv } = config;
      const method = METHODS[trial % 3]!;
      // some trials with float32 decoders (dtype 'float32': the state's dtype travels to the workers and back)
      const dtype = trial % 4 === 1 ? 'float32' : 'float64';
      const mine = new Decoder(config, { method, backend, dtype });
      const theirs = new Decoder(config, { method, backend, dtype });
      warm([mine, theirs], rng, Math.floor(rng.nextFloat64() * 150), trial % 2 === 0);
      const L = 1 + Math.floor(rng.nextFloat64() * 160);
      const q = randomTensor(rng, [heads, L, d], 1, trial % 3 === 1 ? 'f32' : 'f64');
      const k = trial % 4 === 0 ? strided(rng, [heads, L, d]) : randomTensor(rng, [heads, L, d], 1.5);
      const v = randomTensor(rng, [heads, L, dv]);
      const want = mine.chunk(q, k, v);
      const { z, decoder } = await pool.chunk(theirs, q, k, v);
      expect(sameBits(z.data, want.data), `trial ${trial}`).toBe(true);
      expect(decoder).toBeInstanceOf(Decoder);
      expect(decoder.dtype).toBe(dtype);
      expect(decoder.position).toBe(mine.position);
      sameState(decoder.exportState(), mine.exportState());
      expect(decoder.lastStats).toEqual(mine.lastStats);
      // continuing: a step and a chunk give the same bits, and so do the snapshots
      warm([mine, decoder], rng, 3, true);
      warm([mine, decoder], rng, 20, false);
      expect(Buffer.from(decoder.snapshot()).equals(Buffer.from(mine.snapshot()))).toBe(true);
    }
  });

  it('queues calls on one decoder in call order (no await between them)', async () => {
    const rng = new Rng(31);
    const config: AttentionConfig = { heads: 4, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 6 }, rpe: [8, 30, 1, 64].map((K) => ({ past: { bias: Array.from({ length: K }, (_, t) => -0.05 * t) } })) };
    const ref = new DecoderCore(config, { backend });
    const chunks = [5, 17, 1, 40].map((L) => [randomTensor(rng, [4, L, 3]), randomTensor(rng, [4, L, 3]), randomTensor(rng, [4, L, 2])] as const);
    const want = chunks.map(([q, k, v]) => ref.chunk(q, k, v));
    const dec = new DecoderCore(config, { backend });
    // in place: every call on the same decoder, queued at once
    const got = await Promise.all(chunks.map(([q, k, v]) => pool.chunk(dec, q, k, v)));
    got.forEach((r, i) => {
      expect(r.decoder).toBe(dec);
      expect(sameBits(r.z.data, want[i]!.data)).toBe(true);
    });
    sameState(dec.exportState(), ref.exportState());
  });
});

describe('pool.chunk across calls (workers keep sub-decoders between calls)', () => {
  it('two decoders of one resolved config, interleaved, with steps between pooled chunks, stay equal to their twins', async () => {
    const rng = new Rng(71);
    const config = resolveConfig({ heads: 5, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 6 }, rpe: [3, 40, 1, 17, 64].map((K, h) => ({ past: { bias: Array.from({ length: K }, (_, t) => -0.1 * t * (h + 1)), tail: h === 3 ? ('zero' as const) : { decay: 0.05 } } })) });
    const refs = [new DecoderCore(config, { backend: 'wasm' }), new DecoderCore(config, { backend: 'wasm' })];
    const decs: DecoderCore[] = [new DecoderCore(config, { backend: 'wasm' }), new DecoderCore(config, { backend: 'wasm' })];
    for (let round = 0; round < 6; round++) {
      for (const i of [0, 1]) {
        if (round % 3 === 2) warm([refs[i]!, decs[i]!], rng, 2, true); // the state the worker last saw is stale now
        const L = 1 + Math.floor(rng.nextFloat64() * 50);
        const [q, k, v] = [randomTensor(rng, [5, L, 3]), randomTensor(rng, [5, L, 3]), randomTensor(rng, [5, L, 2])];
        const want = refs[i]!.chunk(q, k, v);
        const r = await pool.chunk(decs[i]!, q, k, v);
        expect(sameBits(r.z.data, want.data), `round ${round} decoder ${i}`).toBe(true);
        decs[i] = r.decoder;
      }
    }
    for (const i of [0, 1]) sameState(decs[i]!.exportState(), refs[i]!.exportState());
  });
});

describe('pool.chunk with an in-place replaceState', () => {
  it('installs the state into the decoder passed in; concurrent calls on it run in order', async () => {
    const rng = new Rng(41);
    const config: AttentionConfig = { heads: 3, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8 }, rpe: [{ past: { bias: [0, -1, -2] } }, { past: { bias: Array(50).fill(-0.5), tail: { decay: 0.1 } } }, { past: { bias: Array(9).fill(0), tail: 'zero' } }] };
    const ref = new DecoderCore(config, { backend: 'wasm' });
    const dec = new DecoderCore(config, { backend: 'wasm' });
    const chunks = [12, 3, 70].map((L) => [randomTensor(rng, [3, L, 4]), randomTensor(rng, [3, L, 4]), randomTensor(rng, [3, L, 3])] as const);
    const want = chunks.map(([q, k, v]) => ref.chunk(q, k, v));
    const got = await Promise.all(chunks.map(([q, k, v]) => pool.chunk(dec, q, k, v)));
    got.forEach((r, i) => {
      expect(r.decoder).toBe(dec);
      expect(sameBits(r.z.data, want[i]!.data)).toBe(true);
    });
    sameState(dec.exportState(), ref.exportState());
  });

  it('refuses to overwrite a decoder that moved while the call ran', async () => {
    const rng = new Rng(42);
    const config: AttentionConfig = { heads: 2, keyDim: 2, valueDim: 2, features: { kind: 'relu' }, rpe: { past: { bias: [0, -1] } } };
    const dec = new DecoderCore(config, { backend: 'js' });
    const pending = pool.chunk(dec, randomTensor(rng, [2, 4, 2]), randomTensor(rng, [2, 4, 2]), randomTensor(rng, [2, 4, 2]));
    dec.step(randomTensor(rng, [2, 2]), randomTensor(rng, [2, 2]), randomTensor(rng, [2, 2]));
    await expect(pending).rejects.toThrow(new StateError('the decoder moved from position 0 to 1 while pool.chunk ran; its state was left as it is'));
    expect(dec.position).toBe(1);
  });
});


describe('errors', () => {
  const config: AttentionConfig = { heads: 3, keyDim: 2, valueDim: 2, features: { kind: 'prf', count: 4 }, rpe: { past: { bias: [0] } } };
  const t = (shape: number[], fill = 0.5) => ndarray(new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(fill), shape);
  const good = [t([3, 5, 2]), t([3, 5, 2]), t([3, 5, 2])] as const;
  const withNaN = t([3, 5, 2]);
  withNaN.set(2, 4, 1, NaN);

  const cases: Array<[string, unknown, unknown[], unknown, ErrorConstructor | typeof ConfigError]> = [
    ['bad method', config, [...good], { method: 'fast' }, ConfigError],
    ['bad block', config, [...good], { method: 'fft', block: 24 }, ConfigError],
    ['bad backend', config, [...good], { backend: 'gpu' }, ConfigError],
    ['bad config', { ...config, heads: 0 }, [...good], undefined, ConfigError],
    ['bad rpe', { ...config, rpe: [{ past: { bias: [0] } }] }, [...good], undefined, ConfigError],
    ['wrong shape', config, [t([3, 5, 2]), t([3, 4, 2]), t([3, 5, 2])], undefined, ShapeError],
    ['not a tensor', config, [good[0], 'k', good[2]], undefined, ShapeError],
    ['NaN value', config, [good[0], good[1], withNaN], undefined, ShapeError],
  ];
  for (const [name, cfg, [q, k, v], options, Cls] of cases) {
    it(`pool.attention: ${name} -> the same ${Cls.name} as attention()`, async () => {
      const want = await errorOf(() => attention(cfg as AttentionConfig, q as NdArray, k as NdArray, v as NdArray, options as object));
      const got = await errorOf(() => pool.attention(cfg as AttentionConfig, q as NdArray, k as NdArray, v as NdArray, options as object));
      expect(want).toBeInstanceOf(Cls);
      expect(got).toBeInstanceOf(Cls);
      expect([got.name, got.message]).toEqual([want.name, want.message]);
    });
  }

  it('pool.chunk: shape and finiteness errors are chunk()\'s', async () => {
    const dec = new DecoderCore(config, { backend: 'js' });
    for (const [q, k, v] of [[t([3, 5, 2]), t([3, 5, 2]), t([3, 5, 3])], [t([3, 5, 2]), t([3, 5, 2], NaN), t([3, 5, 2])], [t([2, 5, 2]), t([3, 5, 2]), t([3, 5, 2])]]) {
      const want = await errorOf(() => dec.chunk(q!, k!, v!));
      const got = await errorOf(() => pool.chunk(dec, q!, k!, v!));
      expect(got).toBeInstanceOf(ShapeError);
      expect([got.name, got.message]).toEqual([want.name, want.message]);
    }
    expect(dec.position).toBe(0);
    await expect(pool.chunk({} as DecoderCore, ...good)).rejects.toBeInstanceOf(ConfigError);
  });

  it('an empty sequence or chunk needs no worker and matches the single-threaded result', async () => {
    const e = t([3, 0, 2]);
    expect((await pool.attention(config, e, e, e)).shape).toEqual([3, 0, 2]);
    const dec = new DecoderCore(config);
    const r = await pool.chunk(dec, e, e, e);
    expect([r.z.shape, r.decoder, dec.position]).toEqual([[3, 0, 2], dec, 0]);
  });

  it('createPool checks its options', () => {
    expect(() => createPool({ threads: 0 })).toThrow(new ConfigError('options.threads must be an integer in [1, 256], got 0'));
    expect(() => createPool({ threads: 1.5 })).toThrow(ConfigError);
    expect(() => createPool({ workerExecArgv: 'x' as unknown as string[] })).toThrow(ConfigError);
  });
});

describe('concurrency and lifecycle', () => {
  it('concurrent calls of different shapes queue and each gets its own result', async () => {
    const rng = new Rng(51);
    const jobs = Array.from({ length: 10 }, (_, i) => {
      const config = randomConfig(rng);
      const n = 1 + Math.floor(rng.nextFloat64() * 120);
      const q = randomTensor(rng, [config.heads, n, config.keyDim]);
      const k = randomTensor(rng, [config.heads, n, config.keyDim]);
      const v = randomTensor(rng, [config.heads, n, config.valueDim]);
      const backend = BACKENDS[i % 2]!;
      return { want: attention(config, q, k, v, { backend }), got: pool.attention(config, q, k, v, { backend }) };
    });
    const got = await Promise.all(jobs.map((j) => j.got));
    got.forEach((z, i) => expect(sameBits(z.data, jobs[i]!.want.data), `job ${i}`).toBe(true));
  });

  it('idle workers do not keep the process alive: a pool never closed still lets it exit', () => {
    const script = fileURLToPath(new URL('./fixtures/no-close.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 30_000 });
    expect(run.error).toBeUndefined();
    expect([run.status, run.stdout.trim()]).toEqual([0, 'equal']);
  });

  it('close() ends the workers; queued and later calls reject with StateError', async () => {
    const p = createPool({ threads: 1 });
    await p.ready();
    expect(p.threadIds).toHaveLength(1);
    const rng = new Rng(61);
    const config: AttentionConfig = { heads: 2, keyDim: 2, valueDim: 2, features: { kind: 'relu' }, rpe: { past: { bias: [0] } } };
    const call = () => p.attention(config, randomTensor(rng, [2, 50, 2]), randomTensor(rng, [2, 50, 2]), randomTensor(rng, [2, 50, 2]));
    const first = await call();
    expect(first.shape).toEqual([2, 50, 2]);
    const inFlight = [call(), call()];
    const closed = p.close();
    expect(p.closed).toBe(true);
    for (const c of inFlight) await expect(c).rejects.toBeInstanceOf(StateError);
    await closed;
    expect(p.threadIds).toEqual([]);
    await expect(call()).rejects.toThrow(new StateError('the attention pool is closed; create a new one with createPool()'));
    await p.close(); // idempotent
  });
});
