// The ceiling of splitting one head over two cores: each half of a split attention() call (the pool's two
// workers, threads/exchange.ts) run alone on this thread, CPU time, against the whole call. The halves' exchanges
// are replayed from recordings (half 1's channel rows, each half's feature map), and half 0's result is checked
// against attention()'s bit for bit. whole / max(half 0, half 1) is the pool's speed-up with whole cores, before
// messaging and the calling thread's checks and copies.
//   npx tsx bench/split-halves.ts [float32|float64]   (n = 16384, one head, d = m = dv = 64, full table, WASM)
import ndarray from 'ndarray';
import { attention, type AttentionConfig } from '../src/index.js';
import { attentionSplit } from '../src/engine/attention.js';
import type { ChannelSplit } from '../src/math/fftconv.js';
import { Rng } from '../src/math/rng.js';
const n = 16384, d = 64;
const rng = new Rng(n);
const data = (len: number) => Float64Array.from({ length: len }, () => rng.nextGaussian());
const bias = Array.from({ length: n }, () => -2 * rng.nextFloat64());
const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
const q = ndarray(data(n * d), [1, n, d]), k = ndarray(data(n * d), [1, n, d]), v = ndarray(data(n * d), [1, n, d]);
const dtype = (process.argv[2] ?? 'float32') as 'float32' | 'float64';
const options = { backend: 'wasm' as const, dtype };
const cpu = (f: () => void) => { const s = process.cpuUsage(); f(); const u = process.cpuUsage(s); return (u.user + u.system) / 1e6; };
const med = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const want = attention(config, q, k, v, options);
// record each half's own feature map (the other's is garbage in these runs)
const feats: Float64Array[] = [new Float64Array(0), new Float64Array(0)];
for (const half of [0, 1] as const) attentionSplit(config, q, k, v, options, { half, exchange: () => {}, swapFeatures: (mine) => void (feats[half] = mine.slice()) });
let uppers: Array<Float64Array | Float32Array> = [];
const t = { whole: [] as number[], h0: [] as number[], h1: [] as number[] };
for (let r = 0; r < 7; r++) {
  t.whole.push(cpu(() => attention(config, q, k, v, options)));
  uppers = [];
  t.h1.push(cpu(() => attentionSplit(config, q, k, v, options, { half: 1, exchange: (u, l) => void uppers.push(u.slice(0, l)), swapFeatures: (_m, theirs) => theirs.set(feats[0]!) })));
  let e = 0;
  let z: any;
  t.h0.push(cpu(() => (z = attentionSplit(config, q, k, v, options, { half: 0, exchange: (u, l) => u.set(uppers[e++]!.subarray(0, l)), swapFeatures: (_m, theirs) => theirs.set(feats[1]!) }))));
  if (!Buffer.from(z.data.buffer).equals(Buffer.from(want.data.buffer))) throw new Error('halves differ');
}
console.log(dtype, 'CPU s, medians of 7: whole', med(t.whole).toFixed(3), 'half0', med(t.h0).toFixed(3), 'half1', med(t.h1).toFixed(3), 'ceiling', (med(t.whole) / Math.max(med(t.h0), med(t.h1))).toFixed(2));
