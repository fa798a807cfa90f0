// The main demo (npm start): a long causal stream decoded with bounded state, a checkpoint and a resume
// with a bit-identical continuation, and a check against whole-sequence attention() with the measured error.
// DEMO_SMALL=1 (or SMALL=1) runs a tiny version for CI.
import ndarray, { type NdArray } from 'ndarray';
import cliProgress from 'cli-progress';
import { attention, Decoder, rpe } from '../src/index.js';
import type { AttentionConfig } from '../src/index.js';
import { Rng } from '../src/math/rng.js';

const small = process.env.DEMO_SMALL === '1' || process.env.SMALL === '1';
const heads = 4, d = 32, dv = 32, m = 32;
const n = small ? 4096 : 65536;
const chunk = 512;
const K = 256;

// T5-style decreasing biases over a window of 256 lags, clipped beyond: bounded state
const bias = Array.from({ length: K }, (_, t) => -0.6 * Math.log1p(t));
const config: AttentionConfig = { heads, keyDim: d, valueDim: dv, features: { kind: 'prf', count: m, seed: 7 }, rpe: { past: { bias, tail: 'clip' } } };

function tensor(rng: Rng, shape: number[]): NdArray<Float64Array> {
  const data = new Float64Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.nextGaussian();
  return ndarray(data, shape);
}
const slice = (t: NdArray, p: number, L: number) => t.lo(0, p, 0).hi(heads, L, t.shape[2]!);

const rng = new Rng(1);
const q = tensor(rng, [heads, n, d]);
const k = tensor(rng, [heads, n, d]);
const v = tensor(rng, [heads, n, dv]);

console.log(`toeplitz-attention demo: ${n.toLocaleString()} tokens, ${heads} heads, m = ${m}, dv = ${dv}, RPE window K = ${K} (clipped tail)\n`);
const dec = new Decoder(config);
const z = new Float64Array(heads * n * dv);
const bar = new cliProgress.SingleBar({ format: 'decoding |{bar}| {value}/{total} tokens  {rate} tokens/s  state {state}', hideCursor: true, noTTYOutput: true, notTTYSchedule: 2000 }, cliProgress.Presets.shades_classic);
bar.start(n, 0, { rate: 0, state: '-' });
const t0 = performance.now();
let checkpoint: Uint8Array | null = null;
const half = n / 2;
const hasSnapshots = typeof (dec as unknown as { snapshot?: unknown }).snapshot === 'function';
for (let p = 0; p < n; p += chunk) {
  if (p === half && hasSnapshots) checkpoint = (dec as unknown as { snapshot(): Uint8Array }).snapshot();
  // the first chunks go token by token (decode), the rest in chunks (prefill)
  if (p < 2 * chunk) {
    for (let i = p; i < p + chunk; i++) {
      const out = dec.step(slice(q, i, 1).pick(null, 0, null), slice(k, i, 1).pick(null, 0, null), slice(v, i, 1).pick(null, 0, null));
      for (let h = 0; h < heads; h++) for (let c = 0; c < dv; c++) z[(h * n + i) * dv + c] = out.get(h, c);
    }
  } else {
    const out = dec.chunk(slice(q, p, chunk), slice(k, p, chunk), slice(v, p, chunk));
    for (let h = 0; h < heads; h++) z.set(out.data.subarray(h * chunk * dv, (h + 1) * chunk * dv), (h * n + p) * dv);
  }
  const secs = (performance.now() - t0) / 1000;
  bar.update(p + chunk, { rate: Math.round((p + chunk) / secs), state: `${(dec.stateBytes / 1024).toFixed(0)} KiB` });
}
bar.stop();
const secs = (performance.now() - t0) / 1000;
console.log(`\ndecoded ${dec.position.toLocaleString()} tokens in ${secs.toFixed(1)} s (${Math.round(n / secs).toLocaleString()} tokens/s); state ${dec.stateBytes.toLocaleString()} bytes, the same at any position`);

if (checkpoint !== null) {
  const Restorable = Decoder as unknown as { restore(b: Uint8Array): Decoder };
  const resumed = Restorable.restore(checkpoint);
  let identical = true;
  for (let p = half; p < n; p += chunk) {
    const out = resumed.chunk(slice(q, p, chunk), slice(k, p, chunk), slice(v, p, chunk));
    for (let h = 0; h < heads && identical; h++) {
      for (let i = 0; i < chunk * dv; i++) if (!Object.is(out.data[h * chunk * dv + i], z[(h * n + p) * dv + i])) { identical = false; break; }
    }
  }
  console.log(`checkpoint at token ${half.toLocaleString()}: ${checkpoint.length.toLocaleString()} bytes; resumed in a fresh decoder: continuation ${identical ? 'bit-identical' : 'DIFFERENT'}`);
  if (!identical) process.exitCode = 1;
} else {
  console.log('checkpoint/resume: snapshots are not available in this build');
}

const t1 = performance.now();
const whole = attention(config, q, k, v);
let worst = 0;
for (let i = 0; i < z.length; i++) worst = Math.max(worst, Math.abs(z[i]! - whole.data[i]!));
console.log(`whole-sequence attention(): ${((performance.now() - t1) / 1000).toFixed(1)} s; max |stream - whole| = ${worst.toExponential(2)}`);
if (!(worst < 1e-9)) process.exitCode = 1;
