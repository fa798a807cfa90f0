// attention()'s dtype 'float32' on the benchmark workload (one head, d = dv = m = 64, full-length table of biases in
// [-2, 0], l2 PRF, causal), against the float64 result of the same call, WASM: relative RMS (the contract is
// <= 1e-5, DESIGN section 7), worst per-row error relative to mean |v|, repaired rows, and CPU seconds of both
// (interleaved rounds, medians). The test suite checks n = 16384; this runs the longer ones.
//   npx tsx bench/float32.ts [n ...]     (default 16384 65536)
import ndarray from 'ndarray';
import { attention, type AttentionConfig } from '../src/index.js';
import { Rng } from '../src/math/rng.js';

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function cpu<T>(f: () => T): [T, number] {
  const s = process.cpuUsage();
  const r = f();
  const u = process.cpuUsage(s);
  return [r, (u.user + u.system) / 1e6];
}

export function runFloat32(sizes: number[], rounds = 3, log: (s: string) => void = console.log): void {
  const d = 64;
  log('| n | relative RMS vs float64 | worst row error / mean abs(v) | repaired rows | float64 WASM CPU s | float32 WASM CPU s | ratio |');
  log('|---|---|---|---|---|---|---|');
  for (const n of sizes) {
    const rng = new Rng(n);
    const data = (len: number) => Float64Array.from({ length: len }, () => rng.nextGaussian());
    const bias = Array.from({ length: n }, () => -2 * rng.nextFloat64());
    const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
    const q = ndarray(data(n * d), [1, n, d]);
    const k = ndarray(data(n * d), [1, n, d]);
    const v = ndarray(data(n * d), [1, n, d]);
    const t64: number[] = [];
    const t32: number[] = [];
    let z64 = attention(config, q, k, v, { backend: 'wasm' });
    let repaired = 0;
    let z32 = attention(config, q, k, v, { backend: 'wasm', dtype: 'float32' });
    for (let r = 0; r < rounds; r++) {
      let t: number;
      [z64, t] = cpu(() => attention(config, q, k, v, { backend: 'wasm' }));
      t64.push(t);
      [z32, t] = cpu(() => attention(config, q, k, v, { backend: 'wasm', dtype: 'float32', onStats: (s) => (repaired = s.repairedRows) }));
      t32.push(t);
    }
    let e2 = 0;
    let r2 = 0;
    let vAbs = 0;
    for (const x of v.data) vAbs += Math.abs(x);
    vAbs /= v.data.length;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      let e = 0;
      for (let c = 0; c < d; c++) {
        const a = z32.data[i * d + c]!;
        const b = z64.data[i * d + c]!;
        e2 += (a - b) ** 2;
        r2 += b * b;
        e = Math.max(e, Math.abs(a - b));
      }
      worst = Math.max(worst, e / vAbs);
    }
    log(`| ${n} | ${Math.sqrt(e2 / r2).toExponential(2)} | ${worst.toExponential(2)} | ${repaired} | ${median(t64).toFixed(3)} | ${median(t32).toFixed(3)} | ${(median(t64) / median(t32)).toFixed(2)}x |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  runFloat32(sizes.length > 0 ? sizes : [16384, 65536]);
}
