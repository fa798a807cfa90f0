// attention() against the paper's algorithm in PyTorch (bench/pytorch/attention_bench.py: the FFT form of
// train/attention.py, float32 and float64, one thread), side by side in one run: rounds alternate ours (WASM
// float64, WASM float32 (dtype 'float32'), JS) and PyTorch's, and medians over rounds are compared.
//   npx tsx bench/pytorch.ts [--quick] [n ...]   (--quick: only ours float64 WASM, ours float32 WASM, PyTorch float32) One head, d = dv = m = 64, full-length RPE table,
// causal. Needs Debian's python3-torch (/usr/bin/python3); without it the suite says so and returns null.
// Times are CPU seconds of the one thread doing the work (process.cpuUsage / time.process_time): on a machine
// shared with other processes (a training run) wall time measures the neighbours as much as the code.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import ndarray from 'ndarray';
import { attention, type AttentionConfig } from '../src/index.js';
import { Rng } from '../src/math/rng.js';

export interface VersusRow {
  n: number;
  wasmSeconds: number;
  /** ours, dtype 'float32', WASM */
  wasm32Seconds: number;
  jsSeconds: number;
  torchFloat32Seconds: number;
  torchFloat64Seconds: number;
  /** torch float32 / ours (WASM): > 1 means ours is faster */
  speedupVsTorch32: number;
  speedupVsTorch64: number;
  wasmOverJs: number;
  /** torch float32 / ours float32 (WASM): the bar is >= 2 at n = 16384 */
  speedupF32VsTorch32: number;
  /** ours float64 / ours float32 (WASM) */
  f32OverF64: number;
}

const PYTHON = '/usr/bin/python3';
const SCRIPT = new URL('./pytorch/attention_bench.py', import.meta.url).pathname;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function torchSeconds(n: number, dtype: 'float32' | 'float64'): number | null {
  const r = spawnSync(PYTHON, [SCRIPT, '--n', String(n), '--repeats', '1', '--dtype', dtype], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: '1' },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return null;
  const line = r.stdout.trim().split('\n').pop()!;
  return (JSON.parse(line) as { cpu_seconds: number }).cpu_seconds;
}

export function runVersusPytorch(sizes: number[], rounds = 3, log: (s: string) => void = console.log, quick = false): VersusRow[] | null {
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) {
    log('PyTorch not found (apt-get install -y python3-torch libopenblas0-pthread; run with /usr/bin/python3): skipped');
    return null;
  }
  const d = 64;
  const rows: VersusRow[] = [];
  log('| n | ours WASM CPU s | ours WASM f32 CPU s | ours JS CPU s | PyTorch f32 CPU s | PyTorch f64 CPU s | vs PyTorch f32 | f32 vs PyTorch f32 | vs PyTorch f64 | WASM / JS |');
  log('|---|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) {
    const rng = new Rng(n);
    const data = (len: number) => Float64Array.from({ length: len }, () => rng.nextGaussian());
    const bias = Array.from({ length: n }, () => -2 * rng.nextFloat64());
    const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
    const q = ndarray(data(n * d), [1, n, d]);
    const k = ndarray(data(n * d), [1, n, d]);
    const v = ndarray(data(n * d), [1, n, d]);
    const t = { wasm: [] as number[], wasm32: [] as number[], js: [] as number[], f32: [] as number[], f64: [] as number[] };
    attention(config, q, k, v, { backend: 'wasm' }); // warm-up (compile, plans)
    attention(config, q, k, v, { backend: 'wasm', dtype: 'float32' });
    const cpu = (f: () => void): number => {
      const s = process.cpuUsage();
      f();
      const u = process.cpuUsage(s);
      return (u.user + u.system) / 1e6;
    };
    for (let r = 0; r < rounds; r++) {
      t.wasm.push(cpu(() => attention(config, q, k, v, { backend: 'wasm' })));
      t.wasm32.push(cpu(() => attention(config, q, k, v, { backend: 'wasm', dtype: 'float32' })));
      if (!quick) t.js.push(cpu(() => attention(config, q, k, v, { backend: 'js' })));
      const a = torchSeconds(n, 'float32');
      const b = quick ? null : torchSeconds(n, 'float64');
      if (a !== null) t.f32.push(a);
      if (b !== null) t.f64.push(b);
    }
    const nan = (xs: number[]) => (xs.length === 0 ? NaN : median(xs));
    const row: VersusRow = {
      n,
      wasmSeconds: median(t.wasm),
      wasm32Seconds: median(t.wasm32),
      jsSeconds: nan(t.js),
      torchFloat32Seconds: nan(t.f32),
      torchFloat64Seconds: nan(t.f64),
      speedupVsTorch32: nan(t.f32) / median(t.wasm),
      speedupVsTorch64: nan(t.f64) / median(t.wasm),
      wasmOverJs: nan(t.js) / median(t.wasm),
      speedupF32VsTorch32: nan(t.f32) / median(t.wasm32),
      f32OverF64: median(t.wasm) / median(t.wasm32),
    };
    rows.push(row);
    log(`| ${n} | ${row.wasmSeconds.toFixed(3)} | ${row.wasm32Seconds.toFixed(3)} | ${row.jsSeconds.toFixed(3)} | ${row.torchFloat32Seconds.toFixed(3)} | ${row.torchFloat64Seconds.toFixed(3)} | ${row.speedupVsTorch32.toFixed(2)}x | ${row.speedupF32VsTorch32.toFixed(2)}x | ${row.speedupVsTorch64.toFixed(2)}x | ${row.wasmOverJs.toFixed(2)}x |`);
    log(`  rounds (CPU s): ours f64 WASM [${t.wasm.map((x) => x.toFixed(3)).join(', ')}], ours f32 WASM [${t.wasm32.map((x) => x.toFixed(3)).join(', ')}], PyTorch f32 [${t.f32.map((x) => x.toFixed(3)).join(', ')}]`);
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((x) => x > 0);
  const quick = process.argv.includes('--quick');
  const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
  runVersusPytorch(sizes.length > 0 ? sizes : [4096, 16384], rounds, console.log, quick);
}
