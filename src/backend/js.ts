// The plain-TypeScript backend: the readable reference kernels of src/math over ordinary Float64Arrays.
// Every workspace owns its FFT plans (fft.js: twiddles and bit reversal built once per size).
import FFT from 'fft.js';
import { aformRing, aformRows } from '../math/aform.js';
import { farAbsorb, farContract, scaleFar } from '../math/farfield.js';
import { expRows, expShift, prfLogits } from '../math/features.js';
import { gemm, gemmPacked, packPanels } from '../math/gemm.js';
import { sformChannels, spectralMac, type SformChannelsArgs } from '../math/fftconv.js';
import type { FftPlan, Workspace } from './types.js';
import { kernelSpectra32Js, sformChannels32, transpose32, type SformChannels32Args } from '../math/fftconv32.js';
import { aformRing32, aformRows32, farAbsorb32 } from '../math/aform32.js';

class JsFftPlan implements FftPlan {
  private readonly fft: FFT;
  constructor(readonly size: number) {
    this.fft = new FFT(size);
  }
  forward(out: Float64Array, input: Float64Array): void {
    this.fft.transform(out, input);
  }
  inverse(out: Float64Array, input: Float64Array): void {
    this.fft.inverseTransform(out, input);
  }
}

export class JsWorkspace implements Workspace {
  readonly backend = 'js' as const;
  readonly available = Infinity;
  private readonly plans = new Map<number, FftPlan>();
  f64(length: number): Float64Array {
    return new Float64Array(length);
  }
  // the garbage collector owns JS scratch: nothing to mark or release
  mark(): number {
    return 0;
  }
  release(_mark: number): void {}
  fftPlan(size: number): FftPlan {
    let plan = this.plans.get(size);
    if (plan === undefined) {
      plan = new JsFftPlan(size);
      this.plans.set(size, plan);
    }
    return plan;
  }
  readonly aformRows = aformRows;
  readonly aformRing = aformRing;
  readonly farAbsorb = farAbsorb;
  readonly farContract = farContract;
  readonly scaleFar = scaleFar;
  readonly prfLogits = prfLogits;
  readonly expRows = expRows;
  readonly expShift = expShift;
  readonly gemm = gemm;
  readonly gemmPacked = gemmPacked;
  packPanels(W: Float64Array, wOff: number, N: number, K: number, out: Float64Array): void {
    packPanels(W, wOff, N, K, out);
  }
  readonly spectralMac = spectralMac;
  sformChannels(a: SformChannelsArgs): void {
    sformChannels(a, this.fftPlan(2 * a.B));
  }
  // float32: fft.js over Float32Array (its own plans: twiddles in float64)
  private readonly plans32 = new Map<number, FFT>();
  f32(length: number): Float32Array {
    return new Float32Array(length);
  }
  readonly kernelSpectra32 = kernelSpectra32Js;
  readonly transpose32 = transpose32;
  sformChannels32(a: SformChannels32Args): void {
    const N = 2 * a.B;
    let plan = this.plans32.get(N);
    if (plan === undefined) this.plans32.set(N, (plan = new FFT(N)));
    sformChannels32(a, plan);
  }
  // float32 window kernels of the Decoder's dtype 'float32': float32 arrays, float64 arithmetic (math/aform32.ts)
  readonly aformRing32 = aformRing32;
  readonly aformRows32 = aformRows32;
  readonly farAbsorb32 = farAbsorb32;
}
