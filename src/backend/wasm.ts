// The WebAssembly SIMD backend: the kernels of assembly/*.ts (AssemblyScript, f64x2), compiled by
// scripts/build-wasm.mjs into wasmBinary.ts (base64, so it loads in Node and in any bundler without fs or fetch).
//
// Every memory is made with one instance of the compiled module, sized up front (initial = maximum, never grown:
// in V8 one memory.grow slows every typed-array loop of the process by ~1.35x). A workspace is a byte range of
// one memory: all of a memory of its own (createWasmWorkspace), or a region of a pool's memory (createWasmPool:
// an arena's, or a decoder's own; backend/regions.ts), whose workspaces share the pool's instance.
// Memory map (bytes):
//   [0, HEADER)           the module's static data and the kernels' fixed scratch (assembly/layout.ts)
//   [base, lo)            arrays handed out by f64() and take(layout), a stack (mark/release)
//   [hi, end)             FFT plans (twiddles and bit-reversal tables), allocated from the top, kept for the
//                         workspace's lifetime (so release() never frees a plan)
// (a workspace of its own memory: base = HEADER; a region's: the region's bytes)
// Views from f64() are 64-byte aligned (a cache line): every allocation is rounded up to a multiple of 8 float64.
// A ring of key rows starting 16 bytes into a line touches 9 lines per 512-byte row instead of 8: the Decoder's
// window loop ran 5-14% slower so (measured side by side).
//
// Kernels pass byte offsets when an array is a view of this workspace's memory; any other array is copied into
// scratch and back (the model's logits row and chunk rows; never the engine's hot paths). When the workspace has no
// room for the copies, a throwaway instance with a memory of its own runs the call (same code, same results). Each
// wrapper describes its kernel's arrays once for both paths (arg(), bind(), unbind(): "kernel arguments" below).
//
// Sizing a workspace (capacity in float64 entries; the memory is WASM_HEADER_BYTES + 8 capacity, rounded up to
// 64 KiB pages):
//   - every f64(n) live at once: wasmF64Entries(n) = n rounded up to a multiple of 8;
//   - every distinct FFT size N used: wasmFftPlanEntries(N) (about 4.1 N to 4.25 N), held until the workspace dies;
//   - kernels take no workspace memory of their own (their scratch is in the header), except: the copy path for
//     arrays that are not views of this memory (temporarily, their sizes; else a throwaway instance), and
//     sformChannels given less scratch than wasmSformChannelsScratch (it then borrows the rest, if free).
//
// Sizing from a declared layout (backend/layout.ts): take(layout) gives up exactly layout.bytes, the same as f64()
// of each of its f64 arrays.
//
// Module-global state: the compiled WebAssembly.Module (immutable, safe to share between workspaces), and the
// argument slots of the kernel call being made (slotArray ...: filled and used within one synchronous call).
import type { Normalize } from '../core/types.js';
import type {
  AformRing32Args,
  AformRows32Args,
  FarAbsorb32Args,
  AformRingArgs,
  AformRowsArgs,
  FarAbsorbArgs,
  FarArrays,
  FarContractArgs,
  FftPlan,
  GemmArgs,
  PrfLogitsArgs,
  SpectralMacArgs,
  Workspace,
} from './types.js';
import { WASM_BASE64, WASM_HEADER_BYTES } from './wasmBinary.js';
import { blockRange, type SformChannelsArgs } from '../math/fftconv.js';
import { sformChannels32Scratch, transpose32 as transpose32Js, type SformChannels32Args } from '../math/fftconv32.js';
import { ResourceError } from '../core/errors.js';
import { packPanels as packPanelsJs, packedLength, type PackedGemmArgs, type Panels } from '../math/gemm.js';
import { LINE_BYTES, LayoutViews, roundToLines, type Layout } from './layout.js';
import { RegionAllocator, regionBytes, type Pool, type Region } from './regions.js';

export { WASM_HEADER_BYTES };

/** The module's exports (pointers are byte offsets into the workspace memory). */
interface Kernels {
  headerBytes(): number;
  staticEnd(): number;
  aformRows(c: number, tLo: number, tHi: number, k: number, v: number, jBase: number, q: number, acc: number, b0: number, b1: number, m: number, dv: number): void;
  aformRing(c: number, rk: number, rv: number, start: number, len: number, cap: number, q: number, acc: number, m: number, dv: number): void;
  farAbsorb(sum: number, comp: number, gamma: number, k: number, v: number, m: number, dv: number): void;
  farContract(sum: number, cFar: number, q: number, m: number, dv: number, acc: number): void;
  scaleFar(sum: number, comp: number, factor: number, len: number): void;
  gemm(a: number, b: number, c: number, M: number, N: number, K: number, accumulate: number): void;
  gemmPacked(a: number, bp: number, c: number, M: number, N: number, K: number, accumulate: number): void;
  gemvPacked(x: number, bp: number, c: number, N: number, K: number, accumulate: number): void;
  gemmPacked32(a: number, bp: number, c: number, M: number, N: number, K: number, accumulate: number): void;
  gemvPacked32(x: number, bp: number, c: number, N: number, K: number, accumulate: number): void;
  gemvPackedF32(x: number, xs: number, bp: number, c: number, N: number, K: number, accumulate: number): void;
  swiglu(h1: number, h3: number, len: number): void;
  packPanels(w: number, N: number, K: number, dst: number): void;
  packedBytes(N: number, K: number): number;
  prfLogits(W: number, m: number, d: number, mode: number, x: number, n: number, out: number): number;
  expRows(x: number, n: number, m: number): void;
  expShift(x: number, len: number, shift: number): void;
  fftPlanBytes(n: number): number;
  fftInit(plan: number, n: number): void;
  fftForward(plan: number, n: number, out: number, inp: number): void;
  fftInverse(plan: number, n: number, out: number, inp: number): void;
  spectralMac(y: number, x: number, h: number, n: number): void;
  spectralConv(y: number, x: number, h: number, n: number, nx: number, P: number, ny: number, r0: number): void;
  sformChannels(h: number, P: number, B: number, phiKT: number, vT: number, nb: number, q0: number, phiQT: number, accT: number, dv: number, ch0: number, ch1: number, X: number, Y: number, yBlocks: number, tmp: number, plan: number): void;
  // float32 (assembly/fft32.ts, assembly/sform32.ts)
  fft32PlanBytes(n: number): number;
  fft32Init(plan: number, n: number): void;
  fft32Forward(plan: number, n: number, out: number, inp: number, half: number): void;
  fft32Inverse(plan: number, n: number, buf: number): void;
  transpose32(x: number, rows: number, cols: number, out: number): void;
  sformChannels32(h: number, P: number, B: number, phiKT: number, vT: number, nb: number, q0: number, phiQT: number, accT: number, dv: number, m: number, ch0: number, ch1: number, X: number, Y: number, yBlocks: number, tmp: number, plan: number): void;
  // float32 (assembly/aform32.ts, far32.ts)
  aformRing32(c: number, rk: number, rv: number, start: number, len: number, cap: number, q: number, acc: number, m: number, dv: number): void;
  aformRows32(c: number, tLo: number, tHi: number, k: number, v: number, jBase: number, q: number, acc: number, b0: number, b1: number, m: number, dv: number): void;
  farAbsorb32(sum: number, comp: number, gamma: number, k: number, v: number, m: number, dv: number): void;
}

/**
 * Every output block of a uniformly partitioned convolution in the frequency domain, in one call:
 *   Y[r] = sum_p X[r0 + r - p] H[p]  over p in [0, P) with 0 <= r0 + r - p < nx,  for r in [0, ny).
 * Blocks are N complex bins (2N float64, interleaved); X: nx blocks from xOff, H: P blocks from hOff, Y: ny blocks
 * from yOff (overwritten). Bit-identical to Y[r].fill(0) then spectralMac(X[r0 + r - p], H[p]) for ascending p.
 */
export interface SpectralConvArgs {
  Y: Float64Array;
  yOff: number;
  X: Float64Array;
  xOff: number;
  H: Float64Array;
  hOff: number;
  N: number;
  nx: number;
  P: number;
  ny: number;
  r0: number;
}

// sformChannels (the seam's S-form kernel, SformChannelsArgs in src/math/fftconv.ts): channels [ch0, ch1) in pairs,
// two per complex transform, by uniformly partitioned overlap-add, all in one call. `live` is not read: all-zero
// partitions and blocks add exact zeros here (the JS loop skips them for speed only). Full speed wants
// wasmSformChannelsScratch(nb, q0, B, P) float64 of scratch; with less (at least nIn + 3 blocks of 2N) the output
// spectra are computed a few blocks at a time (the same bits, slower) unless the workspace has room to lend.
export type { SformChannelsArgs };

/** Float64 scratch for sformChannels at full speed: input and output spectra of every block, plus two blocks. */
export function wasmSformChannelsScratch(nb: number, q0: number, B: number, P: number): number {
  const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
  return (blocks - sStart + (blocks - rStart) + 2) * 4 * B;
}

/** The WASM workspace: the Workspace seam plus kernels the JS backend does not have yet. */
export interface WasmWorkspace extends Workspace {
  readonly capacity: number;
  /** Release every array (as if just made), and the FFT plans too unless keepPlans. For reuse by a new owner. */
  reset(keepPlans: boolean): void;
  /** See SpectralConvArgs (a fused kernel for the S-form; the plain reference is in test/backend/reference.ts). */
  spectralConv(a: SpectralConvArgs): void;
  /** See SformChannelsArgs (the S-form's channel convolutions; the seam's kernel). */
  sformChannels(a: SformChannelsArgs): void;
  /** Test seam: float32 transforms (forward: natural -> bit-reversed order; inverse: in place on `out`, without 1/N). */
  fft32(size: number, out: Float32Array, input: Float32Array | null, inverse: boolean, half?: boolean): void;
}

const PAGE = 65536;
const MAX_PAGES = 65536; // 4 GiB, the wasm32 limit

// ------------------------------------------------------------------ making memories (one seam)

/**
 * Where every WebAssembly.Memory of this backend is made. One seam, so tests can lower the limit or make the
 * runtime refuse (as V8 does once ~12,800 memories have used up its address-space reservations) without
 * exhausting the machine. `maxPages`: the wasm32 limit (4 GiB).
 */
export const wasmMemory = {
  maxPages: MAX_PAGES,
  // typed by what callers read, so the public declarations need neither the DOM nor a WebAssembly lib
  allocate(pages: number): { readonly buffer: ArrayBuffer } {
    return new WebAssembly.Memory({ initial: pages, maximum: pages });
  },
};

/** Bytes of WebAssembly memory (whole pages) a workspace of `capacity` float64 entries takes. */
export function wasmWorkspaceBytes(capacity: number): number {
  return Math.ceil((WASM_HEADER_BYTES + wasmF64Entries(capacity) * 8) / PAGE) * PAGE;
}

/** Whether a workspace of `capacity` float64 entries fits under the WebAssembly memory limit. */
export function wasmWorkspaceFits(capacity: number): boolean {
  return wasmWorkspaceBytes(capacity) <= wasmMemory.maxPages * PAGE;
}

const bytesText = (b: number): string => `${b.toLocaleString('en-US')} bytes`;

/** Memories made here and not yet collected (for the message when the runtime refuses one; only a count). */
let liveMemories = 0;
const collected = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<undefined>(() => void liveMemories--) : null;

/** A memory of `bytes` (whole pages) for `what`, or a ResourceError saying what ran out and what was asked. */
function createMemory(bytes: number, what: string): WebAssembly.Memory {
  const limit = wasmMemory.maxPages * PAGE;
  if (bytes > limit) {
    throw new ResourceError('wasm-memory', bytes, limit, `${what} needs ${bytesText(bytes)} of WebAssembly memory, over the ${bytesText(limit)} limit of WebAssembly memory (wasm32); use backend 'js' (or 'auto') for a call this large`);
  }
  let memory: WebAssembly.Memory;
  try {
    memory = wasmMemory.allocate(bytes / PAGE) as WebAssembly.Memory;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new ResourceError(
      'wasm-memory', bytes, null,
      `the runtime refused ${bytesText(bytes)} of WebAssembly memory for ${what} (${e.message}): every WASM workspace (one per Decoder, ` +
        `so one per layer of a model session, and one per attention() call) reserves address space of its own, and ${liveMemories.toLocaleString('en-US')} ` +
        `are live in this process; release some, or use backend 'js'`,
    );
  }
  liveMemories++;
  collected?.register(memory, undefined);
  return memory;
}

// ------------------------------------------------------------------ compiling the module (once per process)

/**
 * Where the module stands in this runtime:
 * - 'ready': compiled (wasmSupported() is true);
 * - 'pending': not compiled yet, and the runtime may still run it: a synchronous compile was refused (a browser's
 *   limit on synchronous compilation, e.g. Chromium's on the main thread) or has not been tried; `await initWasm()`
 *   compiles it asynchronously;
 * - 'unsupported': this runtime cannot run it (no WebAssembly, no 128-bit SIMD, or compilation refused, e.g. by a
 *   Content-Security-Policy without 'wasm-unsafe-eval'); `reason` says which.
 */
export interface WasmStatus {
  state: 'ready' | 'pending' | 'unsupported';
  reason: string;
}

/** The compiled module once ready (module-global, immutable, safe to share between workspaces). */
let compiled: WebAssembly.Module | null = null;
let status: WasmStatus = { state: 'pending', reason: 'not compiled yet' };
let syncTried = false;

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const s = atob(WASM_BASE64);
  const bytes = new Uint8Array(new ArrayBuffer(s.length));
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/** The module's bytes when this runtime validates them, else null with `status` saying why. */
function validated(): Uint8Array<ArrayBuffer> | null {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') {
    status = { state: 'unsupported', reason: 'this runtime has no WebAssembly' };
    return null;
  }
  const bytes = moduleBytes();
  if (WebAssembly.validate(bytes)) return bytes;
  status = { state: 'unsupported', reason: 'WebAssembly.validate() refused the module: this runtime lacks 128-bit WebAssembly SIMD' };
  return null;
}

function failed(e: unknown): string {
  return `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
}

/**
 * True when this runtime runs the library's WASM SIMD module. The first call compiles it synchronously (the module
 * is ~27 KB: Node, and browsers including Chromium's main thread, whose limit for synchronous compiles is 8 MB,
 * allow that). Where a synchronous compile is refused this stays false until `await initWasm()` has compiled it;
 * wasmStatus() says which case holds.
 */
export function wasmSupported(): boolean {
  if (status.state !== 'pending' || syncTried) return status.state === 'ready';
  syncTried = true;
  const bytes = validated();
  if (bytes === null) return false;
  try {
    compiled = new WebAssembly.Module(bytes);
    status = { state: 'ready', reason: 'compiled' };
  } catch (e) {
    // RangeError: a browser's size limit on synchronous compiles (asynchronous compilation may still work)
    status = { state: 'pending', reason: `the runtime refused to compile it synchronously (${failed(e)})` };
  }
  return status.state === 'ready';
}

/** Where the WASM module stands (see WasmStatus); tries the synchronous compile first, as wasmSupported() does. */
export function wasmStatus(): WasmStatus {
  wasmSupported();
  return { ...status };
}

/**
 * Compile the module asynchronously: the ready step for runtimes that refuse a synchronous compile (harmless and
 * instant elsewhere). Await it before creating a model or decoder there so that backend 'auto' picks WASM.
 * Resolves to wasmSupported(); never rejects (an unsupported runtime resolves to false, wasmStatus() says why).
 */
export async function initWasm(): Promise<boolean> {
  if (wasmSupported() || status.state === 'unsupported') return status.state === 'ready';
  const bytes = validated();
  if (bytes === null) return false;
  try {
    const mod = await WebAssembly.compile(bytes);
    if (compiled === null) compiled = mod; // a concurrent initWasm() may have finished first
    status = { state: 'ready', reason: 'compiled' };
  } catch (e) {
    if (compiled === null) status = { state: 'unsupported', reason: `compiling the module failed (${failed(e)})` };
  }
  return status.state === 'ready';
}

/** Why backend 'wasm' cannot be used here: one sentence naming the cause and the fix. */
export function wasmUnavailableMessage(): string {
  const s = wasmStatus();
  if (s.state === 'pending') return `the WebAssembly module is not initialized yet: ${s.reason}; await initWasm() (from 'toeplitz-attention' or 'toeplitz-attention/model') before creating the model or decoder`;
  if (s.state === 'unsupported') return `this runtime cannot run the WebAssembly SIMD backend: ${s.reason}; use backend 'js' or 'auto'`;
  return 'the WebAssembly module is ready';
}

function compiledModule(): WebAssembly.Module {
  if (!wasmSupported() || compiled === null) throw new Error(wasmUnavailableMessage());
  return compiled;
}

function instantiate(memory: WebAssembly.Memory): Kernels {
  return new WebAssembly.Instance(compiledModule(), { env: { memory } }).exports as unknown as Kernels;
}

// ------------------------------------------------------------------ sizing rules (exact, for the engine)

/** Float64 entries that f64(length) takes from a WASM workspace (views are 64-byte aligned). */
export function wasmF64Entries(length: number): number {
  return Math.ceil(length / 8) * 8;
}

/** Float64 entries an FFT plan of `size` takes from a WASM workspace (held for the workspace's lifetime). */
export function wasmFftPlanEntries(size: number): number {
  if (size < 2) return 2;
  const p = Math.round(Math.log2(size));
  const R = p % 2 === 1 ? 2 : 4;
  let sumL = 0;
  for (let L = R; 4 * L <= size; L *= 4) sumL += L;
  const bytes = sumL * 96 + (size / R) * 4;
  return Math.ceil(bytes / 64) * 8;
}

/** Float64 entries a float32 FFT plan of `size` takes from a WASM workspace (assembly/fft32.ts fft32PlanBytes). */
export function wasmFft32PlanEntries(size: number): number {
  let sumL = 0;
  for (let L = size >> 2; L >= 2; L >>= 2) sumL += L;
  return Math.ceil(Math.max(16, sumL * 48) / 64) * 8;
}

/** Bit reversal of j in `bits` bits (the order of fft32Forward's output). */
function bitReverse(j: number, bits: number): number {
  let r = 0;
  for (let b = 0; b < bits; b++) {
    r = (r << 1) | (j & 1);
    j >>= 1;
  }
  return r;
}

// ------------------------------------------------------------------ the workspace

const NORMALIZE_MODE: Record<Normalize, number> = { none: 0, scale: 1, l2: 2 };

// How a kernel uses an array argument (ArgSlots): read, written, both, or scratch (neither copied in nor back).
const IN = 1;
const OUT = 2;
const INOUT = 3;
const SPACE = 0;
/** Flag beside the mode: the array is a view of this workspace's memory (read in place). */
const HERE = 4;
/** What a call's slots need besides views of the memory (the workspace's `away`): copies, scratch. */
const COPY = 1;
const SCRATCH = 2;
/** The most array arguments of one kernel (sformChannels: spectra, phiKT, vT, phiQT, accT, scratch, lent spectra). */
const MAX_ARGS = 8;

/** Kernel arguments are addressed by int32 element offsets: any array WebAssembly memory holds fits. */
const MAX_ELEMENT = 0x7fffffff;

function checkRange(a: Float64Array | Float32Array, off: number, len: number, what: string): void {
  if (!(off >= 0 && len >= 0 && off + len <= a.length)) {
    throw new RangeError(`${what}: elements [${off}, ${off + len}) are outside an array of length ${a.length}`);
  }
  if (!(Number.isInteger(off) && Number.isInteger(len) && off + len <= MAX_ELEMENT)) {
    throw new RangeError(`${what}: elements [${off}, ${off + len}) must be integers below 2^31 (WASM kernels address arrays by int32 element offsets; use backend 'js' for arrays this large)`);
  }
}

/**
 * dst[dOff ..] = src[sOff ..] for len entries: an element loop for short runs (a subarray view would be an
 * allocation per call on the per-token path), TypedArray.set (a memory copy) for long ones. Two functions, one
 * per element type, so each loop stays monomorphic.
 */
function copy64(dst: Float64Array, dOff: number, src: Float64Array, sOff: number, len: number): void {
  if (len <= 1024) {
    for (let i = 0; i < len; i++) dst[dOff + i] = src[sOff + i]!;
  } else {
    dst.set(src.subarray(sOff, sOff + len), dOff);
  }
}

function copy32(dst: Float32Array, dOff: number, src: Float32Array, sOff: number, len: number): void {
  if (len <= 1024) {
    for (let i = 0; i < len; i++) dst[dOff + i] = src[sOff + i]!;
  } else {
    dst.set(src.subarray(sOff, sOff + len), dOff);
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0 && n <= 2 ** 26;
}

class WasmFftPlan implements FftPlan {
  constructor(
    private readonly ws: WasmWorkspaceImpl,
    readonly size: number,
    readonly ptr: number,
  ) {}
  forward(out: Float64Array, input: Float64Array): void {
    this.ws.fft(this, out, input, false);
  }
  inverse(out: Float64Array, input: Float64Array): void {
    this.ws.fft(this, out, input, true);
  }
}

/** One WebAssembly memory with its instance of the kernels: what every workspace over that memory calls. */
interface WasmHost {
  readonly memory: WebAssembly.Memory;
  readonly buf: ArrayBuffer;
  readonly heap: Float64Array; // the whole memory, for copies
  readonly heap32: Float32Array;
  readonly x: Kernels;
  /** The views of this memory kernels were given lately (SeenViews), for every workspace of this memory. */
  readonly views: SeenViews;
}

/** Kernel ids (arg slots are cached per kernel): begin(id). */
const K_FFT = 0;
const K_AFORM_ROWS = 1;
const K_AFORM_RING = 2;
const K_FAR_ABSORB = 3;
const K_FAR_CONTRACT = 4;
const K_SCALE_FAR = 5;
const K_PRF_LOGITS = 6;
const K_EXP_ROWS = 7;
const K_EXP_SHIFT = 8;
const K_GEMM = 9;
const K_GEMM_PACKED = 10;
const K_GEMV_F32 = 11;
const K_SWIGLU = 12;
const K_SPECTRAL_MAC = 13;
const K_SPECTRAL_CONV = 14;
const K_SFORM_CHANNELS = 15;
const K_AFORM_RING32 = 16;
const K_AFORM_ROWS32 = 17;
const K_FAR_ABSORB32 = 18;
const KERNEL_IDS = 19;

/** What range errors call the arguments of the wrappers shared by a float64 kernel and its float32 twin (then the kernel). */
const argNames = (kernel: string, args: string[]): readonly string[] => [...args.map((a) => `${kernel} ${a}`), kernel];
const AFORM_ROWS_NAMES = argNames('aformRows', ['c', 'phiK', 'v', 'phiQ', 'acc']);
const AFORM_ROWS32_NAMES = argNames('aformRows32', ['c', 'phiK', 'v', 'phiQ', 'acc']);
const AFORM_RING_NAMES = argNames('aformRing', ['c', 'ringK', 'ringV', 'phiQ', 'acc']);
const AFORM_RING32_NAMES = argNames('aformRing32', ['c', 'ringK', 'ringV', 'phiQ', 'acc']);
const FAR_ABSORB_NAMES = argNames('farAbsorb', ['far.sum', 'far.comp', 'phiK', 'v']);
const FAR_ABSORB32_NAMES = argNames('farAbsorb32', ['far.sum', 'far.comp', 'phiK', 'v']);

/**
 * Array arguments of each kernel (K_* order), in the order of its slots (arg(i, ...)): the SeenViews layout. A
 * count too small would only cost remembered views, never a wrong pointer (an entry is matched by the view itself).
 */
const KERNEL_SLOTS = [2, 5, 5, 4, 3, 2, 3, 1, 1, 3, 3, 4, 2, 3, 3, 7, 5, 5, 4];
/** Each kernel's first slot among all kernels' slots, side by side. */
const SLOT_START = KERNEL_SLOTS.map((_, k) => KERNEL_SLOTS.slice(0, k).reduce((a, b) => a + b, 0));
const ALL_SLOTS = KERNEL_SLOTS.reduce((a, b) => a + b, 0);
/**
 * Views of this memory remembered per kernel slot: one at first, doubling (to at most 32) while views keep
 * missing, so a slot fed by a decoder's heads in turn (or a model's 17 weight panels) ends up remembering the round.
 */
const MAX_WAYS = 32;

/**
 * The views of this memory passed to each kernel's slots lately, with their byte offsets and element sizes, in one
 * table per memory (a few objects, however many kernels run). Reading .buffer and .byteOffset costs ~10 ns each
 * (V8 does not inline them: more than a small kernel's call itself), and the hot callers pass the same views in
 * the same order every time: each way remembers the way used after it (`next`), so a repeating order (one view
 * each time, heads in turn, layers in turn, in any order) is found at the first look. Entries: kernel k's slot i,
 * way j at start[k] + i * ways[k] + j.
 */
interface SeenViews {
  /** per kernel: ways per slot (a power of two) */
  readonly ways: Uint8Array;
  /** per kernel: its first entry */
  readonly start: Int32Array;
  /** per entry: the view (null: free) */
  arrays: (Float64Array | Float32Array | null)[];
  /** per entry: its byte offset */
  base: Float64Array;
  /** per entry: [the way used after this one last time, bytes per element] */
  meta: Uint8Array;
  /** per kernel slot (SLOT_START[k] + i): [the way used last, the way the next new view goes to (the oldest)] */
  readonly cursor: Uint8Array;
  /** per kernel: views of this memory not remembered, since its last doubling */
  readonly misses: Int32Array;
}

function createSeenViews(): SeenViews {
  const start = new Int32Array(KERNEL_IDS);
  for (let k = 0; k < KERNEL_IDS; k++) start[k] = SLOT_START[k]!;
  return {
    ways: new Uint8Array(KERNEL_IDS).fill(1),
    start,
    arrays: new Array<Float64Array | Float32Array | null>(ALL_SLOTS).fill(null),
    base: new Float64Array(ALL_SLOTS),
    meta: new Uint8Array(2 * ALL_SLOTS),
    cursor: new Uint8Array(2 * ALL_SLOTS),
    misses: new Int32Array(KERNEL_IDS),
  };
}

/** Twice the ways for every slot of kernel `id`, keeping what each remembers (the table laid out again). */
function widenSeenViews(t: SeenViews, id: number): void {
  let entries = 0;
  for (let k = 0; k < KERNEL_IDS; k++) entries += KERNEL_SLOTS[k]! * t.ways[k]! * (k === id ? 2 : 1);
  const arrays = new Array<Float64Array | Float32Array | null>(entries).fill(null);
  const base = new Float64Array(entries);
  const meta = new Uint8Array(2 * entries);
  let at = 0;
  for (let k = 0; k < KERNEL_IDS; k++) {
    const ways = t.ways[k]!;
    const wider = k === id ? 2 * ways : ways;
    for (let i = 0; i < KERNEL_SLOTS[k]!; i++) {
      for (let j = 0; j < ways; j++) {
        const from = t.start[k]! + i * ways + j;
        const to = at + i * wider + j;
        arrays[to] = t.arrays[from]!;
        base[to] = t.base[from]!;
        meta[2 * to] = t.meta[2 * from]!;
        meta[2 * to + 1] = t.meta[2 * from + 1]!;
      }
      if (k === id) t.cursor[2 * (SLOT_START[k]! + i) + 1] = ways; // the new ways are free
    }
    t.start[k] = at;
    at += KERNEL_SLOTS[k]! * wider;
  }
  t.ways[id] = 2 * t.ways[id]!;
  t.misses[id] = 0;
  t.arrays = arrays;
  t.base = base;
  t.meta = meta;
}

// The arguments of the kernel call being made (arg(), bind(), unbind()): module scope, shared by every workspace
// (a call runs from its first arg() to its unbind() without another kernel call in between), so a call allocates
// nothing and a memory costs no more than its SeenViews.
/** per slot: the caller's array when it is not a view of the memory (else null) */
const slotArray: (Float64Array | Float32Array | null)[] = new Array<Float64Array | Float32Array | null>(MAX_ARGS).fill(null);
/**
 * per slot: first element (arrays outside the memory only), elements, mode (IN, OUT, INOUT or SPACE, | HERE), bytes
 * per element (8 or 4)
 */
const slotInfo = new Int32Array(4 * MAX_ARGS);
/**
 * per slot: the byte pointer the kernel gets, in the memory of the kernels bind() returned; int32 (the kernels'
 * i32 parameters: pointers at 2 GiB and above wrap to the negative values WebAssembly reads as the same u32), so a
 * call passes small integers, never float64 values to convert; read `>>> 0` in JS
 */
const slotPtr = new Int32Array(MAX_ARGS);
/** per slot, while a throwaway instance runs the call: where a view of the memory is (slotPtr: its copy) */
const slotHome = new Float64Array(MAX_ARGS);

/** A memory of `bytes` (whole pages) and its instance. */
function createHost(bytes: number, what: string): WasmHost {
  const module = compiledModule();
  const memory = createMemory(bytes, what);
  const x = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;
  if (x.headerBytes() !== WASM_HEADER_BYTES) throw new Error(`wasmBinary.ts is out of step with wasm.ts (header ${x.headerBytes()} != ${WASM_HEADER_BYTES})`);
  const buf = memory.buffer;
  return { memory, buf, heap: new Float64Array(buf), heap32: new Float32Array(buf), x, views: createSeenViews() };
}

class WasmWorkspaceImpl implements WasmWorkspace {
  readonly backend = 'wasm' as const;
  readonly capacity: number;
  private readonly buf: ArrayBuffer;
  private readonly x: Kernels;
  private readonly heap: Float64Array; // the whole memory, for copies
  private readonly heap32: Float32Array;
  private readonly base: number; // first allocatable byte
  private readonly end: number; // first byte past the workspace
  private lo: number; // next free byte (bottom stack)
  private hi: number; // first byte of the plans (top)
  private dirty: number; // bytes in [base, dirty) may hold old data
  private readonly plans = new Map<number, WasmFftPlan>();
  private readonly plans32 = new Map<number, number>(); // float32 plans: size -> byte offset (from the top, as plans)
  // the call being made (module scope: see slotArray)
  private readonly slotArray = slotArray;
  private readonly slots = slotInfo;
  private readonly ptr = slotPtr;
  private readonly home = slotHome;
  /** The views of this memory kernels were given lately (the host's). */
  private readonly views: SeenViews;
  /** The kernel being described (begin()): its id, its first entry, ways per slot, first slot among all kernels'. */
  private kernel = 0;
  private kStart = 0;
  private kWays = 1;
  private kSlot = 0;
  /** The FFT plan bind() placed (byte pointer). */
  private planPtr = 0;
  /** What bind() has to place besides views of this memory: COPY (arrays outside it) | SCRATCH (space()), or 0. */
  private away = 0;
  /** Whether the call being made copied some slot (bindCopies). */
  private copied = false;
  /** The throwaway instance's memory while a call runs there (else null). */
  private side: Float64Array | null = null;
  private side32: Float32Array | null = null;

  /** A workspace over bytes [base, end) of the host's memory (its own memory, or a region of an arena's). */
  constructor(host: WasmHost, base: number, end: number, dirty: boolean, capacity = (end - base) / 8) {
    this.x = host.x;
    this.buf = host.buf;
    this.heap = host.heap;
    this.heap32 = host.heap32;
    this.views = host.views;
    this.capacity = capacity;
    this.base = base;
    this.end = end;
    this.lo = base;
    this.dirty = dirty ? end : base;
    this.hi = end;
  }

  get available(): number {
    return (this.hi - this.lo) / 8;
  }

  f64(length: number): Float64Array {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`f64(length): length must be a non-negative integer, got ${length}`);
    const need = wasmF64Entries(length) * 8;
    if (this.lo + need > this.hi) {
      throw new Error(
        `WASM workspace is full: f64(${length}) asks for ${length} float64 entries but only ${this.available} are left ` +
          `(capacity ${this.capacity}; FFT plans hold ${(this.end - this.hi) / 8}); size the workspace up front`,
      );
    }
    const view = new Float64Array(this.buf, this.lo, length);
    if (this.lo < this.dirty) view.fill(0);
    this.lo += need;
    if (this.lo > this.dirty) this.dirty = this.lo;
    return view;
  }

  take(layout: Layout): LayoutViews {
    if (this.lo + layout.bytes > this.hi) {
      throw new Error(`WASM workspace is full: a layout of ${layout.bytes} bytes (${layout.arrays.length} arrays) does not fit in the ${this.hi - this.lo} bytes left (capacity ${this.capacity} float64); size the workspace from the layout`);
    }
    const at = this.lo;
    if (at < this.dirty) new Uint8Array(this.buf, at, Math.min(layout.bytes, this.dirty - at)).fill(0);
    this.lo += layout.bytes;
    if (this.lo > this.dirty) this.dirty = this.lo;
    return new LayoutViews(layout, this.buf, at);
  }

  mark(): number {
    return this.lo;
  }

  reset(keepPlans: boolean): void {
    this.lo = this.base;
    if (!keepPlans) {
      this.plans.clear();
      this.plans32.clear();
      this.hi = this.end;
    }
  }

  release(mark: number): void {
    if (!Number.isInteger(mark) || mark < this.base || mark > this.lo) {
      throw new Error(`release(${mark}): not a live mark of this workspace (current ${this.lo}); marks are released in stack order`);
    }
    this.lo = mark;
  }

  fftPlan(size: number): FftPlan {
    let plan = this.plans.get(size);
    if (plan !== undefined) return plan;
    if (!isPowerOfTwo(size)) throw new RangeError(`FFT size must be a power of two >= 2, got ${size}`);
    const bytes = wasmFftPlanEntries(size) * 8;
    if (this.hi - bytes < this.lo) {
      throw new Error(`WASM workspace is full: an FFT plan of size ${size} needs ${bytes / 8} float64 entries but only ${this.available} are left (capacity ${this.capacity})`);
    }
    this.hi -= bytes;
    this.x.fftInit(this.hi, size);
    plan = new WasmFftPlan(this, size, this.hi);
    this.plans.set(size, plan);
    return plan;
  }

  // -------------------------------------------------------------- kernel arguments: one description, both paths
  //
  // A wrapper describes each array argument of its kernel once, as slot i (arg(i, ...): which elements, read or
  // written), then calls the kernel once with ptr[i] for it. bind() decides where the kernel reads slot i:
  //   - a view of this memory: in place (the hot paths: every array of a Decoder, attention() and the model's
  //     panels), no copy;
  //   - any other array: copied into the free space above the stack (element by element when short, so a call per
  //     token allocates nothing: a model's logits) and, if written, copied back by unbind();
  //   - no room for the copies: a throwaway instance with a memory of its own runs the call (the same code, so the
  //     same results).
  // The slots are typed arrays of module scope (calls run one at a time), so describing and binding a call
  // allocates nothing; views of this memory are recognized from the host's SeenViews, without reading their buffer.
  // bind() takes no memory from the stack (copies live above `lo` only for the call): nothing to undo on a throw.

  /** Start describing a call of kernel `id` (K_*). */
  private begin(id: number): void {
    this.kernel = id;
    this.kStart = this.views.start[id]!;
    this.kWays = this.views.ways[id]!;
    this.kSlot = SLOT_START[id]!;
    this.away = 0;
  }

  /** Slot i: elements [off, off + len) of `a`, used by the kernel as `mode`; the range checked here. */
  private arg(i: number, a: Float64Array | Float32Array, off: number, len: number, mode: number, what: string): void {
    if (!(off >= 0 && len >= 0 && off + len <= MAX_ELEMENT && off + len <= a.length)) checkRange(a, off, len, what);
    const t = this.views;
    const w = this.kStart + i * this.kWays;
    const c = 2 * (this.kSlot + i);
    const e = w + t.meta[2 * (w + t.cursor[c]!)]!;
    if (t.arrays[e] !== a) {
      this.argMiss(i, a, off, len, mode);
      return;
    }
    t.cursor[c] = e - w;
    // a view of this memory, met in this slot lately (nothing more kept of it: its elements are at ptr[i])
    const bytes = t.meta[2 * e + 1]!;
    const o = 4 * i;
    const slots = this.slots;
    slots[o + 1] = len;
    slots[o + 2] = mode | HERE;
    slots[o + 3] = bytes;
    this.ptr[i] = t.base[e]! + off * bytes;
  }

  /**
   * arg() for an array not at the way this slot looks first: its buffer and offset read (as every call did before
   * views were remembered, so a miss costs what a call cost then), and a view of this memory remembered in place of
   * the oldest, after the last one used. Not looked for in the other ways: when more views take turns in a slot than
   * it remembers, that search would be a cost on every call.
   */
  private argMiss(i: number, a: Float64Array | Float32Array, off: number, len: number, mode: number): void {
    const o = 4 * i;
    const slots = this.slots;
    slots[o + 1] = len;
    const bytes = a.BYTES_PER_ELEMENT;
    slots[o + 3] = bytes;
    if (a.buffer !== this.buf) {
      // to be copied: the array and where its elements start
      this.slotArray[i] = a;
      slots[o] = off;
      slots[o + 2] = mode;
      this.away |= COPY;
      return;
    }
    const base = a.byteOffset;
    slots[o + 2] = mode | HERE;
    this.ptr[i] = base + off * bytes;
    const t = this.views;
    const ways = this.kWays;
    const w = this.kStart + i * ways;
    const c = 2 * (this.kSlot + i);
    const way = t.cursor[c + 1]!;
    const e = w + way;
    t.arrays[e] = a;
    t.base[e] = base;
    t.meta[2 * e + 1] = bytes;
    t.meta[2 * (w + t.cursor[c]!)] = way; // follows the last one used
    t.cursor[c] = way;
    t.cursor[c + 1] = (way + 1) & (ways - 1);
    if (++t.misses[this.kernel]! > 8 * ways && ways < MAX_WAYS) {
      widenSeenViews(t, this.kernel);
      // the later slots of this call are looked for in the new layout
      this.kStart = t.start[this.kernel]!;
      this.kWays = t.ways[this.kernel]!;
    }
  }

  /** Slot i: `entries` float64 of scratch (no array of the caller's; taken from free space like a copy). */
  private space(i: number, entries: number): void {
    const o = 4 * i;
    this.slots[o + 1] = entries;
    this.slots[o + 2] = SPACE;
    this.slots[o + 3] = 8;
    this.away |= SCRATCH;
  }

  /** Free bytes left once slots [0, count) are bound here (with the FFT plan of `planSize` when > 0). */
  private spareBytes(count: number, planSize: number): number {
    let need = planSize > 0 && !this.plans.has(planSize) ? wasmFftPlanEntries(planSize) * 8 : 0;
    const slots = this.slots;
    for (let o = 0; o < 4 * count; o += 4) if (!(slots[o + 2]! & HERE)) need += roundToLines(slots[o + 1]! * slots[o + 3]!);
    return this.hi - this.lo - need;
  }

  /**
   * Place slots [0, count) (see above) and, when planSize > 0, an FFT plan of that size (planPtr); returns the
   * kernels to call with ptr[i]. unbind(count) must follow the call.
   */
  private bind(count: number, planSize: number): Kernels {
    if (this.away === SCRATCH && planSize === 0) {
      // every array in place, scratch slots only: placed above the stack, nothing to copy
      let at = this.lo;
      for (let o = 0; o < 4 * count; o += 4) {
        if (this.slots[o + 2] !== SPACE) continue;
        this.ptr[o >> 2] = at;
        at += roundToLines(this.slots[o + 1]! * 8);
      }
      if (at <= this.hi) {
        if (at > this.dirty) this.dirty = at;
        return this.x;
      }
    }
    if (this.away !== 0) return this.bindCopies(count, planSize);
    if (planSize > 0) this.planPtr = (this.fftPlan(planSize) as WasmFftPlan).ptr;
    return this.x;
  }

  /** bind() when some slot is not a view of this memory (apart, so the in-place path stays small). */
  private bindCopies(count: number, planSize: number): Kernels {
    const ptr = this.ptr;
    const slots = this.slots;
    this.copied = true;
    if (this.spareBytes(count, planSize) >= 0) {
      if (planSize > 0) this.planPtr = (this.fftPlan(planSize) as WasmFftPlan).ptr; // first: it moves hi
      let at = this.lo;
      for (let i = 0; i < count; i++) {
        const mode = slots[4 * i + 2]!;
        if (mode & HERE) continue; // ptr[i] set by arg()
        ptr[i] = at;
        if (mode & IN) this.copyIn(this.heap, this.heap32, at, i);
        at += roundToLines(slots[4 * i + 1]! * slots[4 * i + 3]!);
      }
      if (at > this.dirty) this.dirty = at; // f64() must zero what these copies left behind
      return this.x;
    }
    // no room here: a throwaway instance holding copies of every slot (and its own plan); views of this memory are
    // copied from where they are (`home`, for the copy back)
    let bytes = WASM_HEADER_BYTES;
    for (let i = 0; i < count; i++) bytes += roundToLines(slots[4 * i + 1]! * slots[4 * i + 3]!);
    const planBytes = planSize > 0 ? wasmFftPlanEntries(planSize) * 8 : 0;
    const memory = createMemory(Math.ceil((bytes + planBytes) / PAGE) * PAGE, 'a WASM kernel call on copies of arrays outside its workspace');
    const x = instantiate(memory);
    const heap = new Float64Array(memory.buffer);
    const heap32 = new Float32Array(memory.buffer);
    let at = WASM_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const mode = slots[4 * i + 2]!;
      const n = slots[4 * i + 1]! * slots[4 * i + 3]!;
      if (mode & HERE) {
        this.home[i] = ptr[i]! >>> 0;
        if (mode & IN) new Uint8Array(memory.buffer, at, n).set(new Uint8Array(this.buf, this.home[i]!, n));
      } else if (mode & IN) {
        this.copyIn(heap, heap32, at, i);
      }
      ptr[i] = at;
      at += roundToLines(slots[4 * i + 1]! * slots[4 * i + 3]!);
    }
    if (planSize > 0) {
      this.planPtr = at;
      x.fftInit(at, planSize);
    }
    this.side = heap;
    this.side32 = heap32;
    return x;
  }

  /** Copy slot i's elements (an array outside this memory) to byte `at` of a memory (its float64 and float32 views). */
  private copyIn(heap: Float64Array, heap32: Float32Array, at: number, i: number): void {
    const a = this.slotArray[i]!;
    const o = 4 * i;
    // (byte pointers are below 4 GiB: the element indices fit int32)
    if (this.slots[o + 3] === 8) copy64(heap, (at / 8) | 0, a as Float64Array, this.slots[o]!, this.slots[o + 1]!);
    else copy32(heap32, (at / 4) | 0, a as Float32Array, this.slots[o]!, this.slots[o + 1]!);
  }

  /** After the call bind() prepared: written slots copied back to arrays that were copied. */
  private unbind(count: number): void {
    if (this.copied) this.unbindCopies(count);
  }

  private unbindCopies(count: number): void {
    const side = this.side;
    const heap = side ?? this.heap;
    const heap32 = this.side32 ?? this.heap32;
    const slots = this.slots;
    for (let i = 0; i < count; i++) {
      const a = this.slotArray[i]!;
      this.slotArray[i] = null; // the caller's arrays are not kept alive by the workspace
      const o = 4 * i;
      const mode = slots[o + 2]!;
      if (!(mode & OUT)) continue; // (a scratch slot: SPACE has no OUT bit)
      const at = this.ptr[i]! >>> 0;
      if (mode & HERE) {
        // a view of this memory: copied back only from a throwaway instance
        if (side !== null) {
          const n = slots[o + 1]! * slots[o + 3]!;
          new Uint8Array(this.buf, this.home[i]!, n).set(new Uint8Array(side.buffer, at, n));
        }
      } else if (slots[o + 3] === 8) copy64(a as Float64Array, slots[o]!, heap, (at / 8) | 0, slots[o + 1]!);
      else copy32(a as Float32Array, slots[o]!, heap32, (at / 4) | 0, slots[o + 1]!);
    }
    this.side = null;
    this.side32 = null;
    this.copied = false;
  }

  // -------------------------------------------------------------- kernels

  fft(plan: WasmFftPlan, out: Float64Array, input: Float64Array, inverse: boolean): void {
    const n = plan.size;
    const len = 2 * n;
    this.begin(K_FFT);
    this.arg(0, out, 0, len, OUT, 'fft out');
    this.arg(1, input, 0, len, IN, 'fft input');
    // overlap: views of this memory compared by their pointers; arrays outside it by their own buffer
    const here = this.slots[2]! & this.slots[6]! & HERE;
    const o = this.ptr[0]! >>> 0;
    const i = this.ptr[1]! >>> 0;
    if (here ? o < i + len * 8 && i < o + len * 8 : out.buffer === input.buffer && out.byteOffset < input.byteOffset + len * 8 && input.byteOffset < out.byteOffset + len * 8) {
      throw new Error('FFT: input and output must not overlap');
    }
    const x = this.bind(2, n);
    const p = this.ptr;
    if (inverse) x.fftInverse(this.planPtr, n, p[0]!, p[1]!);
    else x.fftForward(this.planPtr, n, p[0]!, p[1]!);
    this.unbind(2);
  }

  aformRows(a: AformRowsArgs): void {
    this.aformRowsOf(a, K_AFORM_ROWS, AFORM_ROWS_NAMES);
  }

  /** The float32 twin (dtype 'float32': c, phiK, v, phiQ float32; acc float64): the same arguments. */
  aformRows32(a: AformRows32Args): void {
    this.aformRowsOf(a, K_AFORM_ROWS32, AFORM_ROWS32_NAMES);
  }

  private aformRowsOf(a: AformRowsArgs | AformRows32Args, id: number, names: readonly string[]): void {
    const { c, tLo, tHi, phiK, v, phiQ, q0, m, dv, b0, b1, acc } = a;
    if (tHi <= tLo || b1 <= b0) return;
    if (b0 < q0 || tLo < 0) throw new RangeError(`${names[5]}: need q0 <= b0 and tLo >= 0 (q0 ${q0}, b0 ${b0}, tLo ${tLo})`);
    const jBase = Math.max(0, b0 - tHi + 1);
    const jEnd = b1 - 1 - tLo; // last key row read
    if (jEnd < jBase) return;
    const w1 = dv + 1;
    const nk = jEnd - jBase + 1;
    this.begin(id);
    this.arg(0, c, 0, Math.min(tHi, b1), IN, names[0]!);
    this.arg(1, phiK, jBase * m, nk * m, IN, names[1]!);
    this.arg(2, v, jBase * dv, nk * dv, IN, names[2]!);
    this.arg(3, phiQ, (b0 - q0) * m, (b1 - b0) * m, IN, names[3]!);
    this.arg(4, acc, (b0 - q0) * w1, (b1 - b0) * w1, INOUT, names[4]!);
    const x = this.bind(5, 0);
    const p = this.ptr;
    // one call site per kernel (a call site with one target reaches WebAssembly fastest): the same arguments
    if (id === K_AFORM_ROWS) x.aformRows(p[0]!, tLo, tHi, p[1]!, p[2]!, jBase, p[3]!, p[4]!, b0, b1, m, dv);
    else x.aformRows32(p[0]!, tLo, tHi, p[1]!, p[2]!, jBase, p[3]!, p[4]!, b0, b1, m, dv);
    this.unbind(5);
  }

  aformRing(a: AformRingArgs): void {
    this.aformRingOf(a, K_AFORM_RING, AFORM_RING_NAMES);
  }

  /** The float32 twin (dtype 'float32': c, ringK, ringV, phiQ float32; acc float64): the same arguments. */
  aformRing32(a: AformRing32Args): void {
    this.aformRingOf(a, K_AFORM_RING32, AFORM_RING32_NAMES);
  }

  private aformRingOf(a: AformRingArgs | AformRing32Args, id: number, names: readonly string[]): void {
    const { c, ringK, ringV, start, len, cap, phiQ, qOff, m, dv, acc, aOff } = a;
    if (len <= 0) return;
    if (!(len <= cap && start >= 0 && start < cap)) throw new RangeError(`${names[5]}: need 0 <= start < cap and len <= cap (start ${start}, len ${len}, cap ${cap})`);
    this.begin(id);
    this.arg(0, c, 0, len, IN, names[0]!);
    this.arg(1, ringK, 0, cap * m, IN, names[1]!);
    this.arg(2, ringV, 0, cap * dv, IN, names[2]!);
    this.arg(3, phiQ, qOff, m, IN, names[3]!);
    this.arg(4, acc, aOff, dv + 1, INOUT, names[4]!);
    const x = this.bind(5, 0);
    const p = this.ptr;
    if (id === K_AFORM_RING) x.aformRing(p[0]!, p[1]!, p[2]!, start, len, cap, p[3]!, p[4]!, m, dv);
    else x.aformRing32(p[0]!, p[1]!, p[2]!, start, len, cap, p[3]!, p[4]!, m, dv);
    this.unbind(5);
  }

  farAbsorb(a: FarAbsorbArgs): void {
    this.farAbsorbOf(a, K_FAR_ABSORB, FAR_ABSORB_NAMES);
  }

  /** The float32 twin (dtype 'float32': phiK, v float32; F float64): the same arguments. */
  farAbsorb32(a: FarAbsorb32Args): void {
    this.farAbsorbOf(a, K_FAR_ABSORB32, FAR_ABSORB32_NAMES);
  }

  private farAbsorbOf(a: FarAbsorbArgs | FarAbsorb32Args, id: number, names: readonly string[]): void {
    const { far, gamma, phiK, kOff, v, vOff, m, dv } = a;
    const size = m * (dv + 1);
    this.begin(id);
    this.arg(0, far.sum, 0, size, INOUT, names[0]!);
    this.arg(1, far.comp, 0, size, INOUT, names[1]!);
    this.arg(2, phiK, kOff, m, IN, names[2]!);
    this.arg(3, v, vOff, dv, IN, names[3]!);
    const x = this.bind(4, 0);
    const p = this.ptr;
    if (id === K_FAR_ABSORB) x.farAbsorb(p[0]!, p[1]!, gamma, p[2]!, p[3]!, m, dv);
    else x.farAbsorb32(p[0]!, p[1]!, gamma, p[2]!, p[3]!, m, dv);
    this.unbind(4);
  }

  farContract(a: FarContractArgs): void {
    const { far, cFar, phiQ, qOff, m, dv, acc, aOff } = a;
    this.begin(K_FAR_CONTRACT);
    this.arg(0, far.sum, 0, m * (dv + 1), IN, 'farContract far.sum');
    this.arg(1, phiQ, qOff, m, IN, 'farContract phiQ');
    this.arg(2, acc, aOff, dv + 1, INOUT, 'farContract acc');
    const x = this.bind(3, 0);
    const p = this.ptr;
    x.farContract(p[0]!, cFar, p[1]!, m, dv, p[2]!);
    this.unbind(3);
  }

  scaleFar(far: FarArrays, factor: number, m: number, dv: number): void {
    const size = m * (dv + 1);
    this.begin(K_SCALE_FAR);
    this.arg(0, far.sum, 0, size, INOUT, 'scaleFar far.sum');
    this.arg(1, far.comp, 0, size, INOUT, 'scaleFar far.comp');
    const x = this.bind(2, 0);
    const p = this.ptr;
    x.scaleFar(p[0]!, p[1]!, factor, size);
    this.unbind(2);
  }

  prfLogits(a: PrfLogitsArgs): number {
    const { W, m, d, normalize, x: xs, n, out } = a;
    if (n <= 0) return -Infinity;
    const mode = NORMALIZE_MODE[normalize];
    if (mode === undefined) throw new RangeError(`prfLogits: unknown normalize ${String(normalize)}`);
    this.begin(K_PRF_LOGITS);
    this.arg(0, W, 0, m * d, IN, 'prfLogits W');
    this.arg(1, xs, 0, n * d, IN, 'prfLogits x');
    this.arg(2, out, 0, n * m, OUT, 'prfLogits out');
    const x = this.bind(3, 0);
    const p = this.ptr;
    const max = x.prfLogits(p[0]!, m, d, mode, p[1]!, n, p[2]!);
    this.unbind(3);
    return max;
  }

  expRows(xs: Float64Array, n: number, m: number): void {
    if (n <= 0 || m <= 0) return;
    this.begin(K_EXP_ROWS);
    this.arg(0, xs, 0, n * m, INOUT, 'expRows x');
    const x = this.bind(1, 0);
    x.expRows(this.ptr[0]!, n, m);
    this.unbind(1);
  }

  expShift(xs: Float64Array, len: number, shift: number): void {
    if (len <= 0) return;
    this.begin(K_EXP_SHIFT);
    this.arg(0, xs, 0, len, INOUT, 'expShift x');
    const x = this.bind(1, 0);
    x.expShift(this.ptr[0]!, len, shift);
    this.unbind(1);
  }

  gemm(g: GemmArgs): void {
    const { a, aOff, b: bm, bOff, c, cOff, M, N, K, accumulate } = g;
    if (M <= 0 || N <= 0) return;
    this.begin(K_GEMM);
    this.arg(0, a, aOff, M * K, IN, 'gemm a');
    this.arg(1, bm, bOff, N * K, IN, 'gemm b');
    this.arg(2, c, cOff, M * N, accumulate ? INOUT : OUT, 'gemm c');
    const x = this.bind(3, 0);
    const p = this.ptr;
    x.gemm(p[0]!, p[1]!, p[2]!, M, N, K, accumulate ? 1 : 0);
    this.unbind(3);
  }

  packPanels(W: Float64Array, wOff: number, N: number, K: number, out: Panels): void {
    if (N <= 0 || K <= 0) return;
    const len = packedLength(N, K);
    checkRange(W, wOff, N * K, 'packPanels W');
    checkRange(out, 0, len, 'packPanels out');
    if (out.buffer !== this.buf) throw new RangeError('packPanels: out must be a view of this workspace (take it with f64(packedLength(N, K)))');
    if (W.buffer === this.buf && out instanceof Float64Array) {
      this.x.packPanels(W.byteOffset + wOff * 8, N, K, out.byteOffset);
      return;
    }
    // weights outside this memory, or f32 panels: the plain packing writes the same layout straight into the view
    packPanelsJs(W, wOff, N, K, out);
  }

  /**
   * A model's products: panels (float64, or float32 widened exactly in the kernel: the same bits) in this memory;
   * a and c usually outside it (the model's activations), copied through the free space, allocating nothing.
   */
  gemmPacked(g: PackedGemmArgs): void {
    const { a, aOff, b: bp, bOff, c, cOff, M, N, K, accumulate } = g;
    if (M <= 0 || N <= 0) return;
    this.begin(K_GEMM_PACKED);
    this.arg(0, a, aOff, M * K, IN, 'gemmPacked a');
    this.arg(1, bp, bOff, packedLength(N, K), IN, 'gemmPacked b');
    this.arg(2, c, cOff, M * N, accumulate ? INOUT : OUT, 'gemmPacked c');
    const x = this.bind(3, 0);
    const p = this.ptr;
    const acc = accumulate ? 1 : 0;
    if (bp.BYTES_PER_ELEMENT === 4) {
      if (M === 1) x.gemvPacked32(p[0]!, p[1]!, p[2]!, N, K, acc);
      else x.gemmPacked32(p[0]!, p[1]!, p[2]!, M, N, K, acc);
    } else if (M === 1) x.gemvPacked(p[0]!, p[1]!, p[2]!, N, K, acc);
    else x.gemmPacked(p[0]!, p[1]!, p[2]!, M, N, K, acc);
    this.unbind(3);
  }

  /** One row times float32 panels of this memory in float32 arithmetic; false (nothing written) for other cases. */
  gemvF32(g: PackedGemmArgs): boolean {
    const { a, aOff, b: bp, bOff, c, cOff, M, N, K, accumulate } = g;
    if (M !== 1 || bp.BYTES_PER_ELEMENT !== 4 || bp.buffer !== this.buf) return false;
    if (N <= 0) return true;
    this.begin(K_GEMV_F32);
    this.arg(0, a, aOff, K, IN, 'gemvF32 a');
    this.arg(1, bp, bOff, packedLength(N, K), IN, 'gemvF32 b');
    this.arg(2, c, cOff, N, accumulate ? INOUT : OUT, 'gemvF32 c');
    this.space(3, Math.ceil(K / 2)); // the row rounded to float32
    const x = this.bind(4, 0);
    const p = this.ptr;
    x.gemvPackedF32(p[0]!, p[3]!, p[1]!, p[2]!, N, K, accumulate ? 1 : 0);
    this.unbind(4);
    return true;
  }

  swiglu(h1: Float64Array, h3: Float64Array, len: number): void {
    if (len <= 0) return;
    this.begin(K_SWIGLU);
    this.arg(0, h1, 0, len, INOUT, 'swiglu h1');
    this.arg(1, h3, 0, len, IN, 'swiglu h3');
    const x = this.bind(2, 0);
    x.swiglu(this.ptr[0]!, this.ptr[1]!, len);
    this.unbind(2);
  }

  spectralMac(s: SpectralMacArgs): void {
    const { Y, X, xOff, H, hOff, N } = s;
    if (N <= 0) return;
    this.begin(K_SPECTRAL_MAC);
    this.arg(0, Y, 0, 2 * N, INOUT, 'spectralMac Y');
    this.arg(1, X, xOff, 2 * N, IN, 'spectralMac X');
    this.arg(2, H, hOff, 2 * N, IN, 'spectralMac H');
    const x = this.bind(3, 0);
    const p = this.ptr;
    x.spectralMac(p[0]!, p[1]!, p[2]!, N);
    this.unbind(3);
  }

  spectralConv(s: SpectralConvArgs): void {
    const { Y, yOff, X, xOff, H, hOff, N, nx, P, ny, r0 } = s;
    if (N <= 0 || ny <= 0) return;
    if (!(Number.isInteger(nx) && nx >= 0 && Number.isInteger(P) && P >= 0 && Number.isInteger(r0))) throw new RangeError(`spectralConv: bad block counts (nx ${nx}, P ${P}, r0 ${r0})`);
    const blk = 2 * N;
    this.begin(K_SPECTRAL_CONV);
    this.arg(0, Y, yOff, ny * blk, OUT, 'spectralConv Y');
    this.arg(1, X, xOff, nx * blk, IN, 'spectralConv X');
    this.arg(2, H, hOff, P * blk, IN, 'spectralConv H');
    const x = this.bind(3, 0);
    const p = this.ptr;
    x.spectralConv(p[0]!, p[1]!, p[2]!, N, nx, P, ny, r0);
    this.unbind(3);
  }

  sformChannels(a: SformChannelsArgs): void {
    const { phiKT, vT, phiQT, accT, spectra, q0, nb, m, dv, B, P, ch0, ch1, scratch } = a;
    if (P <= 0 || nb <= q0 || ch1 <= ch0) return;
    if (!(Number.isInteger(B) && B >= 1 && (B & (B - 1)) === 0)) throw new RangeError(`sformChannels: block B must be a power of two, got ${B}`);
    if (!(Number.isInteger(ch0) && Number.isInteger(ch1) && ch0 >= 0 && ch1 <= m * (dv + 1))) throw new RangeError(`sformChannels: channels [${ch0}, ${ch1}) outside [0, ${m * (dv + 1)})`);
    const N = 2 * B;
    const blk = 2 * N;
    const nq = nb - q0;
    const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
    const nIn = blocks - sStart;
    const nOut = blocks - rStart;
    const fixed = (nIn + 2) * blk; // X and two blocks of tmp
    if (scratch.length < fixed + blk) {
      throw new RangeError(`sformChannels: scratch of ${scratch.length} float64 is too small (at least ${fixed + blk}; full speed ${wasmSformChannelsScratch(nb, q0, B, P)})`);
    }
    this.begin(K_SFORM_CHANNELS);
    this.arg(0, spectra, 0, P * blk, IN, 'sformChannels spectra');
    this.arg(1, phiKT, 0, m * nb, IN, 'sformChannels phiKT');
    this.arg(2, vT, 0, dv * nb, IN, 'sformChannels vT');
    this.arg(3, phiQT, 0, m * nq, IN, 'sformChannels phiQT');
    this.arg(4, accT, 0, (dv + 1) * nq, INOUT, 'sformChannels accT');
    this.arg(5, scratch, 0, scratch.length, SPACE, 'sformChannels scratch'); // X, tmp, then output spectra
    let yBlocks = Math.min(nOut, Math.floor((scratch.length - fixed) / blk));
    let count = 6;
    if (yBlocks < nOut) {
      // lend free space for the rest of the output spectra if there is room (the results do not depend on it)
      const room = Math.min(nOut, Math.floor(this.spareBytes(6, N) / 8 / blk));
      if (room > yBlocks) {
        this.space(6, room * blk);
        yBlocks = room;
        count = 7;
      }
    }
    const x = this.bind(count, N);
    const p = this.ptr;
    const X = p[5]! >>> 0;
    const tmp = X + nIn * blk * 8;
    const Y = count === 7 ? p[6]! >>> 0 : tmp + 2 * blk * 8;
    x.sformChannels(p[0]!, P, B, p[1]!, p[2]!, nb, q0, p[3]!, p[4]!, dv, ch0, ch1, X, Y, yBlocks, tmp, this.planPtr);
    this.unbind(count);
  }

  // -------------------------------------------------------------- float32 (attention()'s dtype 'float32')

  f32(length: number): Float32Array {
    if (!Number.isInteger(length) || length < 0) throw new RangeError(`f32(length): length must be a non-negative integer, got ${length}`);
    const v = this.f64(Math.ceil(length / 2));
    return new Float32Array(this.buf, v.byteOffset, length);
  }

  /** A float32 FFT plan of `size` (byte offset), taken from the top like the float64 plans and kept as long. */
  private fft32Plan(size: number): number {
    let ptr = this.plans32.get(size);
    if (ptr !== undefined) return ptr;
    if (!isPowerOfTwo(size)) throw new RangeError(`FFT size must be a power of two >= 2, got ${size}`);
    const bytes = wasmFft32PlanEntries(size) * 8;
    if (this.hi - bytes < this.lo) {
      throw new Error(`WASM workspace is full: a float32 FFT plan of size ${size} needs ${bytes / 8} float64 entries but only ${this.available} are left (capacity ${this.capacity})`);
    }
    this.hi -= bytes;
    this.x.fft32Init(this.hi, size);
    this.plans32.set(size, (ptr = this.hi));
    return ptr;
  }

  /** Packed by chunks of 8 bins ([N / 8][P][re 0..3, im 0..3, re 4..7, im 4..7]), bit-reversed bins, times 1/N (exact). */
  kernelSpectra32(natural: Float64Array, N: number, P: number, out: Float32Array): void {
    if (!(isPowerOfTwo(N) && N >= 8)) throw new RangeError(`kernelSpectra32: N must be a power of two >= 8, got ${N}`);
    if (natural.length < P * 2 * N || out.length < P * 2 * N) throw new RangeError(`kernelSpectra32: need ${P * 2 * N} entries (spectra ${natural.length}, out ${out.length})`);
    const bits = Math.round(Math.log2(N));
    const inv = 1 / N;
    for (let j = 0; j < N; j++) {
      const src = 2 * bitReverse(j, bits);
      const at = (j >> 3) * P * 16 + ((j >> 2) & 1) * 8 + (j & 3);
      for (let p = 0; p < P; p++) {
        out[at + p * 16] = natural[p * 2 * N + src]! * inv;
        out[at + p * 16 + 4] = natural[p * 2 * N + src + 1]! * inv;
      }
    }
  }

  sformChannels32(a: SformChannels32Args): void {
    const { phiKT, vT, phiQT, accT, spectra, q0, nb, m, dv, B, P, ch0, ch1, scratch } = a;
    if (P <= 0 || nb <= q0 || ch1 <= ch0) return;
    if (!(isPowerOfTwo(B) && B >= 4)) throw new RangeError(`sformChannels32: block B must be a power of two >= 4, got ${B}`);
    if (!(Number.isInteger(ch0) && Number.isInteger(ch1) && ch0 >= 0 && ch1 <= m * (dv + 1))) throw new RangeError(`sformChannels32: channels [${ch0}, ${ch1}) outside [0, ${m * (dv + 1)})`);
    const N = 2 * B;
    const nq = nb - q0;
    const { blocks, rStart, sStart } = blockRange(nb, q0, B, P);
    const nIn = blocks - sStart;
    const nOut = blocks - rStart;
    const need = sformChannels32Scratch(nb, q0, B, P);
    const sizes: Array<[Float32Array, number, string]> = [
      [spectra, P * 2 * N, 'spectra'], [phiKT, m * nb, 'phiKT'], [vT, dv * nb, 'vT'], [phiQT, m * nq, 'phiQT'], [accT, (dv + 1) * nq, 'accT'], [scratch, need, 'scratch'],
    ];
    for (const [arr, len, what] of sizes) {
      if (arr.length < len) throw new RangeError(`sformChannels32 ${what}: needs ${len} float32, got ${arr.length}`);
      // float32 arrays are always views of this workspace (f32()): the kernel reads them in place
      if (arr.buffer !== this.buf) throw new RangeError(`sformChannels32 ${what}: must be a view of this workspace (take it with f32())`);
    }
    const plan = this.fft32Plan(N);
    const X = scratch.byteOffset;
    const Y = X + nIn * N * 8;
    const tmp = Y + nOut * N * 8;
    this.x.sformChannels32(spectra.byteOffset, P, B, phiKT.byteOffset, vT.byteOffset, nb, q0, phiQT.byteOffset, accT.byteOffset, dv, m, ch0, ch1, X, Y, nOut, tmp, plan);
  }

  transpose32(x: Float64Array, rows: number, cols: number, out: Float32Array): void {
    checkRange(x, 0, rows * cols, 'transpose32 x');
    if (out.length < rows * cols) throw new RangeError(`transpose32 out: needs ${rows * cols} float32, got ${out.length}`);
    if (x.buffer === this.buf && out.buffer === this.buf) this.x.transpose32(x.byteOffset, rows, cols, out.byteOffset);
    else transpose32Js(x, rows, cols, out); // not views of this memory: the plain loop (copies only, the same values)
  }

  /** Test seam: the float32 transforms on views of this workspace (forward: natural -> bit-reversed; inverse in place, no 1/N). */
  fft32(size: number, out: Float32Array, input: Float32Array | null, inverse: boolean, half = false): void {
    const plan = this.fft32Plan(size);
    if (out.buffer !== this.buf || (input !== null && input.buffer !== this.buf)) throw new RangeError('fft32: arrays must be views of this workspace');
    if (inverse) this.x.fft32Inverse(plan, size, out.byteOffset);
    else this.x.fft32Forward(plan, size, out.byteOffset, input!.byteOffset, half ? 1 : 0);
  }
}

/** A workspace whose arrays live in its own WebAssembly memory of `capacity` float64 entries (sized once, never grown). */
export function createWasmWorkspace(capacity: number): WasmWorkspace {
  if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`WASM workspace capacity must be a non-negative integer (float64 entries), got ${capacity}`);
  const host = createHost(wasmWorkspaceBytes(capacity), `a WASM workspace of ${capacity} float64 entries`);
  return new WasmWorkspaceImpl(host, WASM_HEADER_BYTES, WASM_HEADER_BYTES + wasmF64Entries(capacity) * 8, false, capacity);
}

/**
 * A pool of regions in one WebAssembly memory of `bytes` (whole pages; regions take [header, header + bytes), or
 * all of the pages when `wholePages`), made once and never grown; every workspace over its regions calls the same instance. `what` names the owner for the
 * ResourceError when the runtime refuses the memory.
 */
export function createWasmPool(bytes: number, what: string, wholePages = false): Pool {
  if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`a WASM pool needs an integer number of bytes >= 0, got ${bytes}`);
  const memoryBytes = Math.ceil((WASM_HEADER_BYTES + bytes) / PAGE) * PAGE;
  // an arena holds what was asked; an owner's own memory may as well use the rest of its last page
  const usable = wholePages ? memoryBytes - WASM_HEADER_BYTES : Math.floor(bytes / LINE_BYTES) * LINE_BYTES;
  const host = createHost(memoryBytes, what);
  const regions = new RegionAllocator(WASM_HEADER_BYTES, WASM_HEADER_BYTES + usable);
  const pool: Pool = {
    backend: 'wasm',
    capacity: usable,
    get usedBytes() {
      return regions.used;
    },
    get regions() {
      return regions.count;
    },
    get largestFree() {
      return regions.largestFree;
    },
    alloc(n: number): Region | null {
      const at = regions.alloc(n);
      if (at < 0) return null;
      return { pool, offset: at, bytes: regionBytes(n) };
    },
    free(region: Region): void {
      if (region.pool !== pool) throw new RangeError('free: a region of another pool');
      regions.free(region.offset, region.bytes);
    },
    workspace: (region: Region) => new WasmWorkspaceImpl(host, region.offset, region.offset + region.bytes, true),
    planBytes: (size: number) => wasmFftPlanEntries(size) * 8,
  };
  return pool;
}
