// Measures the float32 cost-model constants (COSTS32 in src/engine/costModel.ts: attention()'s dtype 'float32') on
// this machine, as bench/calibrate.ts does for float64: the time of one float32 transform per size (fftSeconds; WASM:
// fft32 forward of a zero-padded block and inverse, as the S-form runs them; JS: fft.js over Float32Array), then
// mac and channelRow fitted by non-negative least squares to float32 S-form passes (transposes to float32, kernel
// spectra, rounding estimates and the channel convolutions) at m = dv = 64 over several (n, B). `direct` is float64's
// (the A-form stays float64). Run: npx tsx bench/calibrate32.ts [js|wasm]; paste the printed lines into COSTS32.
import FFT from 'fft.js';
import { createWorkspace, type BackendName, type Workspace } from '../src/backend/index.js';
import type { WasmWorkspace } from '../src/backend/wasm.js';
import { partitionKernel } from '../src/math/fftconv.js';
import { sformChannels32Scratch, sformErrors32, transpose32 } from '../src/math/fftconv32.js';
import { COSTS, fftCost, type CostConstants } from '../src/engine/costModel.js';
import { Rng } from '../src/math/rng.js';
import { nnls } from './calibrate.js';

/** CPU seconds of fn (this process's). */
function cpu(fn: () => void): number {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1e6;
}

/** Seconds of one float32 transform of size 2^j, j = 0 .. 17 (the fastest of 7: noise only adds). */
function fftTable32(ws: Workspace, rng: Rng): number[] {
  const table = [0, 0];
  for (let j = 2; j <= 17; j++) {
    const N = 2 ** j;
    const mark = ws.mark();
    const a = ws.f32(2 * N);
    const b = ws.f32(2 * N);
    for (let i = 0; i < N; i++) a[i] = rng.nextGaussian();
    const reps = Math.max(4, Math.round(2 ** 22 / (N * j)));
    let run: () => void;
    if (ws.backend === 'wasm') {
      const w = ws as WasmWorkspace;
      run = () => {
        for (let r = 0; r < reps; r++) {
          w.fft32(N, b, a, false, true);
          w.fft32(N, b, null, true);
        }
      };
    } else {
      const f = new FFT(N);
      run = () => {
        for (let r = 0; r < reps; r++) {
          f.transform(b, a);
          f.inverseTransform(a, b);
        }
      };
    }
    run();
    let t = Infinity;
    for (let k = 0; k < 7; k++) t = Math.min(t, cpu(run));
    table.push(t / (2 * reps));
    ws.release(mark);
  }
  return table;
}

export function calibrate32(backend: BackendName, report?: (line: string) => void): CostConstants {
  const ws = createWorkspace(backend, 1 << 25);
  const rng = new Rng(12);
  const table = fftTable32(ws, rng);
  const noFft = table.map(() => 0);
  const m = 64, dv = 64;
  const shapes: Array<[number, number]> = [[4096, 256], [4096, 1024], [8192, 512], [8192, 2048], [16384, 1024], [16384, 2048], [16384, 4096], [16384, 8192]];
  const rowsA: number[][] = [];
  const times: number[] = [];
  for (const [nb, B] of shapes) {
    const c = Float64Array.from({ length: nb }, () => Math.exp(-2 * rng.nextFloat64()));
    const kp = partitionKernel(c, 0, nb, B);
    const l2 = kp.l1.map((x) => x / Math.sqrt(B));
    const phiK = Float64Array.from({ length: nb * m }, () => Math.exp(rng.nextGaussian() - 2));
    const v = Float64Array.from({ length: nb * dv }, () => rng.nextGaussian());
    const phiQ = Float64Array.from({ length: nb * m }, () => Math.exp(rng.nextGaussian() - 2));
    const N = 2 * B;
    const P = kp.parts;
    const pass = (): void => {
      const mark = ws.mark();
      const phiKT = ws.f32(nb * m);
      const vT = ws.f32(nb * dv);
      const phiQT = ws.f32(nb * m);
      transpose32(phiK, nb, m, phiKT);
      transpose32(v, nb, dv, vT);
      transpose32(phiQ, nb, m, phiQT);
      const spectra = ws.f32(P * 2 * N);
      ws.kernelSpectra32(kp.spectra, N, P, spectra);
      const accT = ws.f32(nb * (dv + 1));
      const errT = ws.f64(2 * nb);
      sformErrors32(kp.l1, l2, B, phiK, v, phiQ, 0, nb, m, dv, errT);
      const scratch = ws.f32(sformChannels32Scratch(nb, 0, B, P));
      ws.sformChannels32({ phiKT, vT, phiQT, accT, spectra, q0: 0, nb, m, dv, B, P, ch0: 0, ch1: m * (dv + 1), scratch });
      ws.release(mark);
    };
    pass();
    times.push(Math.min(cpu(pass), cpu(pass)));
    const unit = (k: Partial<CostConstants>) => fftCost(0, nb, 0, nb, m, dv, B, { direct: [[1, 0]], fftSeconds: noFft, mac: 0, channelRow: 0, ...k });
    rowsA.push([unit({ fftSeconds: table }), unit({ mac: 1 }), unit({ channelRow: 1 })]);
  }
  const rest = times.map((t, i) => Math.max(0, t - rowsA[i]![0]!) / t);
  const [mac, channelRow] = nnls(rowsA.map((r, i) => [r[1]! / times[i]!, r[2]! / times[i]!]), rest);
  const fitted: CostConstants = { direct: COSTS[backend].direct, fftSeconds: table, mac: mac!, channelRow: channelRow! };
  shapes.forEach(([nb, B], i) => report?.(`    ${backend} float32 S-form nb ${nb} B ${B}: measured ${times[i]!.toFixed(4)} s, model ${fftCost(0, nb, 0, nb, m, dv, B, fitted).toFixed(4)} s`));
  return fitted;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.argv[2];
  for (const backend of (only === 'js' || only === 'wasm' ? [only] : ['wasm', 'js']) as BackendName[]) {
    const k = calibrate32(backend, (line) => console.log(line));
    const num = (x: number): string => (x === 0 ? '0' : x.toExponential(2));
    console.log(`  ${backend}: { direct: COSTS.${backend}.direct, fftSeconds: [${k.fftSeconds.map(num).join(', ')}], mac: ${num(k.mac)}, channelRow: ${num(k.channelRow)} },`);
  }
}
