// Measures the cost-model constants of src/engine/costModel.ts on this machine (medians of repeated runs).
// Run: npm run bench -- calibrate. Paste the printed COST block into costModel.ts when the machine changes.
import { partitionKernel, sformRows } from '../src/math/fftconv.js';
import { createWorkspace, type BackendName } from '../src/backend/index.js';
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

/** Cost constants of one backend: its kernels timed on arrays in its own workspace. */
export function calibrate(backend: BackendName = 'js'): Record<string, number> {
  const ws = createWorkspace(backend, 1 << 24);
  const rng = new Rng(11);
  const rand = (len: number, f: () => number) => {
    const a = ws.f64(len);
    for (let i = 0; i < len; i++) a[i] = f();
    return a;
  };
  // direct: the A-form over a full causal window
  const n = 4096, m = 64, dv = 64; // a working set past L2, as in the long runs the model decides
  const c = rand(n, () => Math.exp(-rng.nextFloat64()));
  const phiK = rand(n * m, () => Math.exp(rng.nextGaussian() - 2));
  const phiQ = rand(n * m, () => Math.exp(rng.nextGaussian() - 2));
  const v = rand(n * dv, () => rng.nextGaussian());
  const acc = ws.f64(n * (dv + 1));
  const tDirect = time(() => ws.aformRows({ c, tLo: 0, tHi: n, phiK, v, phiQ, q0: 0, m, dv, b0: 0, b1: n, acc }), 3);
  const direct = tDirect / (directPairs(0, n, 0, n) * (m + dv + 1));

  // fft: complex transforms at a mid size
  const N = 8192;
  const plan = ws.fftPlan(N);
  const a = rand(2 * N, () => rng.nextGaussian());
  const o = ws.f64(2 * N);
  const tFft = time(() => { for (let i = 0; i < 50; i++) plan.forward(o, a); }, 7) / 50;
  const fft = tFft / (N * Math.log2(N));

  // mac and per-(row, channel) work: time sformRows with one kernel partition and subtract the modelled FFT part
  const B = 1024, nb = 4 * B, mm = 8, dd = 7;
  const cK = rand(nb, () => Math.exp(-rng.nextFloat64()));
  const kp = partitionKernel(cK, 0, nb, B);
  const pk = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
  const pq = rand(nb * mm, () => Math.exp(rng.nextGaussian() - 2));
  const vv = rand(nb * dd, () => rng.nextGaussian());
  const accT = ws.f64(nb * (dd + 1));
  const errT = ws.f64(nb * (dd + 1));
  const X = rand(4 * N, () => rng.nextGaussian());
  const Y = ws.f64(2 * N);
  const macArgs = { Y, X, xOff: 0, H: X, hOff: 2 * N, N };
  const tMac = time(() => {
    for (let rep = 0; rep < 20; rep++) ws.spectralMac(macArgs);
  }, 7) / 20;
  const mac = tMac / N;
  const pkT = ws.f64(nb * mm), vvT = ws.f64(nb * dd), pqT = ws.f64(nb * mm);
  pkT.set(pk); vvT.set(vv); pqT.set(pq);
  const tS = time(() => sformRows({ kp, phiKT: pkT, vT: vvT, phiQT: pqT, q0: 0, nb, m: mm, dv: dd, accT, errT }, ws), 5);
  const pairs = Math.ceil((mm * (dd + 1)) / 2);
  const blocks = nb / B;
  const modelled = pairs * (2 * blocks * 2 * B * Math.log2(2 * B) * fft + ((blocks * (blocks + 1)) / 2) * 2 * B * mac);
  const channelRow = Math.max(0, tS - modelled) / (2 * nb * mm * (dd + 1));
  return { direct, fft, mac, channelRow };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const k = calibrate((process.argv[2] as BackendName | undefined) ?? 'js');
  console.log('export const COST = {');
  for (const [name, value] of Object.entries(k)) console.log(`  ${name}: ${value.toExponential(2)},`);
  console.log('};');
}
