// Measures the cost-model constants of src/engine/costModel.ts on this machine (medians of repeated runs).
// Run: npm run bench -- calibrate (or npx tsx bench/calibrate.ts). Paste the printed lines into COSTS in
// src/engine/costModel.ts when the machine changes.
import { partitionKernel, sformRows } from '../src/math/fftconv.js';
import { createWorkspace, type BackendName, type Workspace } from '../src/backend/index.js';
import { Rng } from '../src/math/rng.js';
import { directPairs, fftCost, type CostConstants } from '../src/engine/costModel.js';

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median CPU seconds of fn (this process's; the work is single-threaded, so other processes do not count). */
function time(fn: () => void, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = process.cpuUsage();
    fn();
    const u = process.cpuUsage(t);
    ts.push((u.user + u.system) / 1e6);
  }
  return median(ts);
}

/** Cost constants of one backend: its kernels timed on arrays in its own workspace. */
export function calibrate(backend: BackendName = 'js', report?: (line: string) => void): CostConstants {
  const ws = createWorkspace(backend, 1 << 24);
  const rng = new Rng(11);
  const rand = (len: number, f: () => number) => {
    const a = ws.f64(len);
    for (let i = 0; i < len; i++) a[i] = f();
    return a;
  };
  // direct: the A-form over full windows of 512 .. 32768 lags (rows that see the whole window), per window size
  const m = 64, dv = 64;
  const direct: Array<[number, number]> = [];
  for (const W of [512, 2048, 8192, 32768]) {
    const rows = Math.max(64, Math.min(1024, Math.round(2 ** 25 / W)));
    const mark = ws.mark();
    const nb = W + rows;
    const c = rand(W, () => Math.exp(-rng.nextFloat64()));
    const phiK = rand(nb * m, () => Math.exp(rng.nextGaussian() - 2));
    const phiQ = rand(rows * m, () => Math.exp(rng.nextGaussian() - 2));
    const v = rand(nb * dv, () => rng.nextGaussian());
    const acc = ws.f64(rows * (dv + 1));
    // the fastest of 5 (after a warm-up call: the first calls of a WASM function may still run baseline code)
    const run = () => ws.aformRows({ c, tLo: 0, tHi: W, phiK, v, phiQ, q0: W, m, dv, b0: W, b1: nb, acc });
    let t = Infinity;
    for (let k = 0; k < 5; k++) t = Math.min(t, time(run, 1));
    direct.push([W, t / (directPairs(W, nb, 0, W) * (m + dv + 1))]);
    ws.release(mark);
  }

  // fft: the time of one transform per size, measured alone (fftTable). mac and per-(row, channel) work: time
  // real S-form passes at the shapes the model decides for (m = dv = 64) over several (n, B), take off the
  // transforms' share, and fit the two constants by non-negative least squares (the transform count,
  // multiply-add count and row count of each pass are the model's own). A three-way fit (an FFT multiplier
  // too) is ill-conditioned: on a loaded machine it put the FFT at zero.
  const mm = 64, dd = 64;
  const table = fftTable(ws, rng);
  const noFft = table.map(() => 0);
  const shapes: Array<[number, number]> = [[4096, 64], [4096, 256], [4096, 1024], [8192, 128], [8192, 512], [8192, 2048], [16384, 512], [16384, 1024], [16384, 2048], [16384, 4096]];
  const rowsA: number[][] = [];
  const times: number[] = [];
  for (const [nb, B] of shapes) {
    const cK = rand(nb, () => Math.exp(-rng.nextFloat64()));
    const kp = partitionKernel(cK, 0, nb, B);
    const mark = ws.mark();
    const pkT = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
    const vvT = rand(nb * dd, () => rng.nextGaussian());
    const pqT = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
    const accT = ws.f64(nb * (dd + 1));
    const errT = ws.f64(2 * nb);
    times.push(time(() => sformRows({ kp, phiKT: pkT, vT: vvT, phiQT: pqT, q0: 0, nb, m: mm, dv: dd, accT, errT }, ws), 2));
    ws.release(mark);
    // the model's parts: fftCost = transforms (from the table) + mac * M + channelRow * R
    const unit = (c: Partial<CostConstants>) => fftCost(0, nb, 0, nb, mm, dd, B, { direct: [[1, 0]], fftSeconds: noFft, mac: 0, channelRow: 0, ...c });
    rowsA.push([unit({ fftSeconds: table }), unit({ mac: 1 }), unit({ channelRow: 1 })]);
  }
  // relative residuals (rows divided by their measured time): the block-size choice depends on ratios between
  // shapes, and absolute least squares let the largest pass decide alone
  const rest = times.map((t, i) => Math.max(0, t - rowsA[i]![0]!) / t);
  const [fitMac, fitRow] = nnls(rowsA.map((r, i) => [r[1]! / times[i]!, r[2]! / times[i]!]), rest);
  const fitted: CostConstants = { direct, fftSeconds: table, mac: fitMac!, channelRow: fitRow! };
  shapes.forEach(([nb, B], i) => {
    report?.(`    ${backend} S-form nb ${nb} B ${B}: measured ${times[i]!.toFixed(4)} s, model ${fftCost(0, nb, 0, nb, mm, dd, B, fitted).toFixed(4)} s`);
  });
  return fitted;
}

/** Seconds of one complex FFT of size 2^j for j = 0 .. 17 (forward and inverse alternating, in the workspace). */
function fftTable(ws: Workspace, rng: Rng): number[] {
  const table = [0, 0];
  for (let j = 2; j <= 17; j++) {
    const N = 2 ** j;
    const plan = ws.fftPlan(N);
    const mark = ws.mark();
    const a = ws.f64(2 * N);
    const b = ws.f64(2 * N);
    for (let i = 0; i < 2 * N; i++) a[i] = rng.nextGaussian();
    const reps = Math.max(4, Math.round(2 ** 22 / (N * j)));
    // the fastest of 7: a transform alone is pure arithmetic on cached data, so noise only adds (a median
    // once gave N = 2048 a time above N = 4096's and the model a wrong block size)
    let t = Infinity;
    for (let k = 0; k < 7; k++) {
      t = Math.min(t, time(() => {
        for (let r = 0; r < reps; r++) {
          plan.forward(b, a);
          plan.inverse(a, b);
        }
      }, 1));
    }
    table.push(t / (2 * reps));
    ws.release(mark);
  }
  return table;
}

/** Non-negative least squares for a few unknowns: projected coordinate descent on the normal equations. */
export function nnls(A: number[][], b: number[]): number[] {
  const k = A[0]!.length;
  // scale columns to unit norm so one step size fits all
  const norms = Array.from({ length: k }, (_, j) => Math.sqrt(A.reduce((s, row) => s + row[j]! ** 2, 0)) || 1);
  const As = A.map((row) => row.map((x, j) => x / norms[j]!));
  const x = new Array<number>(k).fill(0);
  for (let iter = 0; iter < 5000; iter++) {
    for (let j = 0; j < k; j++) {
      let num = 0;
      let den = 0;
      for (let i = 0; i < As.length; i++) {
        let r = b[i]!;
        for (let l = 0; l < k; l++) if (l !== j) r -= As[i]![l]! * x[l]!;
        num += As[i]![j]! * r;
        den += As[i]![j]! ** 2;
      }
      x[j] = Math.max(0, num / den);
    }
  }
  return x.map((v, j) => v / norms[j]!);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv[2];
  for (const backend of (only === 'js' || only === 'wasm' ? [only] : ['js', 'wasm']) as BackendName[]) {
    const k = calibrate(backend, (line) => console.log(line));
    const num = (x: number): string => (x === 0 ? '0' : x.toExponential(2));
    const direct = k.direct.map(([lags, s]) => `[${lags}, ${num(s)}]`).join(', ');
    console.log(`  ${backend}: { direct: [${direct}], fftSeconds: [${k.fftSeconds.map(num).join(', ')}], mac: ${num(k.mac)}, channelRow: ${num(k.channelRow)} },`);
  }
}
