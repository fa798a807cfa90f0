// Soak: 1M tokens (m = dv = d = 64, K = 512, clipped tail) through the Decoder in chunks, checking sampled
// outputs against an exact O(position) single-query sum (compensated), with RSS at start and end and tokens/s.
// Run: npm run soak  (TOKENS=... to change the length).
// DTYPE=float32 npm run soak: the same stream through a float32 decoder (dtype 'float32') beside a float64 one;
// every output row of the float32 decoder is compared with the float64 decoder's (bar 1e-4 per row, normwise),
// and the sampled rows with the exact sum too (bar 1e-4). STEPS=1: the float32 decoder takes every token by
// step (its ring and per-token far field), the float64 one still by chunks.
import ndarray from 'ndarray';
import { Decoder } from '../src/index.js';
import type { AttentionConfig } from '../src/engine/config.js';
import { Rng } from '../src/math/rng.js';
import { plainFeatures } from '../src/math/features.js';

const d = 64, K = 512, L = 4096;
const total = Number(process.env.TOKENS ?? 1_000_000);
const bias = Array.from({ length: K }, (_, t) => -0.5 * Math.log1p(t));
const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias, tail: 'clip' } } };

/** The stream is regenerated from its seed, chunk by chunk, so the reference never holds it all. */
function chunkAt(index: number) {
  const rng = new Rng(1000 + index);
  const mk = () => { const a = new Float64Array(L * d); for (let i = 0; i < a.length; i++) a[i] = rng.nextGaussian(); return a; };
  return { q: mk(), k: mk(), v: mk() };
}

function exactAt(dec: Decoder, i: number): Float64Array {
  const f = dec.config.features;
  const ci = Math.floor(i / L);
  const qRow = chunkAt(ci).q.subarray((i % L) * d, (i % L + 1) * d);
  const phiQ = new Float64Array(d);
  plainFeatures(f, d, qRow, 1, phiQ);
  const num = new Float64Array(d), cNum = new Float64Array(d);
  let den = 0, cDen = 0;
  const phiK = new Float64Array(L * d);
  for (let c = 0; c <= ci; c++) {
    const { k, v } = chunkAt(c);
    plainFeatures(f, d, k, L, phiK);
    const jEnd = Math.min(L, i - c * L + 1);
    for (let u = 0; u < jEnd; u++) {
      const j = c * L + u;
      let s = 0;
      for (let r = 0; r < d; r++) s += phiQ[r]! * phiK[u * d + r]!;
      const w = Math.exp(bias[Math.min(i - j, K - 1)]!) * s;
      let y = w - cDen, t = den + y; cDen = (t - den) - y; den = t;
      for (let col = 0; col < d; col++) {
        y = w * v[u * d + col]! - cNum[col]!; t = num[col]! + y; cNum[col] = (t - num[col]!) - y; num[col] = t;
      }
    }
  }
  return num.map((x) => x / den);
}

const float32 = process.env.DTYPE === 'float32';
const steps = process.env.STEPS === '1';
const bar = float32 ? 1e-4 : 1e-9;
const dec = new Decoder(config, float32 ? { dtype: 'float32' } : {});
// float32: a float64 decoder on the same inputs, every row compared (max over rows of max_col |z32 - z64| / max_col |z64|)
const twin = float32 ? new Decoder(config) : null;
let worstTwin = 0;
let windowTwin = 0;
const rss0 = process.memoryUsage().rss;
const samples = new Set<number>();
for (let s = 1; s <= 6; s++) samples.add(Math.floor((s * total) / 6 / L) - 1);
let worst = 0;
let computeSeconds = 0;
const t0 = performance.now();
for (let c = 0; c * L < total; c++) {
  const { q, k, v } = chunkAt(c);
  const t = performance.now();
  let z: ndarray.NdArray<Float64Array>;
  if (steps) {
    z = ndarray(new Float64Array(L * d), [1, L, d]);
    for (let i = 0; i < L; i++) dec.stepRows(q, i * d, k, i * d, v, i * d, z.data, i * d);
  } else {
    z = dec.chunk(ndarray(q, [1, L, d]), ndarray(k, [1, L, d]), ndarray(v, [1, L, d]));
  }
  computeSeconds += (performance.now() - t) / 1000;
  if (twin !== null) {
    const z64 = twin.chunk(ndarray(q, [1, L, d]), ndarray(k, [1, L, d]), ndarray(v, [1, L, d]));
    for (let i = 0; i < L; i++) {
      let e = 0, s = 0;
      for (let col = 0; col < d; col++) {
        e = Math.max(e, Math.abs(z.data[i * d + col]! - z64.data[i * d + col]!));
        s = Math.max(s, Math.abs(z64.data[i * d + col]!));
      }
      const r = s === 0 ? (e === 0 ? 0 : Infinity) : e / s;
      if (!(r <= windowTwin)) windowTwin = Number.isNaN(r) ? Infinity : r;
    }
    worstTwin = Math.max(worstTwin, windowTwin);
  }
  if (samples.has(c)) {
    const i = c * L + L - 1;
    const ref = exactAt(dec, i);
    let e = 0, s = 0;
    for (let col = 0; col < d; col++) { e = Math.max(e, Math.abs(z.get(0, L - 1, col) - ref[col]!)); s = Math.max(s, Math.abs(ref[col]!)); }
    worst = Math.max(worst, e / s);
    const vsTwin = twin !== null ? `, max row error vs float64 decoder since the last sample ${windowTwin.toExponential(2)}` : '';
    windowTwin = 0;
    console.log(`position ${i + 1}: normwise rel error ${(e / s).toExponential(2)}${vsTwin}, near field ${steps ? 'ring (steps)' : dec.lastStats[0]?.method}, state ${dec.stateBytes} B, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  }
}
const wall = (performance.now() - t0) / 1000;
console.log(`tokens ${dec.position}, decoder ${(dec.position / computeSeconds).toFixed(0)} tokens/s (wall with checks ${wall.toFixed(0)} s)`);
console.log(`max sampled error ${worst.toExponential(2)} (bar ${bar}); RSS start ${(rss0 / 2 ** 20).toFixed(0)} MiB, end ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
if (twin !== null) console.log(`dtype float32: max row error vs the float64 decoder over all ${dec.position} rows ${worstTwin.toExponential(2)} (bar 1e-4)`);
if (!(worst <= bar) || !(worstTwin <= 1e-4)) process.exitCode = 1;
