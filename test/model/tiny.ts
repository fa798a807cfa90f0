// Shared by the model tests: tiny random-weight models written with the library's own safetensors writer,
// and the slow, obviously-correct twin of the forward pass (DESIGN section 9 read literally).
import { checkModelConfig, createModel, encodeModel, loadModel, randomWeights, type Model, type ModelConfig } from '../../src/model/index.js';

export function tinyConfig(over: Partial<Omit<ModelConfig, 'format'>> = {}): ModelConfig {
  return checkModelConfig({
    vocab: 256, dim: 16, layers: 2, heads: 2, keyDim: 4, valueDim: 4, hidden: 24,
    features: { kind: 'prf', count: 6, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true,
    ...over,
  });
}

/** A tiny random model, round-tripped through safetensors bytes (F64 so the weights stay exact). */
export function tinyModel(seed = 1, over: Partial<Omit<ModelConfig, 'format'>> = {}): Model {
  const cfg = tinyConfig(over);
  return loadModel(encodeModel(cfg, randomWeights(cfg, seed), { dtype: 'F64', info: { note: 'random test model' } }));
}

export function tinyModelInMemory(seed = 1, over: Partial<Omit<ModelConfig, 'format'>> = {}): Model {
  const cfg = tinyConfig(over);
  return createModel(cfg, randomWeights(cfg, seed));
}

export function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Logits [n, vocab] straight from the formulas: loops, unshifted features, the O(n^2) attention sum. */
export function referenceLogits(model: Model, tokens: ArrayLike<number>): Float64Array {
  const c = model.config;
  const w = model.weights;
  const { dim, heads, keyDim: d, valueDim: dv, hidden, vocab } = c;
  const m = c.features.count;
  const K = c.rpe.length;
  const n = tokens.length;
  const matvec = (W: Float64Array, x: number[], rows: number): number[] =>
    Array.from({ length: rows }, (_, r) => x.reduce((s, xi, j) => s + W[r * x.length + j]! * xi, 0));
  const rms = (x: number[], g: Float64Array): number[] => {
    const r = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + c.normEps);
    return x.map((v, j) => v * r * g[j]!);
  };
  let xs: number[][] = Array.from(tokens, (t) => Array.from(w.tokEmbeddings.subarray(t * dim, (t + 1) * dim)));
  for (const L of w.layers) {
    const a = xs.map((x) => rms(x, L.attentionNorm));
    const q = a.map((x) => matvec(L.wq, x, heads * d));
    const k = a.map((x) => matvec(L.wk, x, heads * d));
    const v = a.map((x) => matvec(L.wv, x, heads * dv));
    const phi = (x: number[]): number[] => {
      const norm = Math.sqrt(x.reduce((s, e) => s + e * e, 0));
      const xt = x.map((e) => (norm > 0 ? e / norm : 0));
      const sq = xt.reduce((s, e) => s + e * e, 0);
      return Array.from({ length: m }, (_, r) => Math.exp(xt.reduce((s, e, j) => s + L.projection[r * d + j]! * e, 0) - sq / 2) / Math.sqrt(m));
    };
    const z = xs.map(() => new Array<number>(heads * dv).fill(0));
    for (let h = 0; h < heads; h++) {
      const pq = q.map((row) => phi(row.slice(h * d, (h + 1) * d)));
      const pk = k.map((row) => phi(row.slice(h * d, (h + 1) * d)));
      for (let i = 0; i < n; i++) {
        let den = 0;
        const num = new Array<number>(dv).fill(0);
        for (let j = 0; j <= i; j++) {
          // b(t) past the table: clipped (v1), or decayed at the head's rate (v2)
          const past = Math.max(0, i - j - K + 1) * (c.rpe.tail === 'decay' ? L.rpeDecay![h]! : 0);
          const wgt = Math.exp(L.rpeBias[h * K + Math.min(i - j, K - 1)]! - past) * pq[i]!.reduce((s, e, r) => s + e * pk[j]![r]!, 0);
          den += wgt;
          for (let col = 0; col < dv; col++) num[col] = num[col]! + wgt * v[j]![h * dv + col]!;
        }
        for (let col = 0; col < dv; col++) z[i]![h * dv + col] = den === 0 ? 0 : num[col]! / den;
      }
    }
    xs = xs.map((x, i) => {
      const o = matvec(L.wo, z[i]!, dim);
      const x1 = x.map((e, j) => e + o[j]!);
      const b = rms(x1, L.ffnNorm);
      const h1 = matvec(L.w1, b, hidden);
      const h3 = matvec(L.w3, b, hidden);
      const g = h1.map((u, j) => (u / (1 + Math.exp(-u))) * h3[j]!);
      const f = matvec(L.w2, g, dim);
      return x1.map((e, j) => e + f[j]!);
    });
  }
  const out = new Float64Array(n * vocab);
  xs.forEach((x, i) => out.set(matvec(w.output, rms(x, w.norm), vocab), i * vocab));
  return out;
}

/** max over rows of max_j |a - b| / max_j |b| (the per-row relative error of the fixture bar). */
export function maxRowRelError(a: Float64Array, b: Float64Array, width: number): number {
  let worst = 0;
  for (let r = 0; r < b.length / width; r++) {
    let num = 0;
    let den = 0;
    for (let j = 0; j < width; j++) {
      num = Math.max(num, Math.abs(a[r * width + j]! - b[r * width + j]!));
      den = Math.max(den, Math.abs(b[r * width + j]!));
    }
    worst = Math.max(worst, den === 0 ? num : num / den);
  }
  return worst;
}
