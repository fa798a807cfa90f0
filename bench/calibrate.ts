// Measures the cost-model constants of src/engine/costModel.ts on this machine (medians of repeated runs).
// Run: npm run bench -- calibrate. Paste the printed COST block into costModel.ts when the machine changes.
import { aformRows } from '../src/math/aform.js';
import { fftPlan, partitionKernel, sformRows } from '../src/math/fftconv.js';
import { Rng } from '../src/math/rng.js';
import { directPairs } from '../src/engine/costModel.js';

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    ts.push((performance.now() - t) / 1000);
  }
  return median(ts);
}

export function calibrate(): Record<string, number> {
  const rng = new Rng(11);
  const rand = (len: number, f: () => number) => Float64Array.from({ length: len }, f);
  // direct: the A-form over a full causal window
  const n = 4096, m = 64, dv = 64; // a working set past L2, as in the long runs the model decides
  const c = rand(n, () => Math.exp(-rng.nextFloat64()));
  const phiK = rand(n * m, () => Math.exp(rng.nextGaussian() - 2));
  const phiQ = rand(n * m, () => Math.exp(rng.nextGaussian() - 2));
  const v = rand(n * dv, () => rng.nextGaussian());
  const acc = new Float64Array(n * (dv + 1));
  const tDirect = time(() => aformRows(c, 0, n, phiK, v, phiQ, 0, m, dv, 0, n, acc), 3);
  const direct = tDirect / (directPairs(0, n, 0, n) * (m + dv + 1));

  // fft: complex transforms at a mid size
  const N = 8192;
  const plan = fftPlan(N);
  const a = rand(2 * N, () => rng.nextGaussian());
  const o = new Float64Array(2 * N);
  const tFft = time(() => { for (let i = 0; i < 50; i++) plan.transform(o, a); }, 7) / 50;
  const fft = tFft / (N * Math.log2(N));

  // mac and per-(row, channel) work: time sformRows with one kernel partition and subtract the modelled FFT part
  const B = 1024, nb = 4 * B, mm = 8, dd = 7;
  const cK = rand(nb, () => Math.exp(-rng.nextFloat64()));
  const kp = partitionKernel(cK, 0, nb, B);
  const pk = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
  const pq = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
  const vv = rand(nb * dd, () => rng.nextGaussian());
  const accT = new Float64Array(nb * (dd + 1));
  const errT = new Float64Array(nb * (dd + 1));
  const X = rand(4 * N, () => rng.nextGaussian());
  const Y = new Float64Array(2 * N);
  const tMac = time(() => {
    for (let rep = 0; rep < 20; rep++) {
      for (let k = 0; k < 2 * N; k += 2) {
        const xr = X[k]!, xi = X[k + 1]!, hr = X[2 * N + k]!, hi = X[2 * N + k + 1]!;
        Y[k] = Y[k]! + (xr * hr - xi * hi);
        Y[k + 1] = Y[k + 1]! + (xr * hi + xi * hr);
      }
    }
  }, 7) / 20;
  const mac = tMac / N;
  const tS = time(() => sformRows(kp, pk, vv, pq, 0, nb, mm, dd, accT, errT), 5);
  const pairs = Math.ceil((mm * (dd + 1)) / 2);
  const blocks = nb / B;
  const modelled = pairs * (2 * blocks * 2 * B * Math.log2(2 * B) * fft + ((blocks * (blocks + 1)) / 2) * 2 * B * mac);
  const channelRow = Math.max(0, tS - modelled) / (2 * nb * mm * (dd + 1));
  return { direct, fft, mac, channelRow };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const k = calibrate();
  console.log('export const COST = {');
  for (const [name, value] of Object.entries(k)) console.log(`  ${name}: ${value.toExponential(2)},`);
  console.log('};');
}
