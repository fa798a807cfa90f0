// attention() sizes its WASM workspace from declared layouts (the call's arrays, the largest pass's scratch, every
// distinct FFT plan size): a fresh workspace of exactly that size never runs out, over heads with different RPE
// lengths (different blocks, so several plan sizes in one call), both directions, all feature maps, methods, forced
// blocks and both dtypes. A missing term (the old '+ 256' slack hid them) fails here as "WASM workspace is full".
import { describe, expect, it } from 'vitest';
import ndarray from 'ndarray';
import { attention, referenceAttention, type AttentionConfig } from '../../src/index.js';
import { acquireWorkspace } from '../../src/backend/index.js';
import { wasmSupported } from '../../src/backend/wasm.js';
import { Rng } from '../../src/math/rng.js';

describe.runIf(wasmSupported())('attention() workspace sizing (WASM)', () => {
  it('a fresh workspace of the planned size suffices for every call', () => {
    const rng = new Rng(17);
    let worst = 0;
    for (let t = 0; t < 90; t++) {
      const heads = 1 + Math.floor(rng.nextFloat64() * 3);
      const d = 1 + Math.floor(rng.nextFloat64() * 7);
      const dv = 1 + Math.floor(rng.nextFloat64() * 7);
      const n = 1 + Math.floor(rng.nextFloat64() * (t % 9 === 0 ? 1500 : 300));
      const causal = rng.nextFloat64() < 0.6;
      const side = () => ({ bias: Array.from({ length: 1 + Math.floor(rng.nextFloat64() * n * 1.2) }, () => -3 * rng.nextFloat64()), tail: rng.nextFloat64() < 0.5 ? ('clip' as const) : { decay: 0.1 } });
      const rpe = Array.from({ length: heads }, () => (causal ? { past: side() } : { past: side(), future: side() }));
      const kind = (['prf', 'elu+1', 'relu'] as const)[t % 3]!;
      const features: AttentionConfig['features'] = kind === 'prf' ? { kind, count: 1 + Math.floor(rng.nextFloat64() * 10), seed: t } : { kind };
      const config: AttentionConfig = { heads, keyDim: d, valueDim: dv, causal, features, rpe };
      const g = (len: number) => Float64Array.from({ length: len }, () => rng.nextGaussian());
      const q = ndarray(g(heads * n * d), [heads, n, d]);
      const k = ndarray(g(heads * n * d), [heads, n, d]);
      const v = ndarray(g(heads * n * dv), [heads, n, dv]);
      const want = t % 10 === 0 ? referenceAttention(config, q, k, v).data : null;
      for (const dtype of ['float64', 'float32'] as const) {
        const method = (['auto', 'fft', 'direct'] as const)[(t + (dtype === 'float32' ? 1 : 0)) % 3]!;
        const block = method === 'fft' && t % 2 === 0 ? 16 << Math.floor(rng.nextFloat64() * 4) : 0;
        acquireWorkspace('wasm', 1); // take the idle workspace away: the call sizes a fresh one from its plan
        const z = attention(config, q, k, v, { backend: 'wasm', method, dtype, ...(block > 0 ? { block } : {}) });
        if (want !== null) for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(z.data[i]! - want[i]!));
      }
    }
    expect(worst).toBeLessThan(1e-3); // the calls computed what they should, not only that they fit
  });
});
