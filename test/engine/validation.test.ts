import { describe, expect, it } from 'vitest';
import ndarray from 'ndarray';
import { attention, referenceAttention } from '../../src/engine/attention.js';
import { resolveConfig, type AttentionConfig } from '../../src/engine/config.js';
import { ConfigError, ShapeError, ToeplitzAttentionError } from '../../src/core/errors.js';
import { checkTensor } from '../../src/engine/tensor.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';

const base: AttentionConfig = {
  heads: 2,
  keyDim: 4,
  valueDim: 3,
  features: { kind: 'prf', count: 8, seed: 1 },
  rpe: { past: { bias: [0, -1], tail: 'clip' } },
};

function withConfig(patch: Record<string, unknown>): AttentionConfig {
  return { ...base, ...patch } as AttentionConfig;
}

function withFeatures(patch: Record<string, unknown>): AttentionConfig {
  return { ...base, features: { kind: 'prf', count: 8, seed: 1, ...patch } } as AttentionConfig;
}

function withPast(patch: Record<string, unknown>): AttentionConfig {
  return { ...base, rpe: { past: { bias: [0, -1], ...patch } } } as AttentionConfig;
}

/** Throws an instance of `cls` (and of the common base class) whose message matches `re`. */
function expectError(fn: () => unknown, cls: typeof ConfigError | typeof ShapeError, re: RegExp): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(ToeplitzAttentionError);
  expect(caught).toBeInstanceOf(Error);
  expect((caught as Error).name).toBe(cls.name);
  expect((caught as Error).message).toMatch(re);
}

function configError(config: unknown, re: RegExp): void {
  expectError(() => resolveConfig(config as AttentionConfig), ConfigError, re);
}

describe('resolveConfig validation', () => {
  it('accepts the base config', () => {
    expect(resolveConfig(base).heads).toBe(2);
  });

  it('config itself', () => {
    configError(null, /config must be an object \{ heads, keyDim, valueDim, causal\?, features, rpe \}, got null/);
    configError(7, /config must be an object .*got 7/);
  });

  it('heads, keyDim, valueDim', () => {
    configError(withConfig({ heads: 0 }), /^heads must be an integer in \[1, 4096\], got 0$/);
    configError(withConfig({ heads: 1.5 }), /heads must be an integer in \[1, 4096\], got 1.5/);
    configError(withConfig({ heads: 5000 }), /heads must be an integer in \[1, 4096\], got 5000/);
    configError(withConfig({ heads: '2' }), /heads must be an integer in \[1, 4096\], got "2"/);
    configError(withConfig({ heads: undefined }), /heads must be an integer .*got undefined/);
    configError(withConfig({ keyDim: -1 }), /keyDim must be an integer in \[1, 65536\], got -1/);
    configError(withConfig({ keyDim: NaN }), /keyDim must be an integer in \[1, 65536\], got NaN/);
    configError(withConfig({ valueDim: 0 }), /valueDim must be an integer in \[1, 65536\], got 0/);
    configError(withConfig({ valueDim: Infinity }), /valueDim must be an integer in \[1, 65536\], got Infinity/);
  });

  it('causal', () => {
    configError(withConfig({ causal: 'yes' }), /causal must be a boolean, got "yes"/);
    configError(withConfig({ causal: 1 }), /causal must be a boolean, got 1/);
  });

  it('features object and kind', () => {
    configError(withConfig({ features: null }), /features must be an object \{ kind: 'prf' \| 'elu\+1' \| 'relu', \.\.\. \}, got null/);
    configError(withConfig({ features: 'prf' }), /features must be an object .*got "prf"/);
    configError(withConfig({ features: { kind: 'softmax' } }), /features.kind must be 'prf', 'elu\+1' or 'relu', got "softmax"/);
    configError(withConfig({ features: {} }), /features.kind must be .*got undefined/);
  });

  it('features.count < 1, non-integer, too large', () => {
    configError(withFeatures({ count: 0 }), /features.count must be an integer in \[1, 65536\], got 0/);
    configError(withFeatures({ count: -3 }), /features.count must be an integer in \[1, 65536\], got -3/);
    configError(withFeatures({ count: 2.5 }), /features.count must be an integer in \[1, 65536\], got 2.5/);
    configError(withFeatures({ count: NaN }), /features.count must be an integer in \[1, 65536\], got NaN/);
    configError(withFeatures({ count: 70000 }), /features.count must be an integer in \[1, 65536\], got 70000/);
    configError(withFeatures({ count: undefined }), /features.count must be an integer .*got undefined/);
  });

  it('features.normalize, orthogonal, seed', () => {
    configError(withFeatures({ normalize: 'l1' }), /features.normalize must be 'l2', 'scale' or 'none', got "l1"/);
    configError(withFeatures({ normalize: 2 }), /features.normalize must be 'l2', 'scale' or 'none', got 2/);
    configError(withFeatures({ orthogonal: 'yes' }), /features.orthogonal must be a boolean, got "yes"/);
    configError(withFeatures({ seed: NaN }), /features.seed must be a finite number, got NaN/);
    configError(withFeatures({ seed: Infinity }), /features.seed must be a finite number, got Infinity/);
    configError(withFeatures({ seed: '1' }), /features.seed must be a finite number, got "1"/);
  });

  it('features.projection: type, length, non-finite', () => {
    configError(withFeatures({ projection: [1, 2] }), /features.projection must be a Float64Array or Float32Array of count x keyDim = 32 entries, got an array of length 2/);
    configError(withFeatures({ projection: new Int32Array(32) }), /features.projection must be a Float64Array or Float32Array .*32 entries, got a Int32Array of length 32/);
    configError(withFeatures({ projection: new Float32Array(31) }), /features.projection must hold count x keyDim = 8 x 4 = 32 entries, got 31/);
    // a Float32Array W (as numpy float32 models carry it) is accepted and widened exactly
    const w32 = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i) * 1.5);
    const resolved = resolveConfig(withFeatures({ projection: w32 }) as AttentionConfig);
    expect(resolved.features.kind === 'prf' && Array.from(resolved.features.projection)).toEqual(Array.from(w32));
    configError(withFeatures({ projection: new Float64Array(31) }), /features.projection must hold count x keyDim = 8 x 4 = 32 entries, got 31/);
    configError(withFeatures({ projection: new Float64Array(33) }), /= 32 entries, got 33/);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = new Float64Array(32).fill(0.5);
      w[13] = bad;
      configError(withFeatures({ projection: w }), new RegExp(`features.projection\\[13\\] must be finite, got ${String(bad)}`));
    }
    // a valid projection is accepted and copied
    const w = new Float64Array(32).fill(0.25);
    const cfg = resolveConfig(withFeatures({ projection: w }));
    w[0] = 9;
    expect(cfg.features.kind === 'prf' && cfg.features.projection[0]).toBe(0.25);
  });

  it('rpe array length != heads, non-object entries', () => {
    configError(withConfig({ rpe: [{ past: { bias: [0] } }] }), /rpe must be one spec or an array of one per head \(2\), got an array of length 1/);
    configError(withConfig({ rpe: [] }), /array of one per head \(2\), got an array of length 0/);
    configError(withConfig({ rpe: [{ past: { bias: [0] } }, { past: { bias: [0] } }, { past: { bias: [0] } }] }), /one per head \(2\), got an array of length 3/);
    configError(withConfig({ rpe: null }), /^rpe must be an object \{ past, future\? \}, got null/);
    configError(withConfig({ rpe: [{ past: { bias: [0] } }, 3] }), /rpe\[1\] must be an object \{ past, future\? \}, got 3/);
    configError(withConfig({ rpe: {} }), /rpe.past must be an object \{ bias, tail\? \}, got undefined/);
  });

  it('bias: not an array, empty, NaN, +Infinity; -Infinity allowed', () => {
    configError(withPast({ bias: 3 }), /rpe.past.bias must be an array of numbers, got 3/);
    configError(withPast({ bias: undefined }), /rpe.past.bias must be an array of numbers, got undefined/);
    configError(withPast({ bias: [] }), /rpe.past.bias must hold 1 to \d+ entries, got 0/);
    configError(withPast({ bias: [0, NaN] }), /rpe.past.bias\[1\] must be a finite number or -Infinity, got NaN/);
    configError(withPast({ bias: [0, -1, Infinity] }), /rpe.past.bias\[2\] must be a finite number or -Infinity, got Infinity/);
    configError(withPast({ bias: [0, '1'] }), /rpe.past.bias\[1\] must be a finite number or -Infinity, got "1"/);
    configError(
      withConfig({ causal: false, rpe: { past: { bias: [0] }, future: { bias: [NaN] } } }),
      /rpe.future.bias\[0\] must be a finite number or -Infinity, got NaN/,
    );
    configError(
      withConfig({ rpe: [{ past: { bias: [0] } }, { past: { bias: [Infinity] } }] }),
      /rpe\[1\].past.bias\[0\] must be a finite number or -Infinity, got Infinity/,
    );
    const ok = resolveConfig(withPast({ bias: [0, -Infinity, -Infinity] }));
    expect(ok.past[0]!.logBias[1]).toBe(-Infinity);
    expect(resolveConfig(withPast({ bias: new Float32Array([0, -1]) })).past[0]!.logBias[1]).toBe(-1);
  });

  it('tail: negative or NaN decay, unknown kinds', () => {
    configError(withPast({ tail: { decay: -0.5 } }), /rpe.past.tail.decay must be a finite number >= 0, got -0.5/);
    configError(withPast({ tail: { decay: NaN } }), /rpe.past.tail.decay must be a finite number >= 0, got NaN/);
    configError(withPast({ tail: { decay: Infinity } }), /rpe.past.tail.decay must be a finite number >= 0, got Infinity/);
    configError(withPast({ tail: { decay: '1' } }), /rpe.past.tail.decay must be a finite number >= 0, got "1"/);
    configError(withPast({ tail: 'wrap' }), /rpe.past.tail must be 'clip', 'zero' or \{ decay: rate \}, got "wrap"/);
    configError(withPast({ tail: {} }), /rpe.past.tail must be 'clip', 'zero' or \{ decay: rate \}, got an object with keys \[\]/);
    configError(
      withConfig({ causal: false, rpe: { past: { bias: [0] }, future: { bias: [0], tail: { decay: -1 } } } }),
      /rpe.future.tail.decay must be a finite number >= 0, got -1/,
    );
    configError(withConfig({ causal: false, rpe: { past: { bias: [0] }, future: 5 } }), /rpe.future must be an object \{ bias, tail\? \}, got 5/);
    expect(resolveConfig(withPast({ tail: { decay: 0 } })).past[0]!.tail).toEqual({ kind: 'decay', rate: 0 });
  });
});

describe('tensor validation (checkTensor through attention)', () => {
  const rng = new Rng(3);
  const n = 5;
  const q = randomTensor(rng, [2, n, 4]);
  const k = randomTensor(rng, [2, n, 4]);
  const v = randomTensor(rng, [2, n, 3]);

  function shapeError(fn: () => unknown, re: RegExp): void {
    expectError(fn, ShapeError, re);
  }

  it('accepts valid inputs, including Float32 data and strided views', () => {
    expect(attention(base, q, k, v).shape).toEqual([2, n, 3]);
    const q32 = randomTensor(rng, [2, n, 4], 1, 'f32');
    const k32 = randomTensor(rng, [2, n, 4], 1, 'f32');
    const v32 = randomTensor(rng, [2, n, 3], 1, 'f32');
    const z = attention(base, q32, k32, v32);
    expect(z.data).toBeInstanceOf(Float64Array);
    expect(Array.from(z.data).every(Number.isFinite)).toBe(true);
    // a transposed view (valid strides) is accepted
    const qt = ndarray(new Float64Array(2 * n * 4).fill(0.1), [2, 4, n]).transpose(0, 2, 1);
    expect(attention(base, qt, k, v).shape).toEqual([2, n, 3]);
  });

  it('non-ndarray and non-float data', () => {
    shapeError(() => attention(base, null as never, k, v), /q must be an ndarray of shape \[heads=2, n, keyDim=4\], got null/);
    shapeError(() => attention(base, q, 'k' as never, v), /k must be an ndarray of shape \[heads=2, n=5, keyDim=4\], got "k"/);
    shapeError(() => attention(base, ndarray(new Int32Array(40), [2, 5, 4]) as never, k, v), /q must be an ndarray over a Float64Array or Float32Array, got data a Int32Array of length 40/);
    shapeError(() => attention(base, ndarray(new Array(40).fill(0), [2, 5, 4]) as never, k, v), /q must be an ndarray over a Float64Array or Float32Array, got data an array of length 40/);
    shapeError(() => attention(base, q, k, { data: new Float64Array(30), shape: [2, 5, 3] } as never), /v must be an ndarray with matching shape and stride arrays, got shape an array of length 3 and stride undefined/);
  });

  it('wrong rank', () => {
    shapeError(() => attention(base, ndarray(new Float64Array(8), [2, 4]), k, v), /q must have rank 3 with shape \[heads=2, n, keyDim=4\], got rank 2 with shape \[2, 4\]/);
    shapeError(() => attention(base, q, ndarray(new Float64Array(40), [1, 2, 5, 4]), v), /k must have rank 3 with shape \[heads=2, n=5, keyDim=4\], got rank 4 with shape \[1, 2, 5, 4\]/);
  });

  it('wrong sizes, heads mismatch, n mismatch between q/k/v', () => {
    shapeError(() => attention(base, ndarray(new Float64Array(5 * 4), [1, 5, 4]), k, v), /q must have shape \[heads=2, n, keyDim=4\], got \[1, 5, 4\]/);
    shapeError(() => attention(base, q, ndarray(new Float64Array(30), [3, 5, 2]), v), /k must have shape \[heads=2, n=5, keyDim=4\], got \[3, 5, 2\]/);
    shapeError(() => attention(base, q, k, ndarray(new Float64Array(40), [2, 5, 4])), /v must have shape \[heads=2, n=5, valueDim=3\], got \[2, 5, 4\]/);
    shapeError(() => attention(base, q, ndarray(new Float64Array(48), [2, 6, 4]), v), /k must have shape \[heads=2, n=5, keyDim=4\], got \[2, 6, 4\]/);
    shapeError(() => attention(base, q, k, ndarray(new Float64Array(24), [2, 4, 3])), /v must have shape \[heads=2, n=5, valueDim=3\], got \[2, 4, 3\]/);
    shapeError(() => attention(base, ndarray(new Float64Array(32), [2, 4, 4]), k, v), /k must have shape \[heads=2, n=4, keyDim=4\], got \[2, 5, 4\]/);
    shapeError(() => referenceAttention(base, q, k, ndarray(new Float64Array(24), [2, 4, 3])), /v must have shape \[heads=2, n=5, valueDim=3\], got \[2, 4, 3\]/);
  });

  it('NaN and Infinity in q/k/v, reported at their index', () => {
    for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const copy = ndarray(Float64Array.from(t.data), t.shape.slice());
        copy.set(1, 3, 2, bad);
        const args = { q, k, v, [name]: copy };
        shapeError(() => attention(base, args.q, args.k, args.v), new RegExp(`^${name} must hold finite numbers, got ${String(bad)} at index \\[1, 3, 2\\]$`));
      }
    }
    // Float32 data with NaN, in a strided (transposed) view: the index is the logical one
    const data = new Float32Array(2 * 4 * n).fill(0.5);
    const view = ndarray(data, [2, 4, n]).transpose(0, 2, 1); // logical [2, n, 4]
    view.set(0, 4, 1, NaN);
    shapeError(() => attention(base, view, k, v), /q must hold finite numbers, got NaN at index \[0, 4, 1\]/);
  });

  it('out-of-bounds and non-integer strides, bad offsets', () => {
    const short = ndarray(new Float64Array(39), [2, 5, 4], [20, 4, 1]);
    shapeError(() => attention(base, short, k, v), /q has a view \(shape \[2, 5, 4\], stride \[20, 4, 1\], offset 0\) reaching outside its data of length 39/);
    const offset = ndarray(new Float64Array(40), [2, 5, 4], [20, 4, 1], 1);
    shapeError(() => attention(base, q, offset, v), /k has a view \(shape \[2, 5, 4\], stride \[20, 4, 1\], offset 1\) reaching outside its data of length 40/);
    const negative = ndarray(new Float64Array(30), [2, 5, 3], [15, -3, 1], 0);
    shapeError(() => attention(base, q, k, negative), /v has a view \(shape \[2, 5, 3\], stride \[15, -3, 1\], offset 0\) reaching outside its data of length 30/);
    const frac = { data: new Float64Array(40), shape: [2, 5, 4], stride: [20, 4, 0.5], offset: 0 };
    shapeError(() => attention(base, frac as never, k, v), /q has a non-integer stride 0.5/);
    const badOffset = { data: new Float64Array(40), shape: [2, 5, 4], stride: [20, 4, 1], offset: 0.5 };
    shapeError(() => attention(base, badOffset as never, k, v), /q must be an ndarray with matching shape and stride arrays/);
    const mismatch = { data: new Float64Array(40), shape: [2, 5, 4], stride: [20, 4], offset: 0 };
    shapeError(() => attention(base, mismatch as never, k, v), /q must be an ndarray with matching shape and stride arrays, got shape an array of length 3 and stride an array of length 2/);
    // a reversed view that stays in bounds is accepted
    const reversed = ndarray(Float64Array.from(v.data), [2, 5, 3], [15, -3, 1], 12);
    expect(attention(base, q, k, reversed).shape).toEqual([2, 5, 3]);
  });

  it('checkTensor directly: non-integer and negative sizes', () => {
    shapeError(() => checkTensor('x', { data: new Float64Array(4), shape: [2, -2], stride: [2, 1], offset: 0 }, [2, 'n']), /x must have shape \[2, n\], got \[2, -2\]/);
    shapeError(() => checkTensor('x', { data: new Float64Array(4), shape: [2, 1.5], stride: [2, 1], offset: 0 }, [2, 'n']), /x must have shape \[2, n\], got \[2, 1.5\]/);
    expect(checkTensor('x', ndarray(new Float64Array(4), [2, 2]), [2, 'n']).shape).toEqual([2, 2]);
  });
});

describe('options validation', () => {
  const rng = new Rng(4);
  const q = randomTensor(rng, [2, 5, 4]);
  const k = randomTensor(rng, [2, 5, 4]);
  const v = randomTensor(rng, [2, 5, 3]);

  it('options.method', () => {
    expectError(() => attention(base, q, k, v, { method: 'fast' as never }), ConfigError, /options.method must be 'auto', 'fft' or 'direct', got "fast"/);
    expectError(() => attention(base, q, k, v, { method: 42 as never }), ConfigError, /options.method must be 'auto', 'fft' or 'direct', got 42/);
  });

  it('options.block', () => {
    expectError(() => attention(base, q, k, v, { block: 8 }), ConfigError, /options.block must be a power of two >= 16, got 8/);
    expectError(() => attention(base, q, k, v, { block: 24 }), ConfigError, /options.block must be a power of two >= 16, got 24/);
    expectError(() => attention(base, q, k, v, { block: 16.5 }), ConfigError, /options.block must be a power of two >= 16, got 16.5/);
    expectError(() => attention(base, q, k, v, { block: NaN }), ConfigError, /options.block must be a power of two >= 16, got NaN/);
    expectError(() => attention(base, q, k, v, { block: -16 }), ConfigError, /options.block must be a power of two >= 16, got -16/);
    expect(attention(base, q, k, v, { block: 16, method: 'fft' }).shape).toEqual([2, 5, 3]);
  });

  it('config errors surface through attention as ConfigError before tensors are looked at', () => {
    expectError(() => attention(withFeatures({ count: 0 }), null as never, null as never, null as never), ConfigError, /features.count must be an integer in \[1, 65536\], got 0/);
  });
});
