// attention() against the paper's algorithm in PyTorch (bench/pytorch/attention_bench.py: the FFT form of
// train/attention.py, float32 and float64, one thread), side by side in one run: rounds alternate ours (WASM
// float64, WASM float32 (dtype 'float32'), JS) and PyTorch's, and medians over rounds are compared.
//   npx tsx bench/pytorch.ts [--quick] [n ...]   (--quick: only ours float64 WASM, ours float32 WASM, PyTorch float32) One head, d = dv = m = 64, full-length RPE table,
// causal. Needs Debian's python3-torch (/usr/bin/python3); without it the suite says so and returns null.
// Times are CPU seconds of the one thread doing the work (process.cpuUsage / time.process_time): on a machine
// shared with other processes (a training run) wall time measures the neighbours as much as the code.
//   npx tsx bench/pytorch.ts --pool [--rounds=R] [n]   two cores: a pool of 2 running ONE float32 head split over
// both workers (pool.attention, dtype 'float32') vs PyTorch float32 on 2 threads (torch.set_num_threads(2)), and
// vs attention() float32 on this thread; WALL time (CPU time cannot show a second core), rounds interleaved,
// medians and the median of the per-round ratios, with the load average (the machine may be shared). Linux's
// autogroup scheduler gives a busy machine's process one share whatever its thread count, so the CPU time of each
// of our threads is read too (/proc/self/task, 10 ms ticks): the pool's critical path (calling thread + busiest
// worker) against the one thread's CPU is the speed-up the pool gives when its threads get whole cores.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import ndarray from 'ndarray';
import { loadavg } from 'node:os';
import { attention, type AttentionConfig } from '../src/index.js';
import { Rng } from '../src/math/rng.js';
import { createPool } from '../src/threads/index.js';

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

function torchSeconds(n: number, dtype: 'float32' | 'float64', threads = 1, clock: 'cpu' | 'wall' = 'cpu'): number | null {
  const r = spawnSync(PYTHON, [SCRIPT, '--n', String(n), '--repeats', '1', '--dtype', dtype, '--threads', String(threads)], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return null;
  const line = r.stdout.trim().split('\n').pop()!;
  const o = JSON.parse(line) as { cpu_seconds: number; seconds: number; threads: number };
  if (o.threads !== threads) throw new Error(`PyTorch ran on ${o.threads} threads, asked for ${threads}`);
  return clock === 'cpu' ? o.cpu_seconds : o.seconds;
}

function hasTorch(log: (s: string) => void): boolean {
  if (!existsSync(PYTHON) || spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) {
    log('PyTorch not found (apt-get install -y python3-torch libopenblas0-pthread; run with /usr/bin/python3): skipped');
    return false;
  }
  return true;
}

/** CPU ticks (user + system, 1/100 s) of every thread of this process, by thread id; empty without /proc. */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // utime, stime: fields 14, 15
      out.set(tid, Number(f[11]) + Number(f[12]));
    }
  } catch {
    // not Linux
  }
  return out;
}

/** Seconds of CPU on the critical path of f: the calling thread's plus the busiest other thread's (NaN without /proc). */
async function criticalCpu(f: () => unknown): Promise<number> {
  const a = threadTicks();
  await f();
  const b = threadTicks();
  if (b.size === 0) return NaN;
  let other = 0;
  for (const [tid, x] of b) if (tid !== String(process.pid)) other = Math.max(other, x - (a.get(tid) ?? 0));
  return ((b.get(String(process.pid))! - (a.get(String(process.pid)) ?? 0)) + other) / 100;
}

/** The two-core row: pool of 2, one float32 head split over both workers, vs PyTorch float32 on 2 threads. */
export interface PoolVersusRow {
  n: number;
  /** wall seconds, medians over rounds */
  poolSeconds: number;
  singleSeconds: number;
  torch2Seconds: number;
  /** medians of the per-round ratios (> 1: the pool is faster) */
  torch2OverPool: number;
  singleOverPool: number;
  /** one thread's CPU seconds / the pool's critical-path CPU seconds (median of rounds' ratios) */
  singleOverPoolCpu: number;
  rounds: number;
  loadBefore: number[];
  loadAfter: number[];
}

export async function runPoolVersusPytorch(n: number, rounds = 7, log: (s: string) => void = console.log): Promise<PoolVersusRow | null> {
  if (!hasTorch(log)) return null;
  const d = 64;
  const rng = new Rng(n);
  const data = (len: number) => Float64Array.from({ length: len }, () => rng.nextGaussian());
  const bias = Array.from({ length: n }, () => -2 * rng.nextFloat64());
  const config: AttentionConfig = { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias } } };
  const q = ndarray(data(n * d), [1, n, d]);
  const k = ndarray(data(n * d), [1, n, d]);
  const v = ndarray(data(n * d), [1, n, d]);
  const options = { backend: 'wasm' as const, dtype: 'float32' as const };
  const pool = createPool({ threads: 2 });
  try {
    await pool.ready();
    // warm-up, and the pool's result is attention()'s bit for bit, from a split head
    const want = attention(config, q, k, v, options);
    const before = pool.splitCount;
    const got = await pool.attention(config, q, k, v, options);
    if (pool.splitCount !== before + 1) throw new Error('the pool did not split the head');
    if (!Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength))) {
      throw new Error('pool float32 result differs from attention() float32');
    }
    const loadBefore = loadavg();
    const t = { pool: [] as number[], single: [] as number[], torch: [] as number[], poolCpu: [] as number[], singleCpu: [] as number[] };
    const wall = async (f: () => unknown): Promise<number> => {
      const s = performance.now();
      await f();
      return (performance.now() - s) / 1e3;
    };
    const cases = [
      async () => void t.poolCpu.push(await criticalCpu(async () => t.pool.push(await wall(() => pool.attention(config, q, k, v, options))))),
      async () => void t.singleCpu.push(await criticalCpu(async () => t.single.push(await wall(() => attention(config, q, k, v, options))))),
      async () => {
        const x = torchSeconds(n, 'float32', 2, 'wall');
        if (x === null) throw new Error('PyTorch run failed');
        t.torch.push(x);
      },
    ];
    for (let r = 0; r < rounds; r++) for (const c of r % 2 === 0 ? cases : cases.slice().reverse()) await c();
    const loadAfter = loadavg();
    const ratios = (a: number[], b: number[]) => a.map((x, i) => x / b[i]!);
    const row: PoolVersusRow = {
      n,
      poolSeconds: median(t.pool),
      singleSeconds: median(t.single),
      torch2Seconds: median(t.torch),
      torch2OverPool: median(ratios(t.torch, t.pool)),
      singleOverPool: median(ratios(t.single, t.pool)),
      singleOverPoolCpu: median(ratios(t.singleCpu, t.poolCpu)),
      rounds,
      loadBefore,
      loadAfter,
    };
    const f = (xs: number[]) => `[${xs.map((x) => x.toFixed(3)).join(', ')}]`;
    log(`two cores, n = ${n}, one head, d = m = dv = 64, full table, causal; WALL seconds, ${rounds} interleaved rounds; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after`);
    log('| n | pool of 2, f32 split, wall s | attention() f32, one thread, wall s | PyTorch f32, 2 threads, wall s | PyTorch 2T / pool | one thread / pool |');
    log('|---|---|---|---|---|---|');
    log(`| ${n} | ${row.poolSeconds.toFixed(3)} | ${row.singleSeconds.toFixed(3)} | ${row.torch2Seconds.toFixed(3)} | ${row.torch2OverPool.toFixed(2)}x (of medians ${(row.torch2Seconds / row.poolSeconds).toFixed(2)}x) | ${row.singleOverPool.toFixed(2)}x (of medians ${(row.singleSeconds / row.poolSeconds).toFixed(2)}x) |`);
    log(`  rounds: pool ${f(t.pool)}, one thread ${f(t.single)}, PyTorch 2T ${f(t.torch)}`);
    log(`  per-round ratios: PyTorch 2T / pool ${f(ratios(t.torch, t.pool))}, one thread / pool ${f(ratios(t.single, t.pool))}`);
    log(`  CPU (10 ms ticks): pool critical path (calling thread + busiest worker) ${f(t.poolCpu)}, one thread ${f(t.singleCpu)}; one thread / pool, median of rounds: ${row.singleOverPoolCpu.toFixed(2)}x (the speed-up with whole cores)`);
    return row;
  } finally {
    await pool.close();
  }
}

export function runVersusPytorch(sizes: number[], rounds = 3, log: (s: string) => void = console.log, quick = false): VersusRow[] | null {
  if (!hasTorch(log)) return null;
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
  if (process.argv.includes('--pool')) void runPoolVersusPytorch(sizes[0] ?? 16384, Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 7));
  else runVersusPytorch(sizes.length > 0 ? sizes : [4096, 16384], rounds, console.log, quick);
}
