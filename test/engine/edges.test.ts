// The promises at the edges (issue 10): finite input never gives NaN or Infinity, l2 is scale invariant at
// any scale, values and features near the top of the float64 range stay finite, the oracle shifts its
// biases, misuse is a typed error, and restore takes what the continuation depends on from the snapshot.
import { describe, expect, it } from 'vitest';
import ndarray, { type NdArray } from 'ndarray';
import { attention, ConfigError, Decoder, DecoderCore, referenceAttention, resolveConfig, ShapeError, StateError, type AttentionConfig } from '../../src/index.js';
import { MAX_POSITION } from '../../src/core/limits.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor, sliceRows } from '../helpers.js';

/** Every oracle and property test runs on both backends. */
const BACKENDS = ['js', 'wasm'] as const;

function scaled(t: NdArray, f: number): NdArray<Float64Array> {
  return ndarray(Float64Array.from(t.data as ArrayLike<number>, (x) => x * f), t.shape.slice());
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e / scale;
}

function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

/** Stream a whole sequence through a decoder token by token: [heads, n, dv]. */
function streamSteps(dec: DecoderCore, q: NdArray, k: NdArray, v: NdArray): Float64Array {
  const [heads, n] = q.shape as [number, number];
  const dv = v.shape[2]!;
  const out = new Float64Array(heads * n * dv);
  for (let i = 0; i < n; i++) {
    const z = dec.step(sliceRows(q, i, i + 1, true), sliceRows(k, i, i + 1, true), sliceRows(v, i, i + 1, true));
    for (let h = 0; h < heads; h++) for (let c = 0; c < dv; c++) out[(h * n + i) * dv + c] = z.get(h, c);
  }
  return out;
}

const L2: AttentionConfig = { heads: 2, keyDim: 5, valueDim: 3, features: { kind: 'prf', count: 8, seed: 4 }, rpe: { past: { bias: [0, -0.5, -1, -1.5, -2, -3], tail: 'clip' } } };

for (const backend of BACKENDS) describe(`numerics at the edges (${backend})`, () => {
  const rng = new Rng(77);
  const n = 40;
  const q = randomTensor(rng, [2, n, 5]);
  const k = randomTensor(rng, [2, n, 5]);
  const v = randomTensor(rng, [2, n, 3]);
  const baseline = attention(L2, q, k, v, { backend }).data;

  for (const f of [1e155, 1e200, 1e300, 1e-160, 1e-300, 2 ** -1040]) {
    it(`l2 features are scale invariant: keys and queries times ${f} give the same outputs (attention and decoder)`, () => {
      // subnormal inputs keep fewer bits: compare with the rounded inputs scaled back exactly (a power of two)
      const back = (t: NdArray) => scaled(scaled(scaled(t, f), 2 ** 520), 2 ** 520);
      const base = f < 2 ** -1000 ? attention(L2, back(q), back(k), v, { backend }).data : baseline;
      const whole = attention(L2, scaled(q, f), scaled(k, f), v, { backend }).data;
      expect(allFinite(whole)).toBe(true);
      expect(maxRel(whole, base)).toBeLessThan(1e-12);
      const dec = new Decoder(L2, { backend });
      const streamed = streamSteps(dec, scaled(q, f), scaled(k, f), v);
      expect(maxRel(streamed, base)).toBeLessThan(1e-12);
      // the decoder's own snapshot restores (its state holds no NaN)
      expect(Decoder.restore(dec.snapshot()).position).toBe(n);
    });
  }

  it('values near the top of the float64 range give finite outputs equal to the scaled result', () => {
    const big = 1e308 / 4;
    const whole = attention(L2, q, k, scaled(v, big), { backend }).data;
    expect(allFinite(whole)).toBe(true);
    expect(maxRel(whole, Float64Array.from(baseline, (x) => x * big))).toBeLessThan(1e-12);
    const dec = new Decoder(L2, { backend });
    // a stream whose values jump to 1e308 half way: earlier state is rescaled exactly
    const vMixed = ndarray(Float64Array.from(v.data as Float64Array), v.shape.slice());
    for (let h = 0; h < 2; h++) for (let i = n / 2; i < n; i++) for (let c = 0; c < 3; c++) vMixed.set(h, i, c, v.get(h, i, c) * big);
    const streamed = streamSteps(dec, q, k, vMixed);
    expect(allFinite(streamed)).toBe(true);
    const expectMixed = attention(L2, q, k, vMixed, { backend }).data;
    expect(maxRel(streamed, expectMixed)).toBeLessThan(1e-12);
    const restored = Decoder.restore(dec.snapshot());
    expect(restored.position).toBe(n);
  });

  for (const kind of ['relu', 'elu+1'] as const) {
    it(`${kind} features of inputs near 1e160 stay finite (relu: equal to the unscaled result, it is homogeneous)`, () => {
      const cfg: AttentionConfig = { heads: 2, keyDim: 5, valueDim: 3, features: { kind }, rpe: { past: { bias: [0, -1, -2], tail: 'clip' } } };
      const qa = scaled(q, 1e160);
      const ka = scaled(k, 1e160);
      const whole = attention(cfg, qa, ka, v, { backend }).data;
      const streamed = streamSteps(new Decoder(cfg, { backend }), qa, ka, v);
      expect(allFinite(whole)).toBe(true);
      expect(allFinite(streamed)).toBe(true);
      expect(maxRel(streamed, whole)).toBeLessThan(1e-12);
      if (kind === 'relu') expect(maxRel(whole, attention(cfg, q, k, v, { backend }).data)).toBeLessThan(1e-12);
    });
  }

  it('referenceAttention shifts its biases: tables above 709.8 give the same result as shifted ones', () => {
    const hi: AttentionConfig = { ...L2, rpe: { past: { bias: [800, 799.5, 799, 798, 797], tail: 'clip' } } };
    const lo: AttentionConfig = { ...L2, rpe: { past: { bias: [0, -0.5, -1, -2, -3], tail: 'clip' } } };
    const a = referenceAttention(hi, q, k, v).data;
    expect(allFinite(a)).toBe(true);
    expect(maxRel(a, referenceAttention(lo, q, k, v).data)).toBeLessThan(1e-13);
    expect(maxRel(attention(hi, q, k, v, { backend }).data, a)).toBeLessThan(1e-12);
  });
});

for (const backend of BACKENDS) describe(`configs and API misuse (${backend})`, () => {
  it('one random feature at keyDim 1024 is cheap (rows past the ones W keeps are never orthogonalized)', () => {
    const t0 = performance.now();
    new Decoder({ heads: 1, keyDim: 1024, valueDim: 4, features: { kind: 'prf', count: 1, seed: 1 }, rpe: { past: { bias: [0] } } });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('a huge count x keyDim is a ConfigError that says how many bytes W would need', () => {
    expect(() => resolveConfig({ heads: 1, keyDim: 65536, valueDim: 1, features: { kind: 'prf', count: 65536 }, rpe: { past: { bias: [0] } } })).toThrow(ConfigError);
    expect(() => resolveConfig({ heads: 1, keyDim: 65536, valueDim: 1, features: { kind: 'prf', count: 65536 }, rpe: { past: { bias: [0] } } })).toThrow(/would need 34359738368 bytes for W/);
  });

  it('a user config carrying a featureDim key is resolved like any other (only resolveConfig results count as resolved)', () => {
    const withKey = { ...L2, featureDim: 3 } as AttentionConfig;
    const rng = new Rng(5);
    const q = randomTensor(rng, [2, 10, 5]);
    const k = randomTensor(rng, [2, 10, 5]);
    const v = randomTensor(rng, [2, 10, 3]);
    expect(Array.from(attention(withKey, q, k, v, { backend }).data)).toEqual(Array.from(attention(L2, q, k, v, { backend }).data));
    expect(new Decoder(withKey, { backend }).config.featureDim).toBe(8);
    const resolved = resolveConfig(L2);
    expect(resolveConfig(resolved)).toBe(resolved);
  });

  it('step(q, k, v, out) honours the strides of out, and refuses an out of the wrong shape with a ShapeError', () => {
    const rng = new Rng(6);
    const toks = Array.from({ length: 5 }, () => [randomTensor(rng, [2, 5]), randomTensor(rng, [2, 5]), randomTensor(rng, [2, 3])] as const);
    const plain = new Decoder(L2, { backend });
    const strided = new Decoder(L2, { backend });
    for (const [tq, tk, tv] of toks) {
      const want = plain.step(tq, tk, tv);
      // out: [2, 3] as a transposed view of a [3, 2] buffer with an offset
      const buf = new Float64Array(7).fill(-99);
      const out = ndarray(buf, [2, 3], [1, 2], 1);
      strided.step(tq, tk, tv, out);
      for (let h = 0; h < 2; h++) for (let c = 0; c < 3; c++) expect(out.get(h, c)).toBe(want.get(h, c));
      expect(buf[0]).toBe(-99);
    }
    const [tq, tk, tv] = toks[0]!;
    expect(() => strided.step(tq, tk, tv, ndarray(new Float64Array(6), [3, 2]))).toThrow(ShapeError);
    expect(() => strided.step(tq, tk, tv, ndarray(new Float64Array(6), [2, 3], [3, 1], 2))).toThrow(ShapeError);
    expect(() => strided.step(tq, tk, tv, ndarray(new Float64Array(6), [2, 3], [0, 1]))).toThrow(ShapeError);
    expect(strided.position).toBe(5);
  });

  it('step() refuses NaN and Infinity in q, k or v at their index (strided and Float32 views too), the state unchanged', () => {
    const rng = new Rng(9);
    const tok = () => [randomTensor(rng, [2, 5]), randomTensor(rng, [2, 5]), randomTensor(rng, [2, 3])] as const;
    // past the window (6 lags): the ring is full and a step would absorb a key into the far field
    const dec = new Decoder(L2, { backend });
    const twin = new Decoder(L2, { backend });
    for (let i = 0; i < 8; i++) {
      const t = tok();
      dec.step(...t);
      twin.step(...t);
    }
    const before = Buffer.from(dec.snapshot());
    for (const which of [0, 1, 2] as const) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const t = tok();
        const copy = ndarray(Float64Array.from(t[which].data), t[which].shape.slice());
        const col = which === 2 ? 2 : 4;
        copy.set(1, col, bad);
        const args = [t[0], t[1], t[2]];
        args[which] = copy;
        const name = 'qkv'[which]!;
        expect(() => dec.step(args[0]!, args[1]!, args[2]!)).toThrow(new RegExp(`^${name} must hold finite numbers, got ${String(bad)} at index \\[1, ${col}\\]$`));
        expect(Buffer.from(dec.snapshot()).equals(before)).toBe(true);
      }
    }
    // Float32 data in a transposed view: the index is the logical one
    const data = new Float32Array(5 * 2).fill(0.25);
    const view = ndarray(data, [5, 2]).transpose(1, 0); // logical [2, 5]
    view.set(0, 3, NaN);
    const t = tok();
    expect(() => dec.step(t[0], view, t[2])).toThrow(/^k must hold finite numbers, got NaN at index \[0, 3\]$/);
    expect(Buffer.from(dec.snapshot()).equals(before)).toBe(true);
    // and it goes on exactly as a decoder that never saw the bad tokens
    for (let i = 0; i < 3; i++) {
      const u = tok();
      expect(Array.from(dec.step(...u).data)).toEqual(Array.from(twin.step(...u).data));
    }
  });

  it('restore options are checked as options: a bad method is a ConfigError, not a SnapshotError', () => {
    const bytes = new Decoder(L2, { backend }).snapshot();
    expect(() => Decoder.restore(bytes, { method: 'fastest' as 'auto' })).toThrow(ConfigError);
    expect(() => Decoder.restore(bytes, { backend: 'gpu' as 'js' })).toThrow(ConfigError);
  });

  it("a session run with method 'fft' resumes bit-identically without being told (the snapshot records it)", () => {
    const cfg: AttentionConfig = { heads: 1, keyDim: 4, valueDim: 4, features: { kind: 'prf', count: 16, seed: 2 }, rpe: { past: { bias: Array.from({ length: 300 }, (_, t) => -0.01 * t) } } };
    const rng = new Rng(8);
    const chunks = Array.from({ length: 6 }, () => [randomTensor(rng, [1, 100, 4]), randomTensor(rng, [1, 100, 4]), randomTensor(rng, [1, 100, 4])] as const);
    const a = new Decoder(cfg, { backend, method: 'fft' });
    for (const c of chunks.slice(0, 3)) a.chunk(...c);
    const b = Decoder.restore(a.snapshot());
    expect(b.method).toBe('fft');
    const auto = Decoder.restore(a.snapshot(), { method: 'direct' });
    let differs = false;
    for (const c of chunks.slice(3)) {
      const za = a.chunk(...c).data;
      expect(Array.from(b.chunk(...c).data)).toEqual(Array.from(za));
      const zd = auto.chunk(...c).data;
      if (zd.some((x, i) => x !== za[i])) differs = true;
    }
    // the override is honoured (the direct method rounds differently from the FFT path)
    expect(differs).toBe(true);
  });

  it('the position stops at MAX_POSITION with a StateError, the state unchanged', () => {
    const cfg: AttentionConfig = { heads: 1, keyDim: 2, valueDim: 1, features: { kind: 'prf', count: 2, seed: 1 }, rpe: { past: { bias: [0], tail: 'zero' } } };
    const s = new Decoder(cfg, { backend });
    s.step(ndarray(new Float64Array([1, 0]), [1, 2]), ndarray(new Float64Array([0, 1]), [1, 2]), ndarray(new Float64Array([2]), [1, 1]));
    const state = s.exportState();
    state.position = MAX_POSITION;
    const d = Decoder.fromState(s.config, state);
    const tok = [ndarray(new Float64Array([1, 0]), [1, 2]), ndarray(new Float64Array([0, 1]), [1, 2]), ndarray(new Float64Array([2]), [1, 1])] as const;
    expect(() => d.step(...tok)).toThrow(StateError);
    expect(d.position).toBe(MAX_POSITION);
  });
});

describe('long shared tables', () => {
  it('a decoder with many heads sharing a long table holds the table once, and its snapshot restores', () => {
    const K = 1 << 19;
    const bias = new Float64Array(K);
    for (let t = 0; t < K; t++) bias[t] = -1e-5 * t;
    const cfg: AttentionConfig = { heads: 300, keyDim: 2, valueDim: 1, features: { kind: 'prf', count: 2, seed: 1 }, rpe: { past: { bias } } };
    const dec = new Decoder(cfg, { backend: 'wasm' });
    const rng = new Rng(3);
    dec.chunk(randomTensor(rng, [300, 50, 2]), randomTensor(rng, [300, 50, 2]), randomTensor(rng, [300, 50, 1]));
    // 300 heads x 2^19 lags would be 1.2 GiB of kernel tables (over the 1 GiB limit); shared, the table is held and stored once
    const bytes = dec.snapshot();
    expect(bytes.length).toBeLessThan(K * 8 + (1 << 20));
    const again = Decoder.restore(bytes);
    expect(again.position).toBe(50);
    const tok = [randomTensor(rng, [300, 2]), randomTensor(rng, [300, 2]), randomTensor(rng, [300, 1])] as const;
    expect(Array.from(again.step(...tok).data)).toEqual(Array.from(dec.step(...tok).data));
  });
});

describe('replaceState', () => {
  it("installs another decoder's state in place (then both continue alike), and refuses a state of another method or a doctored one without changing anything", () => {
    const rng = new Rng(12);
    const a = new Decoder(L2, { backend: 'js' });
    const b = new Decoder(L2, { backend: 'js' });
    a.chunk(randomTensor(rng, [2, 30, 5]), randomTensor(rng, [2, 30, 5]), randomTensor(rng, [2, 30, 3]));
    b.step(randomTensor(rng, [2, 5]), randomTensor(rng, [2, 5]), randomTensor(rng, [2, 3]));
    b.replaceState(a.exportState());
    expect(b.position).toBe(30);
    const tok = [randomTensor(rng, [2, 5]), randomTensor(rng, [2, 5]), randomTensor(rng, [2, 3])] as const;
    expect(Array.from(b.step(...tok).data)).toEqual(Array.from(a.step(...tok).data));
    const before = b.snapshot();
    expect(() => b.replaceState({ ...a.exportState(), method: 'fft' })).toThrow(StateError);
    const bad = a.exportState();
    bad.heads[0]!.ringK[0] = 7;
    expect(() => b.replaceState(bad)).toThrow(StateError);
    expect(b.snapshot()).toEqual(before);
  });
});
