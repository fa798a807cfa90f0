// Kernel benchmark: the JS backend against the WASM SIMD backend, side by side in one process (interleaved rounds,
// medians), on the engine's hot kernels. Run: npx tsx bench/kernels.ts   (SMALL=1: smaller and fewer rounds).
// Prints a table and writes bench/results/kernels.json. WASM arrays live in the workspace's memory (the way the
// engine uses it); JS arrays are plain Float64Arrays. Both warm up first (JS and WASM reach their optimizing tiers).
// Each batch is timed in wall-clock and in CPU time of this process (process.cpuUsage): on a shared machine the CPU
// time is the steadier measure (time slices lost to other processes do not count), so the ratios use it; the wall
// medians are in the JSON too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { JsWorkspace } from '../src/backend/js.js';
import { createWasmWorkspace, wasmSupported, type WasmWorkspace } from '../src/backend/wasm.js';
import type { Workspace } from '../src/backend/types.js';
import { partitionKernel, sformRows, spectralMac } from '../src/math/fftconv.js';
import { Rng } from '../src/math/rng.js';

const small = process.env.SMALL === '1';
const ROUNDS = small ? 5 : 15;
const BATCH_MS = small ? 10 : 25;
const WARM_MS = small ? 100 : 400;

export interface KernelRow {
  kernel: string;
  size: string;
  /** median CPU seconds per call */
  jsSeconds: number;
  wasmSeconds: number;
  /** jsSeconds / wasmSeconds */
  ratio: number;
  /** median wall-clock seconds per call, and their ratio */
  jsWallSeconds: number;
  wasmWallSeconds: number;
  wallRatio: number;
  /** floating-point operations of one call (0 when not meaningful) */
  flops: number;
  jsGflops: number | null;
  wasmGflops: number | null;
}

type Case = {
  kernel: string;
  size: string;
  flops: number;
  make: (ws: Workspace) => () => void;
  /** the WASM side when it differs from make(wasm) (a fused kernel against the JS loop it replaces) */
  makeWasm?: (ws: WasmWorkspace) => () => void;
  /** fewer rounds for slow cases */
  rounds?: number;
};

const rng = new Rng(20240611);
function fill(a: Float64Array, lo = -1, hi = 1): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = lo + (hi - lo) * rng.nextFloat64();
  return a;
}
/** A random array of `n` in ws, the same values for both backends (drawn from a seed per name). */
const cache = new Map<string, Float64Array>();
function data(ws: Workspace, name: string, n: number, lo = -1, hi = 1): Float64Array {
  let src = cache.get(name);
  if (src === undefined || src.length !== n) {
    src = fill(new Float64Array(n), lo, hi);
    cache.set(name, src);
  }
  const a = ws.f64(n);
  a.set(src);
  return a;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

/** Calls per batch so that one batch takes about BATCH_MS. */
function calibrate(fn: () => void): number {
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= BATCH_MS / 4 || reps >= 1 << 20) return Math.max(1, Math.round((reps * BATCH_MS) / Math.max(dt, 1e-3)));
    reps *= 4;
  }
}

/** [wall, cpu] seconds per call over one batch. */
function timeBatch(fn: () => void, reps: number): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  const wall = (performance.now() - t0) / 1000 / reps;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1e6 / reps];
}

/** Run fn for about ms (at least twice): JS and WASM code both reach their optimizing tier before timing. */
function warm(fn: () => void, ms: number): void {
  const t0 = performance.now();
  let n = 0;
  while (n < 2 || performance.now() - t0 < ms) {
    fn();
    n++;
  }
}

function runCase(c: Case, capacity: number): KernelRow {
  const js = new JsWorkspace();
  const wasm = createWasmWorkspace(capacity);
  const fj = c.make(js);
  const fw = c.makeWasm !== undefined ? c.makeWasm(wasm) : c.make(wasm);
  warm(fj, WARM_MS);
  warm(fw, WARM_MS);
  const rj = calibrate(fj);
  const rw = calibrate(fw);
  const tj: Array<[number, number]> = [];
  const tw: Array<[number, number]> = [];
  for (let r = 0; r < (c.rounds ?? ROUNDS); r++) {
    tj.push(timeBatch(fj, rj));
    tw.push(timeBatch(fw, rw));
  }
  const jsSeconds = median(tj.map((t) => t[1]));
  const wasmSeconds = median(tw.map((t) => t[1]));
  const jsWallSeconds = median(tj.map((t) => t[0]));
  const wasmWallSeconds = median(tw.map((t) => t[0]));
  return {
    kernel: c.kernel,
    size: c.size,
    jsSeconds,
    wasmSeconds,
    ratio: jsSeconds / wasmSeconds,
    jsWallSeconds,
    wasmWallSeconds,
    wallRatio: jsWallSeconds / wasmWallSeconds,
    flops: c.flops,
    jsGflops: c.flops > 0 ? c.flops / jsSeconds / 1e9 : null,
    wasmGflops: c.flops > 0 ? c.flops / wasmSeconds / 1e9 : null,
  };
}

function aformRowsCase(nb: number, window: number, m: number, dv: number): Case {
  let pairs = 0;
  for (let b = 0; b < nb; b++) pairs += Math.min(window, b + 1);
  return {
    kernel: 'aformRows',
    size: `nb=${nb} window=${window} m=dv=${m}`,
    flops: pairs * (2 * m + 2 * (dv + 1) + 1),
    make: (ws) => {
      const c = data(ws, `c${window}`, window, 0.1, 1);
      const phiK = data(ws, `k${nb}x${m}`, nb * m, 0, 1);
      const v = data(ws, `v${nb}x${dv}`, nb * dv);
      const phiQ = data(ws, `q${nb}x${m}`, nb * m, 0, 1);
      const acc = ws.f64(nb * (dv + 1));
      const args = { c, tLo: 0, tHi: window, phiK, v, phiQ, q0: 0, b0: 0, b1: nb, m, dv, acc };
      return () => ws.aformRows(args);
    },
  };
}

function cases(): Case[] {
  const m = 64;
  const dv = 64;
  const K = 512;
  const out: Case[] = [];
  out.push({
    kernel: 'aformRing',
    size: `K=${K} m=dv=${m} (Decoder.step)`,
    flops: K * (2 * m + 2 * (dv + 1) + 1),
    make: (ws) => {
      const c = data(ws, 'c512', K, 0.1, 1);
      const ringK = data(ws, 'rk', K * m, 0, 1);
      const ringV = data(ws, 'rv', K * dv);
      const phiQ = data(ws, 'q1', m, 0, 1);
      const acc = ws.f64(dv + 1);
      const args = { c, ringK, ringV, start: 137, len: K, cap: K, phiQ, qOff: 0, m, dv, acc, aOff: 0 };
      return () => ws.aformRing(args);
    },
  });
  out.push(aformRowsCase(4096, 512, m, dv));
  if (!small) out.push(aformRowsCase(4096, 4096, m, dv));
  for (const N of [4096, 65536]) {
    out.push({
      kernel: 'fft forward',
      size: `N=${N} (JS: fft.js)`,
      flops: 5 * N * Math.log2(N),
      make: (ws) => {
        const input = data(ws, `fft${N}`, 2 * N);
        const output = ws.f64(2 * N);
        const plan = ws.fftPlan(N);
        return () => plan.forward(output, input);
      },
    });
  }
  out.push({
    kernel: 'fft inverse',
    size: 'N=4096 (JS: fft.js)',
    flops: 5 * 4096 * 12,
    make: (ws) => {
      const input = data(ws, 'fft4096', 2 * 4096);
      const output = ws.f64(2 * 4096);
      const plan = ws.fftPlan(4096);
      return () => plan.inverse(output, input);
    },
  });
  out.push({
    kernel: 'spectralMac',
    size: 'N=8192 bins',
    flops: 8 * 8192,
    make: (ws) => {
      const X = data(ws, 'smx', 2 * 8192);
      const H = data(ws, 'smh', 2 * 8192);
      const Y = ws.f64(2 * 8192);
      const args = { Y, X, xOff: 0, H, hOff: 0, N: 8192 };
      return () => ws.spectralMac(args);
    },
  });
  {
    // every output block of a partitioned convolution: JS = zero-fill + spectralMac per (r, p), WASM = one call
    const N = 1024;
    const nbk = small ? 8 : 32;
    out.push({
      kernel: 'spectralConv',
      size: `N=${N} blocks=${nbk} full (fused)`,
      flops: ((nbk * (nbk + 1)) / 2) * N * 8,
      make: (ws) => {
        const X = data(ws, 'scx', nbk * 2 * N);
        const H = data(ws, 'sch', nbk * 2 * N);
        const Y = ws.f64(nbk * 2 * N);
        const mac = { Y, X, xOff: 0, H, hOff: 0, N };
        return () => {
          for (let r = 0; r < nbk; r++) {
            const y = Y.subarray(r * 2 * N, (r + 1) * 2 * N);
            y.fill(0);
            mac.Y = y;
            for (let p = 0; p <= r; p++) {
              mac.xOff = (r - p) * 2 * N;
              mac.hOff = p * 2 * N;
              spectralMac(mac);
            }
          }
        };
      },
      makeWasm: (ws) => {
        const X = data(ws, 'scx', nbk * 2 * N);
        const H = data(ws, 'sch', nbk * 2 * N);
        const Y = ws.f64(nbk * 2 * N);
        const args = { Y, yOff: 0, X, xOff: 0, H, hOff: 0, N, nx: nbk, P: nbk, ny: nbk, r0: 0 };
        return () => ws.spectralConv(args);
      },
    });
  }
  {
    // the S-form near field of a whole sequence (every channel, error estimates included): sformRows on each backend
    const n = small ? 1024 : 4096;
    const B = 256;
    const sm = 64;
    const sdv = 64;
    const P = Math.ceil(n / B);
    const fftFlops = 2 * (n / B) * 5 * (2 * B) * Math.log2(2 * B);
    const convFlops = ((P * (P + 1)) / 2) * 2 * B * 8;
    out.push({
      kernel: 'S-form',
      size: `sformRows n=${n} B=${B} m=dv=${sm} full`,
      flops: ((sm * (sdv + 1)) / 2) * (fftFlops + convFlops),
      rounds: small ? 3 : 5,
      make: (ws) => {
        const kp = partitionKernel(data(ws, `sc${n}`, n, 0.05, 1), 0, n, B);
        const args = {
          kp,
          phiKT: data(ws, `skt${n}`, sm * n, 0, 1),
          vT: data(ws, `svt${n}`, sdv * n),
          phiQT: data(ws, `sqt${n}`, sm * n, 0, 1),
          accT: ws.f64((sdv + 1) * n),
          errT: ws.f64(2 * n),
          q0: 0,
          nb: n,
          m: sm,
          dv: sdv,
        };
        return () => sformRows(args, ws);
      },
    });
  }
  for (const n of [256, 64]) {
    out.push({
      kernel: 'gemm',
      size: `${n}^3`,
      flops: 2 * n * n * n,
      make: (ws) => {
        const a = data(ws, `ga${n}`, n * n);
        const b = data(ws, `gb${n}`, n * n);
        const c = ws.f64(n * n);
        const args = { a, aOff: 0, b, bOff: 0, c, cOff: 0, M: n, N: n, K: n, accumulate: false };
        return () => ws.gemm(args);
      },
    });
  }
  for (const gamma of [1, 0.999]) {
    out.push({
      kernel: 'farAbsorb',
      size: `m=dv=${m} gamma=${gamma}`,
      flops: m * (dv + 1) * (gamma === 1 ? 5 : 7),
      make: (ws) => {
        const far = { sum: ws.f64(m * (dv + 1)), comp: ws.f64(m * (dv + 1)) };
        const phiK = data(ws, 'fk', m, 0, 1);
        const v = data(ws, 'fv', dv);
        const args = { far, gamma, phiK, kOff: 0, v, vOff: 0, m, dv };
        return () => ws.farAbsorb(args);
      },
    });
  }
  out.push({
    kernel: 'farContract',
    size: `m=dv=${m}`,
    flops: m * (dv + 1) * 2,
    make: (ws) => {
      const far = { sum: data(ws, 'fs', m * (dv + 1)), comp: ws.f64(m * (dv + 1)) };
      const phiQ = data(ws, 'fq', m, 0, 1);
      const acc = ws.f64(dv + 1);
      const args = { far, cFar: 0.5, phiQ, qOff: 0, m, dv, acc, aOff: 0 };
      return () => ws.farContract(args);
    },
  });
  for (const n of [1, 4096]) {
    out.push({
      kernel: 'prfLogits',
      size: `n=${n} d=m=64 l2`,
      flops: n * (2 * 64 * 64 + 4 * 64),
      make: (ws) => {
        const W = data(ws, 'W', 64 * 64);
        const x = data(ws, `x${n}`, n * 64);
        const o = ws.f64(n * 64);
        const args = { W, m: 64, d: 64, normalize: 'l2' as const, x, n, out: o };
        return () => void ws.prfLogits(args);
      },
    });
  }
  return out;
}

export function runKernels(log: (s: string) => void = console.log): KernelRow[] {
  if (!wasmSupported()) throw new Error('WebAssembly SIMD is not available here');
  const rows: KernelRow[] = [];
  const fmt = (s: number): string => (s >= 1e-3 ? `${(s * 1e3).toFixed(2)} ms` : `${(s * 1e6).toFixed(2)} us`);
  log(`CPU-time medians per call (ratios also by wall clock); GFLOP/s from CPU time`);
  log(`${'kernel'.padEnd(12)} ${'size'.padEnd(40)} ${'JS'.padStart(11)} ${'WASM'.padStart(11)} ${'JS/WASM'.padStart(8)} ${'(wall)'.padStart(8)} ${'GFLOP/s JS'.padStart(11)} ${'WASM'.padStart(6)}`);
  for (const c of cases()) {
    const row = runCase(c, 1 << 23);
    rows.push(row);
    log(
      `${row.kernel.padEnd(12)} ${row.size.padEnd(40)} ${fmt(row.jsSeconds).padStart(11)} ${fmt(row.wasmSeconds).padStart(11)} ` +
        `${row.ratio.toFixed(2).padStart(7)}x ${row.wallRatio.toFixed(2).padStart(7)}x ${(row.jsGflops?.toFixed(2) ?? '-').padStart(11)} ${(row.wasmGflops?.toFixed(2) ?? '-').padStart(6)}`,
    );
  }
  return rows;
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('bench/kernels.ts');
if (isMain) {
  const rows = runKernels();
  const results = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    date: new Date().toISOString(),
    rounds: ROUNDS,
    kernels: rows,
  };
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('kernels.json', dir), JSON.stringify(results, null, 2) + '\n');
  console.log('\nwrote bench/results/kernels.json');
}
