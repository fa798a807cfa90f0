// Decoder.stepRows (the model's per-token entry: flat rows, no ndarray views) against step(): the same bits,
// the same typed errors with the state unchanged, and no sizing work per token once the rings are full (less garbage).
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it, vi } from 'vitest';
import ndarray from 'ndarray';
import { Decoder, ShapeError } from '../../src/index.js';
import type { AttentionConfig } from '../../src/engine/config.js';
import { Rng } from '../../src/math/rng.js';

const BACKENDS = ['js', 'wasm'] as const;

// two heads with different windows (one with a geometric far field, one clipped), PRF features
const config: AttentionConfig = {
  heads: 2,
  keyDim: 5,
  valueDim: 3,
  features: { kind: 'prf', count: 6, seed: 11 },
  rpe: [{ past: { bias: Array.from({ length: 9 }, (_, t) => -0.3 * t), tail: { decay: 0.25 } } }, { past: { bias: Array.from({ length: 70 }, (_, t) => -0.05 * t), tail: 'clip' } }],
};
const H = 2;
const D = 5;
const DV = 3;

function rows(rng: Rng, n: number, scale: number): Float64Array {
  return Float64Array.from({ length: n }, () => scale * (2 * rng.nextFloat64() - 1));
}

describe('Decoder.stepRows', () => {
  for (const backend of BACKENDS) {
    it(`${backend}: the same bits as step() over 200 tokens (rings filled and wrapping, far field), at offsets`, () => {
      const a = new Decoder(config, { backend });
      const b = new Decoder(config, { backend });
      const rng = new Rng(5);
      const z = new Float64Array(3 + H * DV);
      for (let t = 0; t < 200; t++) {
        // q, k, v in one buffer at offsets, as a caller's row arrays might be
        const buf = rows(rng, 7 + 2 * H * D + H * DV, t === 150 ? 40 : 3);
        const za = a.step(ndarray(buf, [H, D], [D, 1], 7), ndarray(buf, [H, D], [D, 1], 7 + H * D), ndarray(buf, [H, DV], [DV, 1], 7 + 2 * H * D));
        b.stepRows(buf, 7, buf, 7 + H * D, buf, 7 + 2 * H * D, z, 3);
        for (let i = 0; i < H * DV; i++) expect(Object.is(z[3 + i], za.data[i])).toBe(true);
      }
      expect(b.position).toBe(200);
      expect(b.exportState()).toEqual(a.exportState());
    });

    it(`${backend}: bad rows are typed errors and change nothing`, () => {
      const dec = new Decoder(config, { backend });
      const twin = new Decoder(config, { backend });
      const rng = new Rng(9);
      const q = rows(rng, H * D, 1);
      const k = rows(rng, H * D, 1);
      const v = rows(rng, H * DV, 1);
      const z = new Float64Array(H * DV);
      dec.stepRows(q, 0, k, 0, v, 0, z, 0);
      twin.stepRows(q, 0, k, 0, v, 0, z, 0);
      const before = dec.exportState();
      const bad = k.slice();
      bad[H * D - 1] = NaN;
      expect(() => dec.stepRows(q, 0, bad, 0, v, 0, z, 0)).toThrow(/k must hold finite numbers, got NaN at index \[1, 4\]/);
      const inf = v.slice();
      inf[0] = -Infinity;
      expect(() => dec.stepRows(q, 0, k, 0, inf, 0, z, 0)).toThrow(ShapeError);
      expect(() => dec.stepRows(q, 1, k, 0, v, 0, z, 0)).toThrow(/q must be a Float64Array with 2 x 5 = 10 entries from offset 1, got length 10/);
      expect(() => dec.stepRows(q, 0, k, 0.5, v, 0, z, 0)).toThrow(ShapeError);
      expect(() => dec.stepRows(q, 0, k, 0, new Float32Array(H * DV) as unknown as Float64Array, 0, z, 0)).toThrow(/v must be a Float64Array/);
      expect(() => dec.stepRows(q, 0, k, 0, v, 0, z, -1)).toThrow(/z must be a Float64Array with \[heads=2, valueDim=3\]/);
      expect(() => dec.stepRows(q, 0, k, 0, v, 0, new Float64Array(H * DV - 1), 0)).toThrow(ShapeError);
      expect(dec.exportState()).toEqual(before);
      // and it continues exactly as one that never saw the bad calls
      const za = new Float64Array(H * DV);
      const zb = new Float64Array(H * DV);
      dec.stepRows(k, 0, q, 0, v, 0, za, 0);
      twin.stepRows(k, 0, q, 0, v, 0, zb, 0);
      expect(Array.from(za)).toEqual(Array.from(zb));
    });
  }

  it('wasm: once the rings hold their whole windows, a step does no sizing work (its garbage is bounded)', async () => {
    // before: a full ring sent every step through the resizing path (ring capacities, workspace sizing): ~800
    // bytes per step on this config (~1,350 before the batched features). What is left (~350) is V8 boxing float64
    // arguments and results of calls it does not inline (16 bytes each).
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const dec = new Decoder(config, { backend: 'wasm' });
    const rng = new Rng(3);
    const q = rows(rng, H * D, 1);
    const k = rows(rng, H * D, 1);
    const v = rows(rng, H * DV, 1);
    const z = new Float64Array(H * DV);
    for (let t = 0; t < 5000; t++) dec.stepRows(q, 0, k, 0, v, 0, z, 0); // both rings full, code optimized
    // no sizing work: the workspace's size is not recomputed per step (it was, on every step with a full ring)
    const sizing = vi.spyOn(dec as unknown as { persistentLayout: (caps: number[]) => unknown }, 'persistentLayout');
    for (let t = 0; t < 100; t++) dec.stepRows(q, 0, k, 0, v, 0, z, 0);
    expect(sizing).not.toHaveBeenCalled();
    sizing.mockRestore();
    // The garbage is counted on a twin the spy never touched (installing and removing an own property changes an
    // object's hidden class, which deoptimizes the code specialized on it). It is the steady state's: on a loaded
    // machine (CI runs test files side by side on 2 cores) the optimizing compiler works on a background thread and
    // may not have installed the step's code within the first trials, and unoptimized code boxes every float64
    // (~800 bytes a step, as much as the sizing path did). So the least count over up to 40 trials, with a pause
    // between them for the compiler; anything else the process allocates meanwhile only adds.
    const twin = new Decoder(config, { backend: 'wasm' });
    for (let t = 0; t < 5000; t++) twin.stepRows(q, 0, k, 0, v, 0, z, 0);
    const N = 1000;
    let perStep = Infinity;
    for (let trial = 0; trial < 40 && perStep >= 550; trial++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
      const h0 = v8.getHeapStatistics().used_heap_size;
      for (let t = 0; t < N; t++) twin.stepRows(q, 0, k, 0, v, 0, z, 0);
      perStep = Math.min(perStep, (v8.getHeapStatistics().used_heap_size - h0) / N);
    }
    expect(perStep).toBeLessThan(550);
  });
});
