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
// scratch and back (correct and slow: never the engine's hot paths). When the workspace has no room for the
// copies, a throwaway instance with a memory of its own runs the call (same code, same results).
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
// Module-global state: only the compiled WebAssembly.Module (immutable, safe to share between workspaces).
import type { Normalize } from '../core/types.js';
import type {
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
import { LINE_BYTES, LayoutViews, type Layout } from './layout.js';
import { RegionAllocator, type Pool, type Region } from './regions.js';

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

/** One array argument of the slow path: elements [off, off + len) of `a`; `out`: copied back after the call. */
interface Staged {
  /** a Float32Array only as an input (f32 panels: widened exactly into the float64 copy) */
  a: Float64Array | Float32Array;
  off: number;
  len: number;
  out: boolean;
}

function checkRange(a: Float64Array | Float32Array, off: number, len: number, what: string): void {
  if (!(off >= 0 && len >= 0 && off + len <= a.length)) {
    throw new RangeError(`${what}: elements [${off}, ${off + len}) are outside an array of length ${a.length}`);
  }
}

/**
 * dst[dOff ..] = src[sOff ..] for len entries: an element loop for short runs (a subarray view would be an
 * allocation per call on the per-token path), TypedArray.set (a memory copy) for long ones.
 */
function copyInto(dst: Float64Array, dOff: number, src: Float64Array, sOff: number, len: number): void {
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
  readonly x: Kernels;
}

/** A memory of `bytes` (whole pages) and its instance. */
function createHost(bytes: number, what: string): WasmHost {
  const module = compiledModule();
  const memory = createMemory(bytes, what);
  const x = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as Kernels;
  if (x.headerBytes() !== WASM_HEADER_BYTES) throw new Error(`wasmBinary.ts is out of step with wasm.ts (header ${x.headerBytes()} != ${WASM_HEADER_BYTES})`);
  const buf = memory.buffer;
  return { memory, buf, heap: new Float64Array(buf), x };
}

class WasmWorkspaceImpl implements WasmWorkspace {
  readonly backend = 'wasm' as const;
  readonly capacity: number;
  private readonly buf: ArrayBuffer;
  private readonly x: Kernels;
  private readonly heap: Float64Array; // the whole memory, for copies
  private readonly base: number; // first allocatable byte
  private readonly end: number; // first byte past the workspace
  private lo: number; // next free byte (bottom stack)
  private hi: number; // first byte of the plans (top)
  private dirty: number; // bytes in [base, dirty) may hold old data
  private readonly plans = new Map<number, WasmFftPlan>();
  private readonly plans32 = new Map<number, number>(); // float32 plans: size -> byte offset (from the top, as plans)

  /** A workspace over bytes [base, end) of the host's memory (its own memory, or a region of an arena's). */
  constructor(host: WasmHost, base: number, end: number, dirty: boolean, capacity = (end - base) / 8) {
    this.x = host.x;
    this.buf = host.buf;
    this.heap = host.heap;
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

  // -------------------------------------------------------------- the slow path: copies

  /**
   * Run a kernel on copies of arrays that are not views of this memory. `call` gets the kernels and one byte
   * pointer per staged array (pointing at its element `off`), and the plan pointer when `planSize` is given.
   */
  private staged<T>(args: Staged[], call: (x: Kernels, p: number[], plan: number) => T, planSize = 0): T {
    let need = 0;
    for (const s of args) if (s.a.buffer !== this.buf) need += wasmF64Entries(s.len);
    if (planSize > 0 && !this.plans.has(planSize)) need += wasmFftPlanEntries(planSize);
    if (need <= this.available) {
      const mark = this.mark();
      try {
        const p = args.map((s) => {
          if (s.a.buffer === this.buf) return s.a.byteOffset + s.off * s.a.BYTES_PER_ELEMENT;
          const copy = this.f64(s.len);
          copy.set(s.a.subarray(s.off, s.off + s.len));
          return copy.byteOffset;
        });
        const plan = planSize > 0 ? (this.fftPlan(planSize) as WasmFftPlan).ptr : 0;
        const r = call(this.x, p, plan);
        args.forEach((s, i) => {
          if (s.out && s.a.buffer !== this.buf) s.a.set(new Float64Array(this.buf, p[i]!, s.len), s.off);
        });
        return r;
      } finally {
        this.release(mark);
      }
    }
    // no room here: a throwaway instance with a memory of its own (the same code, so the same results)
    let bytes = WASM_HEADER_BYTES;
    for (const s of args) bytes += wasmF64Entries(s.len) * 8;
    const planBytes = planSize > 0 ? wasmFftPlanEntries(planSize) * 8 : 0;
    bytes += planBytes;
    const memory = createMemory(Math.ceil(bytes / PAGE) * PAGE, 'a WASM kernel call on copies of arrays outside its workspace');
    const x = instantiate(memory);
    const heap = new Float64Array(memory.buffer);
    let at = WASM_HEADER_BYTES;
    const p = args.map((s) => {
      const ptr = at;
      heap.set(s.a.subarray(s.off, s.off + s.len), ptr / 8);
      at += wasmF64Entries(s.len) * 8;
      return ptr;
    });
    let plan = 0;
    if (planSize > 0) {
      plan = at;
      x.fftInit(plan, planSize);
    }
    const r = call(x, p, plan);
    args.forEach((s, i) => {
      if (s.out) s.a.set(heap.subarray(p[i]! / 8, p[i]! / 8 + s.len), s.off);
    });
    return r;
  }

  // -------------------------------------------------------------- kernels

  fft(plan: WasmFftPlan, out: Float64Array, input: Float64Array, inverse: boolean): void {
    const n = plan.size;
    const len = 2 * n;
    checkRange(out, 0, len, 'fft out');
    checkRange(input, 0, len, 'fft input');
    const b = this.buf;
    if (out.buffer === b && input.buffer === b) {
      const o = out.byteOffset;
      const i = input.byteOffset;
      if (o < i + len * 8 && i < o + len * 8) throw new Error('FFT: input and output must not overlap');
      if (inverse) this.x.fftInverse(plan.ptr, n, o, i);
      else this.x.fftForward(plan.ptr, n, o, i);
      return;
    }
    if (out === input || (out.buffer === input.buffer && out.byteOffset < input.byteOffset + len * 8 && input.byteOffset < out.byteOffset + len * 8)) {
      throw new Error('FFT: input and output must not overlap');
    }
    this.staged(
      [
        { a: out, off: 0, len, out: true },
        { a: input, off: 0, len, out: false },
      ],
      (x, p, pp) => (inverse ? x.fftInverse(pp, n, p[0]!, p[1]!) : x.fftForward(pp, n, p[0]!, p[1]!)),
      n,
    );
  }

  aformRows(a: AformRowsArgs): void {
    const { c, tLo, tHi, phiK, v, phiQ, q0, m, dv, b0, b1, acc } = a;
    if (tHi <= tLo || b1 <= b0) return;
    if (b0 < q0 || tLo < 0) throw new RangeError(`aformRows: need q0 <= b0 and tLo >= 0 (q0 ${q0}, b0 ${b0}, tLo ${tLo})`);
    const jBase = Math.max(0, b0 - tHi + 1);
    const jEnd = b1 - 1 - tLo; // last key row read
    if (jEnd < jBase) return;
    const w1 = dv + 1;
    const nk = jEnd - jBase + 1;
    const nc = Math.min(tHi, b1);
    checkRange(c, 0, nc, 'aformRows c');
    checkRange(phiK, jBase * m, nk * m, 'aformRows phiK');
    checkRange(v, jBase * dv, nk * dv, 'aformRows v');
    checkRange(phiQ, (b0 - q0) * m, (b1 - b0) * m, 'aformRows phiQ');
    checkRange(acc, (b0 - q0) * w1, (b1 - b0) * w1, 'aformRows acc');
    const b = this.buf;
    if (c.buffer === b && phiK.buffer === b && v.buffer === b && phiQ.buffer === b && acc.buffer === b) {
      this.x.aformRows(
        c.byteOffset, tLo, tHi,
        phiK.byteOffset + jBase * m * 8, v.byteOffset + jBase * dv * 8, jBase,
        phiQ.byteOffset + (b0 - q0) * m * 8, acc.byteOffset + (b0 - q0) * w1 * 8,
        b0, b1, m, dv,
      );
      return;
    }
    this.staged(
      [
        { a: c, off: 0, len: nc, out: false },
        { a: phiK, off: jBase * m, len: nk * m, out: false },
        { a: v, off: jBase * dv, len: nk * dv, out: false },
        { a: phiQ, off: (b0 - q0) * m, len: (b1 - b0) * m, out: false },
        { a: acc, off: (b0 - q0) * w1, len: (b1 - b0) * w1, out: true },
      ],
      (x, p) => x.aformRows(p[0]!, tLo, tHi, p[1]!, p[2]!, jBase, p[3]!, p[4]!, b0, b1, m, dv),
    );
  }

  aformRing(a: AformRingArgs): void {
    const { c, ringK, ringV, start, len, cap, phiQ, qOff, m, dv, acc, aOff } = a;
    if (len <= 0) return;
    if (!(len <= cap && start >= 0 && start < cap)) throw new RangeError(`aformRing: need 0 <= start < cap and len <= cap (start ${start}, len ${len}, cap ${cap})`);
    checkRange(c, 0, len, 'aformRing c');
    checkRange(ringK, 0, cap * m, 'aformRing ringK');
    checkRange(ringV, 0, cap * dv, 'aformRing ringV');
    checkRange(phiQ, qOff, m, 'aformRing phiQ');
    checkRange(acc, aOff, dv + 1, 'aformRing acc');
    const b = this.buf;
    if (c.buffer === b && ringK.buffer === b && ringV.buffer === b && phiQ.buffer === b && acc.buffer === b) {
      this.x.aformRing(c.byteOffset, ringK.byteOffset, ringV.byteOffset, start, len, cap, phiQ.byteOffset + qOff * 8, acc.byteOffset + aOff * 8, m, dv);
      return;
    }
    this.aformRingStaged(a);
  }

  // the staged paths of the per-token kernels sit apart: a closure in the wrapper would make every call allocate
  // its context (the captured variables), fast path included
  private aformRingStaged(a: AformRingArgs): void {
    const { c, ringK, ringV, start, len, cap, phiQ, qOff, m, dv, acc, aOff } = a;
    this.staged(
      [
        { a: c, off: 0, len, out: false },
        { a: ringK, off: 0, len: cap * m, out: false },
        { a: ringV, off: 0, len: cap * dv, out: false },
        { a: phiQ, off: qOff, len: m, out: false },
        { a: acc, off: aOff, len: dv + 1, out: true },
      ],
      (x, p) => x.aformRing(p[0]!, p[1]!, p[2]!, start, len, cap, p[3]!, p[4]!, m, dv),
    );
  }

  farAbsorb(a: FarAbsorbArgs): void {
    const { far, gamma, phiK, kOff, v, vOff, m, dv } = a;
    const size = m * (dv + 1);
    checkRange(far.sum, 0, size, 'farAbsorb far.sum');
    checkRange(far.comp, 0, size, 'farAbsorb far.comp');
    checkRange(phiK, kOff, m, 'farAbsorb phiK');
    checkRange(v, vOff, dv, 'farAbsorb v');
    const b = this.buf;
    if (far.sum.buffer === b && far.comp.buffer === b && phiK.buffer === b && v.buffer === b) {
      this.x.farAbsorb(far.sum.byteOffset, far.comp.byteOffset, gamma, phiK.byteOffset + kOff * 8, v.byteOffset + vOff * 8, m, dv);
      return;
    }
    this.farAbsorbStaged(a);
  }

  private farAbsorbStaged(a: FarAbsorbArgs): void {
    const { far, gamma, phiK, kOff, v, vOff, m, dv } = a;
    const size = m * (dv + 1);
    this.staged(
      [
        { a: far.sum, off: 0, len: size, out: true },
        { a: far.comp, off: 0, len: size, out: true },
        { a: phiK, off: kOff, len: m, out: false },
        { a: v, off: vOff, len: dv, out: false },
      ],
      (x, p) => x.farAbsorb(p[0]!, p[1]!, gamma, p[2]!, p[3]!, m, dv),
    );
  }

  farContract(a: FarContractArgs): void {
    const { far, cFar, phiQ, qOff, m, dv, acc, aOff } = a;
    const size = m * (dv + 1);
    checkRange(far.sum, 0, size, 'farContract far.sum');
    checkRange(phiQ, qOff, m, 'farContract phiQ');
    checkRange(acc, aOff, dv + 1, 'farContract acc');
    const b = this.buf;
    if (far.sum.buffer === b && phiQ.buffer === b && acc.buffer === b) {
      this.x.farContract(far.sum.byteOffset, cFar, phiQ.byteOffset + qOff * 8, m, dv, acc.byteOffset + aOff * 8);
      return;
    }
    this.farContractStaged(a);
  }

  private farContractStaged(a: FarContractArgs): void {
    const { far, cFar, phiQ, qOff, m, dv, acc, aOff } = a;
    const size = m * (dv + 1);
    this.staged(
      [
        { a: far.sum, off: 0, len: size, out: false },
        { a: phiQ, off: qOff, len: m, out: false },
        { a: acc, off: aOff, len: dv + 1, out: true },
      ],
      (x, p) => x.farContract(p[0]!, cFar, p[1]!, m, dv, p[2]!),
    );
  }

  scaleFar(far: FarArrays, factor: number, m: number, dv: number): void {
    const size = m * (dv + 1);
    checkRange(far.sum, 0, size, 'scaleFar far.sum');
    checkRange(far.comp, 0, size, 'scaleFar far.comp');
    const b = this.buf;
    if (far.sum.buffer === b && far.comp.buffer === b) {
      this.x.scaleFar(far.sum.byteOffset, far.comp.byteOffset, factor, size);
      return;
    }
    this.staged(
      [
        { a: far.sum, off: 0, len: size, out: true },
        { a: far.comp, off: 0, len: size, out: true },
      ],
      (x, p) => x.scaleFar(p[0]!, p[1]!, factor, size),
    );
  }

  prfLogits(a: PrfLogitsArgs): number {
    const { W, m, d, normalize, x: xs, n, out } = a;
    if (n <= 0) return -Infinity;
    const mode = NORMALIZE_MODE[normalize];
    if (mode === undefined) throw new RangeError(`prfLogits: unknown normalize ${String(normalize)}`);
    checkRange(W, 0, m * d, 'prfLogits W');
    checkRange(xs, 0, n * d, 'prfLogits x');
    checkRange(out, 0, n * m, 'prfLogits out');
    const b = this.buf;
    if (W.buffer === b && xs.buffer === b && out.buffer === b) {
      return this.x.prfLogits(W.byteOffset, m, d, mode, xs.byteOffset, n, out.byteOffset);
    }
    return this.prfLogitsStaged(a, mode);
  }

  private prfLogitsStaged(a: PrfLogitsArgs, mode: number): number {
    const { W, m, d, x: xs, n, out } = a;
    return this.staged(
      [
        { a: W, off: 0, len: m * d, out: false },
        { a: xs, off: 0, len: n * d, out: false },
        { a: out, off: 0, len: n * m, out: true },
      ],
      (x, p) => x.prfLogits(p[0]!, m, d, mode, p[1]!, n, p[2]!),
    );
  }

  expRows(xs: Float64Array, n: number, m: number): void {
    if (n <= 0 || m <= 0) return;
    checkRange(xs, 0, n * m, 'expRows x');
    if (xs.buffer === this.buf) {
      this.x.expRows(xs.byteOffset, n, m);
      return;
    }
    this.expRowsStaged(xs, n, m);
  }

  private expRowsStaged(xs: Float64Array, n: number, m: number): void {
    this.staged([{ a: xs, off: 0, len: n * m, out: true }], (x, p) => x.expRows(p[0]!, n, m));
  }

  expShift(xs: Float64Array, len: number, shift: number): void {
    if (len <= 0) return;
    checkRange(xs, 0, len, 'expShift x');
    if (xs.buffer === this.buf) {
      this.x.expShift(xs.byteOffset, len, shift);
      return;
    }
    this.expShiftStaged(xs, len, shift);
  }

  private expShiftStaged(xs: Float64Array, len: number, shift: number): void {
    this.staged([{ a: xs, off: 0, len, out: true }], (x, p) => x.expShift(p[0]!, len, shift));
  }

  gemm(g: GemmArgs): void {
    const { a, aOff, b: bm, bOff, c, cOff, M, N, K, accumulate } = g;
    if (M <= 0 || N <= 0) return;
    checkRange(a, aOff, M * K, 'gemm a');
    checkRange(bm, bOff, N * K, 'gemm b');
    checkRange(c, cOff, M * N, 'gemm c');
    const buf = this.buf;
    if (a.buffer === buf && bm.buffer === buf && c.buffer === buf) {
      this.x.gemm(a.byteOffset + aOff * 8, bm.byteOffset + bOff * 8, c.byteOffset + cOff * 8, M, N, K, accumulate ? 1 : 0);
      return;
    }
    this.staged(
      [
        { a, off: aOff, len: M * K, out: false },
        { a: bm, off: bOff, len: N * K, out: false },
        { a: c, off: cOff, len: M * N, out: true },
      ],
      (x, p) => x.gemm(p[0]!, p[1]!, p[2]!, M, N, K, accumulate ? 1 : 0),
    );
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

  gemmPacked(g: PackedGemmArgs): void {
    const { a, aOff, b: bp, bOff, c, cOff, M, N, K, accumulate } = g;
    if (M <= 0 || N <= 0) return;
    checkRange(a, aOff, M * K, 'gemmPacked a');
    checkRange(bp, bOff, packedLength(N, K), 'gemmPacked b');
    checkRange(c, cOff, M * N, 'gemmPacked c');
    const acc = accumulate ? 1 : 0;
    const buf = this.buf;
    if (bp.buffer === buf) {
      // a and c outside this memory (a model's activations): copied through the free space above the stack,
      // element by element, so a call allocates nothing (no views, no argument records)
      const inA = a.buffer === buf;
      const inC = c.buffer === buf;
      const lenA = wasmF64Entries(M * K);
      const need = (inA ? 0 : lenA) + (inC ? 0 : M * N);
      if (need * 8 <= this.hi - this.lo) {
        const heap = this.heap;
        let pa = a.byteOffset + aOff * 8;
        let pc = c.byteOffset + cOff * 8;
        let at = this.lo;
        if (!inA) {
          pa = at;
          copyInto(heap, at / 8, a, aOff, M * K);
          at += lenA * 8;
        }
        if (!inC) {
          pc = at;
          if (accumulate) copyInto(heap, at / 8, c, cOff, M * N);
          at += M * N * 8;
        }
        if (at > this.dirty) this.dirty = at; // f64() must zero what these copies left behind
        const p = bp.byteOffset + bOff * bp.BYTES_PER_ELEMENT;
        if (bp.BYTES_PER_ELEMENT === 4) {
          if (M === 1) this.x.gemvPacked32(pa, p, pc, N, K, acc);
          else this.x.gemmPacked32(pa, p, pc, M, N, K, acc);
        } else if (M === 1) this.x.gemvPacked(pa, p, pc, N, K, acc);
        else this.x.gemmPacked(pa, p, pc, M, N, K, acc);
        if (!inC) copyInto(c, cOff, heap, pc / 8, M * N);
        return;
      }
    }
    this.gemmPackedStaged(g);
  }

  swiglu(h1: Float64Array, h3: Float64Array, len: number): void {
    if (len <= 0) return;
    checkRange(h1, 0, len, 'swiglu h1');
    checkRange(h3, 0, len, 'swiglu h3');
    if (h1.buffer === this.buf && h3.buffer === this.buf) {
      this.x.swiglu(h1.byteOffset, h3.byteOffset, len);
      return;
    }
    this.swigluStaged(h1, h3, len);
  }

  private swigluStaged(h1: Float64Array, h3: Float64Array, len: number): void {
    this.staged(
      [
        { a: h1, off: 0, len, out: true },
        { a: h3, off: 0, len, out: false },
      ],
      (x, p) => x.swiglu(p[0]!, p[1]!, len),
    );
  }

  // apart from gemmPacked: a closure there would make every call allocate its context, even on the fast path.
  // Panels outside this memory are copied as float64 (f32 panels widened exactly: the f64 kernels, the same bits).
  private gemmPackedStaged(g: PackedGemmArgs): void {
    const { a, aOff, b: bp, bOff, c, cOff, M, N, K } = g;
    const acc = g.accumulate ? 1 : 0;
    this.staged(
      [
        { a, off: aOff, len: M * K, out: false },
        { a: bp, off: bOff, len: packedLength(N, K), out: false },
        { a: c, off: cOff, len: M * N, out: true },
      ],
      (x, p) => {
        // f32 panels stay f32 only when read in place (this memory); a throwaway instance gets float64 copies
        if (bp.BYTES_PER_ELEMENT === 4 && bp.buffer === this.buf && x === this.x) {
          if (M === 1) x.gemvPacked32(p[0]!, p[1]!, p[2]!, N, K, acc);
          else x.gemmPacked32(p[0]!, p[1]!, p[2]!, M, N, K, acc);
        } else if (M === 1) x.gemvPacked(p[0]!, p[1]!, p[2]!, N, K, acc);
        else x.gemmPacked(p[0]!, p[1]!, p[2]!, M, N, K, acc);
      },
    );
  }

  spectralMac(s: SpectralMacArgs): void {
    const { Y, X, xOff, H, hOff, N } = s;
    if (N <= 0) return;
    checkRange(Y, 0, 2 * N, 'spectralMac Y');
    checkRange(X, xOff, 2 * N, 'spectralMac X');
    checkRange(H, hOff, 2 * N, 'spectralMac H');
    const b = this.buf;
    if (Y.buffer === b && X.buffer === b && H.buffer === b) {
      this.x.spectralMac(Y.byteOffset, X.byteOffset + xOff * 8, H.byteOffset + hOff * 8, N);
      return;
    }
    this.staged(
      [
        { a: Y, off: 0, len: 2 * N, out: true },
        { a: X, off: xOff, len: 2 * N, out: false },
        { a: H, off: hOff, len: 2 * N, out: false },
      ],
      (x, p) => x.spectralMac(p[0]!, p[1]!, p[2]!, N),
    );
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
    checkRange(spectra, 0, P * blk, 'sformChannels spectra');
    checkRange(phiKT, 0, m * nb, 'sformChannels phiKT');
    checkRange(vT, 0, dv * nb, 'sformChannels vT');
    checkRange(phiQT, 0, m * nq, 'sformChannels phiQT');
    checkRange(accT, 0, (dv + 1) * nq, 'sformChannels accT');
    const fixed = (nIn + 2) * blk; // X and two blocks of tmp
    if (scratch.length < fixed + blk) {
      throw new RangeError(`sformChannels: scratch of ${scratch.length} float64 is too small (at least ${fixed + blk}; full speed ${wasmSformChannelsScratch(nb, q0, B, P)})`);
    }
    const b = this.buf;
    if (phiKT.buffer === b && vT.buffer === b && phiQT.buffer === b && accT.buffer === b && spectra.buffer === b && scratch.buffer === b) {
      const plan = (this.fftPlan(N) as WasmFftPlan).ptr;
      const X = scratch.byteOffset;
      const tmp = X + nIn * blk * 8;
      let Y = tmp + 2 * blk * 8;
      let yBlocks = Math.min(nOut, Math.floor((scratch.length - fixed) / blk));
      const mark = this.lo;
      if (yBlocks < nOut) {
        // lend the workspace's free space for the output spectra if it has room (the results do not depend on it)
        const room = Math.min(nOut, Math.floor((this.hi - this.lo) / 8 / blk));
        if (room > yBlocks) {
          Y = this.f64(room * blk).byteOffset;
          yBlocks = room;
        }
      }
      try {
        this.x.sformChannels(spectra.byteOffset, P, B, phiKT.byteOffset, vT.byteOffset, nb, q0, phiQT.byteOffset, accT.byteOffset, dv, ch0, ch1, X, Y, yBlocks, tmp, plan);
      } finally {
        this.lo = mark;
      }
      return;
    }
    const full = wasmSformChannelsScratch(nb, q0, B, P);
    this.staged(
      [
        { a: spectra, off: 0, len: P * blk, out: false },
        { a: phiKT, off: 0, len: m * nb, out: false },
        { a: vT, off: 0, len: dv * nb, out: false },
        { a: phiQT, off: 0, len: m * nq, out: false },
        { a: accT, off: 0, len: (dv + 1) * nq, out: true },
        { a: new Float64Array(full), off: 0, len: full, out: false },
      ],
      (x, p, pp) => {
        const X = p[5]!;
        const tmp = X + nIn * blk * 8;
        x.sformChannels(p[0]!, P, B, p[1]!, p[2]!, nb, q0, p[3]!, p[4]!, dv, ch0, ch1, X, tmp + 2 * blk * 8, nOut, tmp, pp);
      },
      N,
    );
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

  spectralConv(s: SpectralConvArgs): void {
    const { Y, yOff, X, xOff, H, hOff, N, nx, P, ny, r0 } = s;
    if (N <= 0 || ny <= 0) return;
    if (!(Number.isInteger(nx) && nx >= 0 && Number.isInteger(P) && P >= 0 && Number.isInteger(r0))) throw new RangeError(`spectralConv: bad block counts (nx ${nx}, P ${P}, r0 ${r0})`);
    const blk = 2 * N;
    checkRange(Y, yOff, ny * blk, 'spectralConv Y');
    checkRange(X, xOff, nx * blk, 'spectralConv X');
    checkRange(H, hOff, P * blk, 'spectralConv H');
    const b = this.buf;
    if (Y.buffer === b && X.buffer === b && H.buffer === b) {
      this.x.spectralConv(Y.byteOffset + yOff * 8, X.byteOffset + xOff * 8, H.byteOffset + hOff * 8, N, nx, P, ny, r0);
      return;
    }
    this.staged(
      [
        { a: Y, off: yOff, len: ny * blk, out: true },
        { a: X, off: xOff, len: nx * blk, out: false },
        { a: H, off: hOff, len: P * blk, out: false },
      ],
      (x, p) => x.spectralConv(p[0]!, p[1]!, p[2]!, N, nx, P, ny, r0),
    );
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
      return { pool, offset: at, bytes: Math.max(LINE_BYTES, Math.ceil(n / LINE_BYTES) * LINE_BYTES) };
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
