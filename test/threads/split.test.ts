// One head over two workers (threads/exchange.ts): both run the same call, each convolving one half of every FFT
// pass's channels, and swap halves. The result must be attention()'s bit for bit: the engine's hook run in
// one thread with a recorded exchange, then the pool over random single-head configs (causal and
// bidirectional, RPE lengths and tails, feature maps, methods, blocks, both backends, both dtypes); bad options get
// attention()'s typed errors; concurrent split and grouped calls do not deadlock; close() ends a split call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray, { type NdArray } from 'ndarray';
import { attention, ConfigError, ShapeError, StateError, type AttentionConfig } from '../../src/index.js';
import { attentionSplit } from '../../src/engine/attention.js';
import { channelCut, type ChannelSplit } from '../../src/math/fftconv.js';
import { channelCut32 } from '../../src/math/fftconv32.js';
import type { RpeSide } from '../../src/engine/config.js';
import { Rng } from '../../src/math/rng.js';
import { createPool, type AttentionPool } from '../../src/threads/index.js';
import { abortSplit, ABORTED_MESSAGE, controlOf, SharedExchange, splitLayout } from '../../src/threads/exchange.js';
import { randomTensor, errorOf } from '../helpers.js';

/** Same element type, same length, same bytes. */
function sameBits(a: Float64Array | Float32Array, b: Float64Array | Float32Array): boolean {
  return a.constructor === b.constructor && a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const BACKENDS = ['js', 'wasm'] as const;

/** A single-head case: config, inputs, options. */
interface Case {
  config: AttentionConfig;
  q: NdArray;
  k: NdArray;
  v: NdArray;
  options: { method: 'auto' | 'fft' | 'direct'; backend: 'js' | 'wasm'; dtype: 'float64' | 'float32'; block?: number };
}

const sideArb = (maxK: number): fc.Arbitrary<RpeSide> =>
  fc.record({
    // size 'max': lengths over the whole range (fast-check's default keeps arrays near 10, under the FFT's reach)
    bias: fc.array(fc.oneof({ weight: 19, arbitrary: fc.double({ min: -8, max: 3, noNaN: true }) }, { weight: 1, arbitrary: fc.constant(-Infinity) }), { minLength: 1, maxLength: maxK, size: 'max' }),
    tail: fc.oneof(fc.constant('clip' as const), fc.constant('zero' as const), fc.record({ decay: fc.double({ min: 0, max: 0.5, noNaN: true }) })),
  });

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 1, max: 320 }),
    d: fc.integer({ min: 1, max: 6 }),
    dv: fc.integer({ min: 1, max: 5 }),
    features: fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('prf' as const), count: fc.integer({ min: 1, max: 12 }), seed: fc.nat(1000), normalize: fc.constantFrom('l2' as const, 'scale' as const, 'none' as const) }) },
      { weight: 1, arbitrary: fc.constantFrom({ kind: 'elu+1' as const }, { kind: 'relu' as const }) },
    ),
    past: sideArb(360),
    future: fc.option(sideArb(360), { nil: undefined }),
    method: fc.constantFrom('fft' as const, 'fft' as const, 'auto' as const, 'direct' as const),
    block: fc.constantFrom(0, 16, 32),
    backend: fc.constantFrom(...BACKENDS),
    dtype: fc.constantFrom('float64' as const, 'float32' as const),
    seed: fc.nat(2 ** 30),
  })
  .map(({ n, d, dv, features, past, future, method, block, backend, dtype, seed }) => {
    const rng = new Rng(seed);
    const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: dv, causal: future === undefined, features, rpe: future === undefined ? { past } : { past, future } };
    return {
      config,
      q: randomTensor(rng, [1, n, d]),
      k: randomTensor(rng, [1, n, d], 1.5),
      v: randomTensor(rng, [1, n, dv]),
      options: { method, backend, dtype, ...(method === 'fft' && block > 0 ? { block } : {}) },
    };
  });

describe('channelCut', () => {
  it('cuts between channel pairs, near the middle', () => {
    expect(channelCut(64, 64)).toBe(2080); // of 4160: features 0-31 | 32-63
    expect(channelCut(3, 2)).toBe(4); // of 9
    expect(channelCut(1, 1)).toBe(0); // of 2: one pair, all in the upper half
    for (let m = 1; m < 20; m++) for (let dv = 1; dv < 20; dv++) {
      const total = m * (dv + 1);
      const c = channelCut(m, dv);
      expect(c % 2).toBe(0);
      expect(c).toBeLessThanOrEqual(total / 2);
      expect(c).toBeGreaterThan(total / 2 - 2);
    }
  });

  it('float32: on a value column\'s edge and a pair\'s, near the middle', () => {
    expect(channelCut32(64, 64)).toBe(30 * 64); // 30 of 65 columns
    expect(channelCut32(3, 2)).toBe(0); // 3 columns of odd m: 1 column would end inside a pair
    for (let m = 1; m < 20; m++) for (let dv = 1; dv < 20; dv++) {
      const c = channelCut32(m, dv);
      const cols = c / m;
      expect(c % 2, `m ${m} dv ${dv}`).toBe(0);
      expect(Number.isInteger(cols)).toBe(true);
      expect(cols).toBeLessThanOrEqual(((dv + 1) * 15) / 32);
      expect(cols).toBeGreaterThan(((dv + 1) * 15) / 32 - (m % 2 === 1 ? 3 : 2));
    }
  });
});

describe('attentionSplit in one thread (the engine hook, exchanges recorded)', () => {
  it('half 0 given half 1\'s channels returns attention()\'s bits; a wrong half changes them', () => {
    let engineFft = 0;
    const engineFft32 = { passes: 0, perturbedShows: 0 };
    fc.assert(
      fc.property(caseArb, ({ config, q, k, v, options }) => {
        const fft32 = options.dtype === 'float32';
        const want = attention(config, q, k, v, { ...options, onStats: (st) => void (st.method === 'fft' && (fft32 ? engineFft32.passes++ : engineFft++)) });
        // half 1 first: its channel inputs do not depend on the other half, so its halves can be recorded
        const uppers: Array<Float64Array | Float32Array> = [];
        const h1: ChannelSplit = { half: 1, exchange: (upper, length) => void uppers.push(upper.slice(0, length)) };
        attentionSplit(config, q, k, v, options, h1);
        let e = 0;
        const h0: ChannelSplit = { half: 0, exchange: (upper, length) => upper.set(uppers[e++]!.subarray(0, length)) };
        const got = attentionSplit(config, q, k, v, options, h0);
        expect(e).toBe(uppers.length);
        expect(sameBits(got.data, want.data)).toBe(true);
        // the exchange carries real data: a perturbed half shows (where a pass had nonzero upper channels)
        const live = uppers.findIndex((u) => u.some((x) => x !== 0));
        if (live >= 0) {
          let f = 0;
          const bad: ChannelSplit = { half: 0, exchange: (upper, length) => {
            upper.set(uppers[f]!.subarray(0, length));
            if (f++ === live) for (let i = 0; i < length; i++) upper[i] = upper[i]! * 2;
          } };
          const shows = !sameBits(attentionSplit(config, q, k, v, options, bad).data, want.data);
          // float32 takes half 1's rows only for rows it keeps (the doubted ones are recomputed in float64)
          if (fft32) engineFft32.perturbedShows += shows ? 1 : 0;
          else expect(shows).toBe(true);
        }
      }),
      { numRuns: 100, seed: 2101 },
    );
    expect(engineFft, 'FFT passes were split').toBeGreaterThan(25);
    expect(engineFft32.passes, 'float32 FFT passes were split').toBeGreaterThan(25);
    expect(engineFft32.perturbedShows, 'a wrong float32 half showed').toBeGreaterThan(10);
  });
});

describe('SharedExchange (one thread, no waiting)', () => {
  const layout = splitLayout(4, 2, 1, 3, 2); // regions of (1 + 1) * 4 = 8 float64, two passes; features 4 * 3
  it('half 0 receives what half 1 published, pass by pass', () => {
    const shared = new SharedArrayBuffer(layout.bytes);
    const a = new SharedExchange({ half: 0, shared, layout });
    const b = new SharedExchange({ half: 1, shared, layout });
    // half 1 first (half 0 would block this thread waiting for it)
    b.exchange(Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 8);
    b.exchange(Float64Array.from([9, 9, 9, 9, 9, 9, 9, 9, 7]), 8);
    const got = new Float64Array(8);
    a.exchange(got, 8);
    expect([...got]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    a.exchange(got, 8);
    expect([...got]).toEqual([9, 9, 9, 9, 9, 9, 9, 9]);
    expect(() => a.exchange(got, 8)).toThrow(/does not fit/); // a third pass
    expect(() => new SharedExchange({ half: 1, shared, layout }).exchange(new Float64Array(9), 9)).toThrow(/does not fit/);
  });

  it('float32 halves take the same region\'s bytes (twice as many elements)', () => {
    const shared = new SharedArrayBuffer(layout.bytes);
    const a = new SharedExchange({ half: 0, shared, layout });
    const b = new SharedExchange({ half: 1, shared, layout });
    const sent = Float32Array.from({ length: 16 }, (_, i) => 1 / (i + 3)); // not exact in float64 halves
    b.exchange(sent, 16);
    const got = new Float32Array(16);
    a.exchange(got, 16);
    expect(sameBits(got, sent)).toBe(true);
    expect(() => b.exchange(new Float32Array(17), 17)).toThrow(/does not fit/);
  });

  it('an abort makes half 0 give up instead of waiting', () => {
    const shared = new SharedArrayBuffer(layout.bytes);
    abortSplit(controlOf(shared));
    const a = new SharedExchange({ half: 0, shared, layout });
    expect(() => a.exchange(new Float64Array(8), 8)).toThrow(ABORTED_MESSAGE);
    // the feature swap waits too (either half), and gives up the same way
    const b = new SharedExchange({ half: 1, shared, layout });
    expect(() => b.swapFeatures(new Float64Array(12), new Float64Array(12), 12)).toThrow(ABORTED_MESSAGE);
    expect(() => new SharedExchange({ half: 0, shared, layout }).swapFeatures(new Float64Array(13), new Float64Array(13), 13)).toThrow(/do not fit/);
  });
});

let pool: AttentionPool;

beforeAll(async () => {
  pool = createPool({ threads: 2, splitMinLength: 0 });
  await pool.ready();
});

afterAll(async () => {
  await pool.close();
});

describe('pool.attention of one head on two workers', () => {
  it('equals attention() bit for bit over random single-head calls (and onStats records too)', async () => {
    const before = pool.splitCount;
    let withFft = 0;
    let fftPasses = 0;
    let fft32 = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ config, q, k, v, options }) => {
        const want: unknown[] = [];
        const got: unknown[] = [];
        const zWant = attention(config, q, k, v, { ...options, onStats: (s) => want.push(s) });
        const zGot = await pool.attention(config, q, k, v, { ...options, onStats: (s) => got.push(s) });
        expect(zGot.shape).toEqual(zWant.shape);
        expect(sameBits(zGot.data, zWant.data)).toBe(true);
        expect(got).toEqual(want);
        const fft = want.filter((s) => (s as { method: string }).method === 'fft').length;
        withFft += fft > 0 ? 1 : 0;
        fftPasses += fft;
        fft32 += fft > 0 && options.dtype === 'float32' ? 1 : 0;
      }),
      { numRuns: 100, seed: 2102 },
    );
    expect(pool.splitCount - before, 'every call with an FFT pass ran split').toBe(withFft);
    expect(fftPasses, 'the split had FFT passes to share').toBeGreaterThan(40);
    expect(fft32, 'float32 calls ran split').toBeGreaterThan(10);
  });

  it('below splitMinLength, with one worker, or on the A-form alone, a head runs whole on one worker (same bits)', async () => {
    const rng = new Rng(7);
    const config: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 6 }, rpe: { past: { bias: Array.from({ length: 200 }, (_, t) => -0.02 * t) } } };
    const [q, k, v] = [randomTensor(rng, [1, 200, 3]), randomTensor(rng, [1, 200, 3]), randomTensor(rng, [1, 200, 2])];
    const want = attention(config, q, k, v, { method: 'fft' });
    for (const options of [{ threads: 2, splitMinLength: 201 }, { threads: 1, splitMinLength: 0 }]) {
      const p = createPool(options);
      try {
        expect(sameBits((await p.attention(config, q, k, v, { method: 'fft' })).data, want.data)).toBe(true);
        expect(p.splitCount).toBe(0);
      } finally {
        await p.close();
      }
    }
    const before = pool.splitCount;
    expect(sameBits((await pool.attention(config, q, k, v, { method: 'direct' })).data, attention(config, q, k, v, { method: 'direct' }).data)).toBe(true);
    expect(pool.splitCount).toBe(before);
    await pool.attention(config, q, k, v, { method: 'fft' });
    expect(pool.splitCount).toBe(before + 1);
  });

  it('float32 at a realistic size (n = 3000, m even and odd, causal and not, both backends): split, same bits', async () => {
    const rng = new Rng(11);
    for (const [m, causal, backend] of [[16, true, 'wasm'], [15, false, 'wasm'], [16, false, 'js'], [15, true, 'js']] as const) {
      const n = 3000;
      const config: AttentionConfig = { heads: 1, keyDim: 8, valueDim: 9, causal, features: { kind: 'prf', count: m }, rpe: { past: { bias: Array.from({ length: n }, (_, t) => -0.002 * t + 0.3 * Math.sin(t)) }, ...(causal ? {} : { future: { bias: Array.from({ length: 900 }, (_, t) => -0.01 * t) } }) } };
      const [q, k, v] = [randomTensor(rng, [1, n, 8]), randomTensor(rng, [1, n, 8], 1.5), randomTensor(rng, [1, n, 9])];
      const options = { method: 'fft' as const, backend, dtype: 'float32' as const };
      const stats: Array<{ repairedRows: number }> = [];
      const want = attention(config, q, k, v, { ...options, onStats: (st) => void stats.push(st) });
      const before = pool.splitCount;
      const got = await pool.attention(config, q, k, v, options);
      expect(pool.splitCount, `m ${m} ${backend}`).toBe(before + 1);
      expect(got.data).toBeInstanceOf(Float32Array);
      expect(sameBits(got.data, want.data), `m ${m} ${backend}`).toBe(true);
      expect(stats.every((st) => st.repairedRows < n / 2), 'most rows take the float32 sums (half 1\'s rows among them)').toBe(true);
    }
  });

  it('concurrent split and grouped calls all finish with their own results (a 2- and a 3-thread pool)', async () => {
    const rng = new Rng(8);
    const three = createPool({ threads: 3, splitMinLength: 0 });
    try {
      for (const p of [pool, three]) {
        const jobs = Array.from({ length: 9 }, (_, i) => {
          const heads = i % 3 === 1 ? 3 : 1;
          const n = 40 + Math.floor(rng.nextFloat64() * 200);
          const config: AttentionConfig = { heads, keyDim: 4, valueDim: 3, causal: i % 2 === 0, features: { kind: 'prf', count: 8 }, rpe: { past: { bias: Array.from({ length: n }, (_, t) => -0.01 * t) }, ...(i % 2 === 0 ? {} : { future: { bias: Array.from({ length: 60 }, (_, t) => -0.05 * t) } }) } };
          const [q, k, v] = [randomTensor(rng, [heads, n, 4]), randomTensor(rng, [heads, n, 4]), randomTensor(rng, [heads, n, 3])];
          const options = { method: 'fft' as const, backend: BACKENDS[i % 2]! };
          return { want: attention(config, q, k, v, options), got: p.attention(config, q, k, v, options) };
        });
        const got = await Promise.all(jobs.map((j) => j.got));
        got.forEach((z, i) => expect(sameBits(z.data, jobs[i]!.want.data), `job ${i}`).toBe(true));
      }
    } finally {
      await three.close();
    }
  });

  it('close() during a split call rejects it with StateError and ends both workers', async () => {
    const p = createPool({ threads: 2, splitMinLength: 0 });
    await p.ready();
    const rng = new Rng(9);
    const n = 8000;
    const config: AttentionConfig = { heads: 1, keyDim: 8, valueDim: 16, features: { kind: 'prf', count: 32 }, rpe: { past: { bias: Array.from({ length: n }, (_, t) => -0.001 * t) } } };
    const call = p.attention(config, randomTensor(rng, [1, n, 8]), randomTensor(rng, [1, n, 8]), randomTensor(rng, [1, n, 16]), { method: 'fft', backend: 'js' });
    const outcome = call.then(() => null, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    await p.close();
    expect(await outcome).toBeInstanceOf(StateError);
    expect(p.threadIds).toEqual([]);
  });
});


describe('errors of a split call are attention()\'s', () => {
  const config: AttentionConfig = { heads: 1, keyDim: 2, valueDim: 2, features: { kind: 'prf', count: 4 }, rpe: { past: { bias: [0, -1, -2] } } };
  const t = (shape: number[], fill = 0.5) => ndarray(new Float64Array(shape.reduce((a, b) => a * b, 1)).fill(fill), shape);
  const good = [t([1, 50, 2]), t([1, 50, 2]), t([1, 50, 2])] as const;
  const withInf = t([1, 50, 2]);
  withInf.set(0, 49, 1, Infinity);
  const cases: Array<[string, unknown, unknown[], unknown, typeof ConfigError | typeof ShapeError]> = [
    ['bad method', config, [...good], { method: 'fast' }, ConfigError],
    ['method not a string', config, [...good], { method: 3 }, ConfigError],
    ['bad block', config, [...good], { method: 'fft', block: 24 }, ConfigError],
    ['block below 16', config, [...good], { block: 8 }, ConfigError],
    ['bad backend', config, [...good], { backend: 'gpu' }, ConfigError],
    ['bad method and bad shape: the option first', config, [t([1, 50, 2]), t([1, 49, 2]), t([1, 50, 2])], { method: 'x' }, ConfigError],
    ['bad shape', config, [t([1, 50, 2]), t([1, 49, 2]), t([1, 50, 2])], undefined, ShapeError],
    ['infinite key', config, [good[0], withInf, good[2]], undefined, ShapeError],
  ];
  for (const [name, cfg, [q, k, v], options, Cls] of cases) {
    it(`${name} -> the same ${Cls.name}`, async () => {
      const want = await errorOf(() => attention(cfg as AttentionConfig, q as NdArray, k as NdArray, v as NdArray, options as object));
      const got = await errorOf(() => pool.attention(cfg as AttentionConfig, q as NdArray, k as NdArray, v as NdArray, options as object));
      expect(want).toBeInstanceOf(Cls);
      expect(got).toBeInstanceOf(Cls);
      expect([got.name, got.message]).toEqual([want.name, want.message]);
    });
  }

  it('createPool checks splitMinLength', () => {
    expect(() => createPool({ splitMinLength: -1 })).toThrow(new ConfigError('options.splitMinLength must be a non-negative integer, got -1'));
    expect(() => createPool({ splitMinLength: 1.5 })).toThrow(ConfigError);
  });
});
