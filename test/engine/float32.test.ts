// attention()'s dtype 'float32' (issue 21, DESIGN section 7): its accuracy contract on both backends.
//   - per-row normwise error vs the float64 O(n^2) oracle <= 1e-4 over random shapes, lengths, RPEs (tails, -Infinity
//     biases, bidirectional), feature maps, methods, blocks and value scales;
//   - relative RMS <= 1e-5 vs the float64 result on the benchmark workload (one head, d = dv = m = 64, full-length
//     table in [-2, 0], PRF) at n = 16384 (WASM; JS at 4096, where its float32 kernel is the plain reference);
//   - error at most 2x that of a plain float32 reference (the formula with Math.fround on every operation);
//   - 'float64' (and no dtype) unchanged; 'direct' in float32 is the float64 result rounded once; bad dtype -> ConfigError.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray, { type NdArray } from 'ndarray';
import { attention, ConfigError, type AttentionConfig, type RpeSide } from '../../src/index.js';
import { resolveConfig } from '../../src/engine/config.js';
import { Rng } from '../../src/math/rng.js';
import { maxRowError, randomTensor } from '../helpers.js';
import { featureArb, side as sideOf, sideSpecArb, type SideSpec } from '../arbitraries.js';
import FFT from 'fft.js';
import { createWasmWorkspace } from '../../src/backend/wasm.js';
import { JsWorkspace } from '../../src/backend/js.js';
import { partitionKernel } from '../../src/math/fftconv.js';
import { sformChannels32Scratch, transpose32 } from '../../src/math/fftconv32.js';

/** The float32 contract (DESIGN section 7). */
const ROW_BAR = 1e-4;
const RMS_BAR = 1e-5;

const asF64 = (z: NdArray<Float32Array | Float64Array>): NdArray<Float64Array> => ndarray(Float64Array.from(z.data), z.shape.slice());

/** K biases in [-20, 5] (DESIGN section 4's range), about 1 in 8 of them -Infinity (all of them, sometimes). */
const sideArb = (maxK: number): fc.Arbitrary<SideSpec> => sideSpecArb(maxK, [0, 0, 0.125, 1]);
const side = (s: SideSpec): RpeSide => sideOf(s, -20, 5);

/** The benchmark workload: one head, d = dv = m = 64, a full-length table of biases in [-2, 0], l2 PRF. */
function workload(n: number, seed: number): { config: AttentionConfig; q: NdArray; k: NdArray; v: NdArray } {
  const rng = new Rng(seed);
  const d = 64;
  const bias = Array.from({ length: n }, () => -2 * rng.nextFloat64());
  const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
  return { config, q: randomTensor(rng, [1, n, d]), k: randomTensor(rng, [1, n, d]), v: randomTensor(rng, [1, n, d]) };
}

/** sqrt(sum (a - ref)^2 / sum ref^2) over the rows listed (all when rows is null); [n, dv] row-major arrays. */
function relRms(a: ArrayLike<number>, ref: ArrayLike<number>, dv: number, rows: number[] | null = null): number {
  let e2 = 0;
  let r2 = 0;
  const list = rows ?? Array.from({ length: ref.length / dv }, (_, i) => i);
  for (const i of list) {
    for (let c = 0; c < dv; c++) {
      const x = ref[i * dv + c]!;
      e2 += (a[i * dv + c]! - x) ** 2;
      r2 += x * x;
    }
  }
  return Math.sqrt(e2 / r2);
}

/**
 * A plain float32 reference of the rows listed, head 0 of a causal PRF config with a table as long as the sequence:
 * the formula with Math.fround after every operation and float32 accumulators (features of every key, then each row
 * summed in key order). Returns [rows.length, dv].
 */
function plainFloat32Rows(config: AttentionConfig, q: NdArray, k: NdArray, v: NdArray, rows: number[]): Float32Array {
  const f = Math.fround;
  const cfg = resolveConfig(config);
  const { keyDim: d, valueDim: dv, featureDim: m } = cfg;
  if (cfg.features.kind !== 'prf') throw new Error('plainFloat32Rows: PRF only');
  const W = Float32Array.from(cfg.features.projection);
  const n = q.shape[1]!;
  const invSqrtM = f(1 / Math.sqrt(m));
  const phi = (x: NdArray, i: number, out: Float32Array, o: number): void => {
    let sq = 0;
    for (let c = 0; c < d; c++) sq = f(sq + f(f(x.get(0, i, c)) * f(x.get(0, i, c))));
    const inv = f(1 / f(Math.sqrt(sq)));
    const xs = new Float32Array(d);
    for (let c = 0; c < d; c++) xs[c] = f(f(x.get(0, i, c)) * inv);
    let sq2 = 0;
    for (let c = 0; c < d; c++) sq2 = f(sq2 + f(xs[c]! * xs[c]!));
    const half = f(sq2 / 2);
    for (let r = 0; r < m; r++) {
      let s = 0;
      for (let c = 0; c < d; c++) s = f(s + f(W[r * d + c]! * xs[c]!));
      out[o + r] = f(f(Math.exp(f(s - half))) * invSqrtM);
    }
  };
  const phiK = new Float32Array(n * m);
  for (let j = 0; j < n; j++) phi(k, j, phiK, j * m);
  const bias = cfg.past[0]!.logBias;
  const c = Float32Array.from({ length: n }, (_, t) => f(Math.exp(f(bias[Math.min(t, bias.length - 1)]!))));
  const out = new Float32Array(rows.length * dv);
  const pq = new Float32Array(m);
  const acc = new Float32Array(dv + 1);
  rows.forEach((i, at) => {
    phi(q, i, pq, 0);
    acc.fill(0);
    for (let j = 0; j <= i; j++) {
      let dot = 0;
      for (let r = 0; r < m; r++) dot = f(dot + f(pq[r]! * phiK[j * m + r]!));
      const w = f(c[i - j]! * dot);
      for (let col = 0; col < dv; col++) acc[col] = f(acc[col]! + f(w * f(v.get(0, j, col))));
      acc[dv] = f(acc[dv]! + w);
    }
    for (let col = 0; col < dv; col++) out[at * dv + col] = f(acc[col]! / acc[dv]!);
  });
  return out;
}

describe('float32 WASM kernels against their plain twins', () => {
  const bitReverse = (j: number, bits: number): number => {
    let r = 0;
    for (let b = 0; b < bits; b++, j >>= 1) r = (r << 1) | (j & 1);
    return r;
  };

  it('fft32: forward = fft.js in bit-reversed order (whole and zero-padded inputs), inverse undoes it times N', () => {
    const ws = createWasmWorkspace(1 << 20);
    const rng = new Rng(9);
    for (const N of [2, 4, 8, 16, 32, 128, 1024, 8192, 16384]) {
      for (const half of [false, true]) {
        const x = Float64Array.from({ length: 2 * N }, (_, i) => (half && i >= N ? 0 : rng.nextGaussian()));
        const inp = ws.f32(2 * N);
        const out = ws.f32(2 * N);
        inp.set(x);
        ws.fft32(N, out, inp, false, half);
        const ref = new Float64Array(2 * N);
        new FFT(N).transform(ref, Float64Array.from(inp));
        const bits = Math.round(Math.log2(N));
        let err = 0;
        let norm = 0;
        for (let j = 0; j < N; j++) {
          const s = bitReverse(j, bits);
          err = Math.max(err, Math.hypot(out[2 * j]! - ref[2 * s]!, out[2 * j + 1]! - ref[2 * s + 1]!));
          norm = Math.max(norm, Math.hypot(ref[2 * s]!, ref[2 * s + 1]!));
        }
        expect(err / norm).toBeLessThan(1e-6);
        ws.fft32(N, out, null, true);
        let back = 0;
        for (let i = 0; i < 2 * N; i++) back = Math.max(back, Math.abs(out[i]! / N - inp[i]!));
        expect(back).toBeLessThan(1e-5);
      }
    }
  });

  it('transpose32 and sformChannels32: WASM = the plain JS kernels (exactly, and within float32 rounding), any q0', () => {
    const wasm = createWasmWorkspace(1 << 22);
    const js = new JsWorkspace();
    const rng = new Rng(4);
    for (const [nb, q0, B, m, dv] of [[300, 0, 16, 3, 2], [300, 77, 32, 4, 3], [1000, 999, 64, 2, 5], [513, 200, 128, 5, 1]] as const) {
      const x = wasm.f64(nb * 7);
      for (let i = 0; i < x.length; i++) x[i] = rng.nextGaussian() * 1e3;
      const a = wasm.f32(nb * 7);
      const b = new Float32Array(nb * 7);
      wasm.transpose32(x, nb, 7, a);
      transpose32(x, nb, 7, b);
      expect(Array.from(a)).toEqual(Array.from(b));
      const c = Float64Array.from({ length: nb }, () => Math.exp(-3 * rng.nextFloat64()));
      const kp = partitionKernel(c, 0, nb, B);
      const P = kp.parts;
      const N = 2 * B;
      const nq = nb - q0;
      const run = (ws: typeof wasm | JsWorkspace): Float32Array => {
        const fill = (len: number, f: () => number) => {
          const t = ws.f32(len);
          const r = new Rng(len);
          for (let i = 0; i < len; i++) t[i] = f.call(r);
          return t;
        };
        const phiKT = fill(m * nb, function (this: Rng) { return Math.exp(this.nextGaussian() - 1); });
        const vT = fill(dv * nb, function (this: Rng) { return this.nextGaussian(); });
        const phiQT = fill(m * nq, function (this: Rng) { return Math.exp(this.nextGaussian() - 1); });
        const spectra = ws.f32(P * 2 * N);
        ws.kernelSpectra32(kp.spectra, N, P, spectra);
        const accT = ws.f32((dv + 1) * nq);
        const scratch = ws.f32(sformChannels32Scratch(nb, q0, B, P));
        ws.sformChannels32({ phiKT, vT, phiQT, accT, spectra, q0, nb, m, dv, B, P, ch0: 0, ch1: m * (dv + 1), scratch });
        return accT;
      };
      const aw = run(wasm);
      const aj = run(js);
      // normwise per column of accT (one value column or the denominator): the float32 FFT error is normwise
      for (let col = 0; col <= dv; col++) {
        let err = 0;
        let norm = 0;
        for (let i = 0; i < nq; i++) {
          err = Math.max(err, Math.abs(aw[col * nq + i]! - aj[col * nq + i]!));
          norm = Math.max(norm, Math.abs(aj[col * nq + i]!));
        }
        expect(err).toBeLessThanOrEqual(1e-5 * norm);
      }
    }
  });
});

describe("attention(): dtype 'float32'", () => {
  it('meets the per-row bar (1e-4 normwise vs the float64 oracle) over random shapes, RPEs, feature maps, methods, blocks and both backends', () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 300 }),
          heads: fc.integer({ min: 1, max: 2 }),
          d: fc.integer({ min: 1, max: 8 }),
          dv: fc.integer({ min: 1, max: 8 }),
          features: featureArb,
          past: sideArb(350),
          direction: fc.oneof(fc.constant('causal' as const), fc.constant(null), sideArb(350)),
          method: fc.constantFrom('auto', 'fft', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
          block: fc.constantFrom(0, 16, 32, 64),
          backend: fc.constantFrom('js', 'wasm') as fc.Arbitrary<'js' | 'wasm'>,
          // values far from 1 (both ways) go through the float32 channels scaled by a power of two
          vScale: fc.constantFrom(1, 1, 1e-30, 1e30),
          seed: fc.integer(),
        }),
        (c) => {
          const rng = new Rng(c.seed);
          const causal = c.direction === 'causal';
          const rpe = { past: side(c.past), ...(c.direction !== 'causal' && c.direction !== null ? { future: side(c.direction) } : {}) };
          const config: AttentionConfig = { heads: c.heads, keyDim: c.d, valueDim: c.dv, causal, features: c.features, rpe };
          const q = randomTensor(rng, [c.heads, c.n, c.d]);
          const k = randomTensor(rng, [c.heads, c.n, c.d]);
          const v = randomTensor(rng, [c.heads, c.n, c.dv], c.vScale);
          const z = attention(config, q, k, v, { method: c.method, backend: c.backend, dtype: 'float32', ...(c.block > 0 ? { block: c.block } : {}) });
          expect(z.data).toBeInstanceOf(Float32Array);
          expect(z.shape).toEqual([c.heads, c.n, c.dv]);
          for (const x of z.data) if (!Number.isFinite(x)) throw new Error(`non-finite output ${x}`);
          const err = maxRowError(config, q, k, v, asF64(z));
          if (!(err <= ROW_BAR)) throw new Error(`float32 row error ${err} over the ${ROW_BAR} bar`);
        },
      ),
      { numRuns: 80, seed: 32 },
    );
  });

  it('the FFT path is exercised and mostly kept: long tables with few repaired rows, still under the per-row bar', () => {
    for (const backend of ['js', 'wasm'] as const) {
      const rng = new Rng(7);
      const n = 2000;
      const bias = Array.from({ length: n }, () => -20 + 25 * rng.nextFloat64());
      const config: AttentionConfig = { heads: 1, keyDim: 8, valueDim: 8, features: { kind: 'prf', count: 16, seed: 3 }, rpe: { past: { bias } } };
      const q = randomTensor(rng, [1, n, 8]);
      const k = randomTensor(rng, [1, n, 8]);
      const v = randomTensor(rng, [1, n, 8]);
      const stats: Array<{ method: string; repairedRows: number }> = [];
      const z = attention(config, q, k, v, { backend, dtype: 'float32', method: 'fft', block: 128, onStats: (s) => stats.push(s) });
      expect(stats[0]!.method).toBe('fft');
      expect(stats[0]!.repairedRows).toBeLessThan(n / 10);
      expect(maxRowError(config, q, k, v, asF64(z))).toBeLessThanOrEqual(ROW_BAR);
    }
  });

  it(`benchmark workload: relative RMS <= ${RMS_BAR} vs float64 (WASM at n = 16384, JS at 4096), and at most 2x the error of a plain float32 reference`, () => {
    const n = 16384;
    const { config, q, k, v } = workload(n, 16384);
    const z64 = attention(config, q, k, v, { backend: 'wasm' });
    const z32 = attention(config, q, k, v, { backend: 'wasm', dtype: 'float32' });
    const rms = relRms(z32.data, z64.data, 64);
    expect(rms).toBeLessThanOrEqual(RMS_BAR);
    // the plain float32 formula on rows spread over the sequence (its O(n) per row keeps this affordable)
    const rows = Array.from({ length: 24 }, (_, i) => Math.min(n - 1, Math.round(((i + 0.5) / 24) * n)));
    const plain = plainFloat32Rows(config, q, k, v, rows);
    const truth = Float64Array.from(rows.flatMap((i) => Array.from(z64.data.subarray(i * 64, (i + 1) * 64))));
    const ours = Float64Array.from(rows.flatMap((i) => Array.from(z32.data.subarray(i * 64, (i + 1) * 64))));
    const plainErr = relRms(plain, truth, 64);
    const oursErr = relRms(ours, truth, 64);
    expect(oursErr).toBeLessThanOrEqual(2 * plainErr);

    const small = workload(4096, 4096);
    const s64 = attention(small.config, small.q, small.k, small.v, { backend: 'wasm' });
    const s32 = attention(small.config, small.q, small.k, small.v, { backend: 'js', dtype: 'float32' });
    expect(relRms(s32.data, s64.data, 64)).toBeLessThanOrEqual(RMS_BAR);
  }, 60_000);

  it("'float64' is the default, bit for bit; 'direct' in float32 is the float64 result rounded once", () => {
    const rng = new Rng(5);
    const n = 200;
    const config: AttentionConfig = { heads: 2, keyDim: 4, valueDim: 3, causal: false, features: { kind: 'prf', count: 8, seed: 2 }, rpe: { past: { bias: [0, -1, -2, -3], tail: { decay: 0.1 } } } };
    const q = randomTensor(rng, [2, n, 4]);
    const k = randomTensor(rng, [2, n, 4]);
    const v = randomTensor(rng, [2, n, 3]);
    for (const backend of ['js', 'wasm'] as const) {
      const plain = attention(config, q, k, v, { backend });
      const f64 = attention(config, q, k, v, { backend, dtype: 'float64' });
      expect(plain.data).toBeInstanceOf(Float64Array);
      expect(Array.from(f64.data)).toEqual(Array.from(plain.data));
      const direct = attention(config, q, k, v, { backend, dtype: 'float32', method: 'direct' });
      const direct64 = attention(config, q, k, v, { backend, method: 'direct' });
      expect(Array.from(direct.data)).toEqual(Array.from(Float32Array.from(direct64.data)));
    }
  });

  it('a bad dtype is a ConfigError naming what is expected and what arrived', () => {
    const rng = new Rng(1);
    const config: AttentionConfig = { heads: 1, keyDim: 2, valueDim: 2, features: { kind: 'relu' }, rpe: { past: { bias: [0] } } };
    const t = randomTensor(rng, [1, 3, 2]);
    for (const bad of ['float16', 'f32', 32, 'Float32']) {
      const call = () => attention(config, t, t, t, { dtype: bad as never });
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(/options\.dtype must be 'float64' or 'float32', got /);
    }
  });
});
