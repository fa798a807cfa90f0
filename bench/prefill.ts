// Whole-sequence benchmark: one head, d = dv = m = 64, full-length RPE table, causal.
// FFT (S-form) on both backends and direct (A-form, WASM) timed side by side in one run (CPU seconds of this
// process: the work is single-threaded); the O(n^2) reference where it is quick.
// Prints a table with ratios, GFLOP/s (direct-equivalent useful flops) and the log-log slope of the FFT path.
import ndarray from 'ndarray';
import { attention, referenceAttention } from '../src/index.js';
import { Rng } from '../src/math/rng.js';
import type { AttentionConfig } from '../src/engine/config.js';

export interface PrefillRow {
  n: number;
  /** the S-form on the WASM backend (what 'auto' picks here) */
  fftSeconds: number;
  /** the S-form on the JS backend */
  fftJsSeconds: number;
  /** the A-form on the WASM backend */
  directSeconds: number;
  referenceSeconds: number | null;
  /** direct / FFT, both WASM */
  speedup: number;
  /** JS FFT / WASM FFT */
  wasmOverJs: number;
  fftBlock: number;
  repairedRows: number;
  directGflops: number;
  fftEquivalentGflops: number;
  /** max |FFT - direct| (WASM) and max |WASM - JS| (FFT) */
  maxAbsDiff: number;
  maxBackendDiff: number;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function tensor(rng: Rng, shape: number[]) {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.nextGaussian();
  return ndarray(data, shape);
}

/** CPU seconds of this process spent in fn (one thread works here; robust to other processes on the machine). */
export function cpuSeconds(fn: () => void): number {
  const s = process.cpuUsage();
  fn();
  const u = process.cpuUsage(s);
  return (u.user + u.system) / 1e6;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e;
}

export function runPrefill(sizes: number[], log: (line: string) => void = console.log): PrefillRow[] {
  const rng = new Rng(2024);
  const rows: PrefillRow[] = [];
  const d = 64;
  log('| n | FFT WASM s | FFT JS s | WASM/JS | direct WASM s | reference s | direct/FFT | FFT block | repaired rows | FFT equiv. GFLOP/s | max abs diff FFT-direct | WASM-JS |');
  log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) {
    // a T5-like decreasing table with wiggles, values in [-20, 5]
    const bias = Array.from({ length: n }, (_, t) => Math.max(-20, 5 - 2 * Math.log1p(t)) + 0.5 * Math.sin(0.7 * t));
    const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
    const q = tensor(rng, [1, n, d]);
    const k = tensor(rng, [1, n, d]);
    const v = tensor(rng, [1, n, d]);
    const reps = n <= 4096 ? 5 : 3;
    const tf: number[] = [];
    const tj: number[] = [];
    const td: number[] = [];
    let block = 0;
    let repaired = 0;
    let zf = attention(config, q, k, v, { method: 'fft', backend: 'wasm' });
    let zj = zf;
    let zd = zf;
    for (let r = 0; r < reps; r++) {
      tf.push(cpuSeconds(() => (zf = attention(config, q, k, v, { method: 'fft', backend: 'wasm', onStats: (s) => { block = s.block; repaired = s.repairedRows; } }))));
      tj.push(cpuSeconds(() => (zj = attention(config, q, k, v, { method: 'fft', backend: 'js' }))));
      if (r < (n >= 65536 ? 1 : reps)) td.push(cpuSeconds(() => (zd = attention(config, q, k, v, { method: 'direct', backend: 'wasm' }))));
    }
    let refSeconds: number | null = null;
    if (n <= 4096) {
      refSeconds = cpuSeconds(() => referenceAttention(config, q, k, v));
    }
    const fft = median(tf);
    const direct = median(td);
    const flops = ((n * (n + 1)) / 2) * 2 * (d + d + 1);
    const row: PrefillRow = {
      n, fftSeconds: fft, fftJsSeconds: median(tj), directSeconds: direct, referenceSeconds: refSeconds, speedup: direct / fft,
      wasmOverJs: median(tj) / fft, fftBlock: block, repairedRows: repaired, directGflops: flops / direct / 1e9,
      fftEquivalentGflops: flops / fft / 1e9, maxAbsDiff: maxDiff(zf.data, zd.data), maxBackendDiff: maxDiff(zf.data, zj.data),
    };
    rows.push(row);
    log(`| ${n} | ${fft.toFixed(3)} | ${row.fftJsSeconds.toFixed(3)} | ${row.wasmOverJs.toFixed(2)}x | ${direct.toFixed(3)} | ${refSeconds === null ? '-' : refSeconds.toFixed(3)} | ${row.speedup.toFixed(2)}x | ${block} | ${repaired} | ${row.fftEquivalentGflops.toFixed(1)} | ${row.maxAbsDiff.toExponential(1)} | ${row.maxBackendDiff.toExponential(1)} |`);
  }
  const a = rows.find((r) => r.n === 4096);
  const b = rows.find((r) => r.n === 65536);
  if (a && b) log(`FFT (WASM) log-log slope 4k -> 64k: ${(Math.log(b.fftSeconds / a.fftSeconds) / Math.log(b.n / a.n)).toFixed(3)} (bar <= 1.2)`);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  runPrefill(sizes.length > 0 ? sizes : [1024, 4096, 16384, 65536]);
}
