// The backend seam: the hot kernels behind one small interface, implemented twice: in plain TypeScript
// (js.ts, the readable reference and the fallback) and in WebAssembly SIMD (wasm.ts).
//
// Memory rule (DESIGN section 10): every array a kernel touches comes from the owner's Workspace
// (`ws.f64(n)`, or `ws.take(layout)` for arrays declared once: backend/layout.ts). The JS workspace hands out
// ordinary Float64Arrays; a WASM workspace hands out views of its linear memory (a memory of its own, or its
// region of an arena's: backend/arena.ts), sized up front and never grown while views are live, so a kernel
// call passes offsets and copies nothing. A kernel given an array from elsewhere must still be correct (the WASM
// backend copies it in and out, slowly); correctness never depends on where an array lives.
import type { SformChannelsArgs } from '../math/fftconv.js';
import type { Panels, PackedGemmArgs } from '../math/gemm.js';
import type { SformChannels32Args } from '../math/fftconv32.js';
import type { AformRingArgs, AformRowsArgs, FarAbsorbArgs, FarArrays, FarContractArgs, GemmArgs, PrfLogitsArgs, SpectralMacArgs } from '../math/kernelArgs.js';
import type { Layout, LayoutViews } from './layout.js';
import type { AformRing32Args, AformRows32Args, FarAbsorb32Args } from '../math/kernelArgs.js';

export type { SformChannelsArgs, SformChannels32Args };
export type { AformRingArgs, AformRowsArgs, FarAbsorbArgs, FarArrays, FarContractArgs, GemmArgs, PrfLogitsArgs, SpectralMacArgs };
export type { AformRing32Args, AformRows32Args, FarAbsorb32Args };
export type BackendName = 'js' | 'wasm';
export type BackendOption = 'auto' | BackendName;

/** A complex FFT plan of one size N, owned by a workspace. Arrays are interleaved [re, im] x N; out !== input. */
export interface FftPlan {
  readonly size: number;
  forward(out: Float64Array, input: Float64Array): void;
  /** inverse transform including the 1/N factor */
  inverse(out: Float64Array, input: Float64Array): void;
}

/** Working memory and kernels of one owner (a decoder, one attention() call, a worker). Not shared. */
export interface Workspace {
  readonly backend: BackendName;
  /** A zeroed array of `length` float64 owned by this workspace (WASM: a view of its linear memory). */
  f64(length: number): Float64Array;
  /** The arrays of a declared layout, zeroed, taken as one block (layout.bytes) like f64() takes one array. */
  take(layout: Layout): LayoutViews;
  /** Float64 entries still available (Infinity for JS). */
  readonly available: number;
  /** Scratch discipline: arrays taken after mark() are invalid after release(mark) (a stack, not a heap). */
  mark(): number;
  release(mark: number): void;
  aformRows(a: AformRowsArgs): void;
  aformRing(a: AformRingArgs): void;
  farAbsorb(a: FarAbsorbArgs): void;
  farContract(a: FarContractArgs): void;
  /** F <- factor F (both sum and compensation) */
  scaleFar(far: FarArrays, factor: number, m: number, dv: number): void;
  prfLogits(a: PrfLogitsArgs): number;
  /** In place, x: [n, m]: every row r <- exp(r - max(r)); a row whose max is -Infinity becomes zeros. */
  expRows(x: Float64Array, n: number, m: number): void;
  /** In place: x[i] <- exp(x[i] - shift) for i < len. */
  expShift(x: Float64Array, len: number, shift: number): void;
  gemm(a: GemmArgs): void;
  /**
   * W [N, K] (row-major, from wOff) packed once into `out` (packedLength(N, K) float64, math/gemm.ts), for weights
   * that serve many products (a model's linear layers): the owner takes `out` from this workspace and keeps it.
   */
  packPanels(W: Float64Array, wOff: number, N: number, K: number, out: Panels): void;
  /**
   * gemm with b packed by packPanels (b, bOff address the panels); bit-identical to gemm. M = 1: the one-row kernel.
   * Float32 panels (`out` a Float32Array view of this workspace, W exactly float32): the same bits, half the bytes.
   */
  gemmPacked(a: PackedGemmArgs): void;
  /**
   * A one-row product in float32 (a model session's dtype 'float32'): a (M = 1) rounded to float32, f32 panels of
   * this workspace, f32x4 sums per depth block added to c in float64 (assembly/gemm.ts gemvPackedF32). Returns false
   * (nothing done) when it does not apply (M != 1, float64 panels, panels outside this memory): the caller runs
   * gemmPacked. WASM only; the JS workspace has none (its float32 sessions' products stay float64).
   */
  gemvF32?(a: PackedGemmArgs): boolean;
  /** In place, SwiGLU's gate over len entries: h1[i] <- silu(h1[i]) * h3[i] (math/swiglu.ts; the same bits in V8). */
  swiglu(h1: Float64Array, h3: Float64Array, len: number): void;
  fftPlan(size: number): FftPlan;
  spectralMac(a: SpectralMacArgs): void;
  /** The S-form's channel convolutions (math/fftconv.ts SformChannelsArgs): the whole-sequence hot loop. */
  sformChannels(a: SformChannelsArgs): void;
  // -- float32 (attention()'s dtype 'float32'; src/math/fftconv32.ts)
  /** A zeroed array of `length` float32 owned by this workspace, aligned as f64() (it takes ceil(length / 2) float64 entries). */
  f32(length: number): Float32Array;
  /** Kernel spectra for sformChannels32: partitionKernel's natural-order float64 spectra [P, 2N] -> this backend's float32 layout (P * 2N). */
  kernelSpectra32(natural: Float64Array, N: number, P: number, out: Float32Array): void;
  /** The S-form's channel convolutions in float32 (SformChannels32Args). */
  sformChannels32(a: SformChannels32Args): void;
  /** out: [cols, rows] float32 = transpose of x: [rows, cols] float64, rounded to nearest (math/fftconv32.ts transpose32). */
  transpose32(x: Float64Array, rows: number, cols: number, out: Float32Array): void;
  // -- float32 window kernels of the Decoder's dtype 'float32' (src/math/kernelArgs.ts, Rows = Float32Array)
  aformRing32(a: AformRing32Args): void;
  aformRows32(a: AformRows32Args): void;
  farAbsorb32(a: FarAbsorb32Args): void;
}
