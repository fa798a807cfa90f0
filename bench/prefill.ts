// Whole-sequence benchmark: one head, d = dv = m = 64, full-length RPE table, causal.
// FFT (S-form) and direct (A-form) timed side by side in one run; the O(n^2) reference where it is quick.
// Prints a table with ratios, GFLOP/s (direct-equivalent useful flops) and the log-log slope of the FFT path.
import ndarray from 'ndarray';
import { attention, referenceAttention } from '../src/index.js';
import { Rng } from '../src/math/rng.js';
import type { AttentionConfig } from '../src/engine/config.js';

export interface PrefillRow {
  n: number;
  fftSeconds: number;
  directSeconds: number;
  referenceSeconds: number | null;
  speedup: number;
  fftBlock: number;
  repairedRows: number;
  directGflops: number;
  fftEquivalentGflops: number;
  maxAbsDiff: number;
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

export function runPrefill(sizes: number[], log: (line: string) => void = console.log): PrefillRow[] {
  const rng = new Rng(2024);
  const rows: PrefillRow[] = [];
  const d = 64;
  log('| n | FFT s | direct s | reference s | direct/FFT | FFT block | repaired rows | direct GFLOP/s | FFT equiv. GFLOP/s | max abs diff |');
  log('|---|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) {
    // a T5-like decreasing table with wiggles, values in [-20, 5]
    const bias = Array.from({ length: n }, (_, t) => Math.max(-20, 5 - 2 * Math.log1p(t)) + 0.5 * Math.sin(0.7 * t));
    const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
    const q = tensor(rng, [1, n, d]);
    const k = tensor(rng, [1, n, d]);
    const v = tensor(rng, [1, n, d]);
    const reps = n <= 4096 ? 5 : 1;
    const tf: number[] = [];
    const td: number[] = [];
    let block = 0;
    let repaired = 0;
    let zf = attention(config, q, k, v, { method: 'fft' });
    let zd = zf;
    for (let r = 0; r < reps; r++) {
      let t = performance.now();
      zf = attention(config, q, k, v, { method: 'fft', onStats: (s) => { block = s.block; repaired = s.repairedRows; } });
      tf.push((performance.now() - t) / 1000);
      t = performance.now();
      zd = attention(config, q, k, v, { method: 'direct' });
      td.push((performance.now() - t) / 1000);
    }
    let refSeconds: number | null = null;
    if (n <= 4096) {
      const t = performance.now();
      referenceAttention(config, q, k, v);
      refSeconds = (performance.now() - t) / 1000;
    }
    let diff = 0;
    for (let i = 0; i < zf.data.length; i++) diff = Math.max(diff, Math.abs(zf.data[i]! - zd.data[i]!));
    const fft = median(tf);
    const direct = median(td);
    const flops = ((n * (n + 1)) / 2) * 2 * (d + d + 1);
    const row: PrefillRow = {
      n, fftSeconds: fft, directSeconds: direct, referenceSeconds: refSeconds, speedup: direct / fft, fftBlock: block,
      repairedRows: repaired, directGflops: flops / direct / 1e9, fftEquivalentGflops: flops / fft / 1e9, maxAbsDiff: diff,
    };
    rows.push(row);
    log(`| ${n} | ${fft.toFixed(3)} | ${direct.toFixed(3)} | ${refSeconds === null ? '-' : refSeconds.toFixed(3)} | ${row.speedup.toFixed(2)}x | ${block} | ${repaired} | ${row.directGflops.toFixed(2)} | ${row.fftEquivalentGflops.toFixed(2)} | ${diff.toExponential(1)} |`);
  }
  const a = rows.find((r) => r.n === 4096);
  const b = rows.find((r) => r.n === 65536);
  if (a && b) log(`FFT log-log slope 4k -> 64k: ${(Math.log(b.fftSeconds / a.fftSeconds) / Math.log(b.n / a.n)).toFixed(3)} (bar <= 1.2)`);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  runPrefill(sizes.length > 0 ? sizes : [1024, 4096, 16384, 65536]);
}
