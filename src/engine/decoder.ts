// The stateful causal decoder: token by token (step) or chunk by chunk (chunk), equal to whole-sequence
// attention. State per head h: a ring of the last K_h (phi(k), v) pairs (the near field; K_h is the head's
// RPE table length, heads may differ) and the far-field feature state F (keys older than K_h, collapsed by
// the tail's constant or geometric weight), so memory is O(K_h (m + dv) + m dv) whatever the position.
// The state is plain data (state.ts): exportState() gives it, Decoder.fromState() rebuilds a decoder from it.
// Memory: the decoder declares what it keeps between calls once (persistentLayout) and holds it as one region,
// from an arena shared with other decoders or from memory of its own (backend/arena.ts OwnedMemory); a larger
// ring re-declares the layout and moves the state to a region of that size. A chunk declares its scratch
// (chunkLayout, and its passes' layouts in nearfield.ts) and takes one region for the call.
// dtype 'float32': the rings (and the kernels' near tables as the window kernels read them) are declared 'f32'.
import type { NdArray } from 'ndarray';
import ndarray from 'ndarray';
import { toResolvedConfig, type AttentionConfig, type ResolvedConfig } from './config.js';
import { ConfigError, ShapeError, StateError, describe } from '../core/errors.js';
import { MAX_POSITION } from '../core/limits.js';
import { checkSequence, checkTensor, copyHead, gatherRows, type CheckedTensor } from './tensor.js';
import { attendBuffer, checkMethodOption, finalizeRows, finite, planPass, PartitionCache, type MethodOption, type PassStats } from './nearfield.js';
import { attendBuffer32, planPass32 } from './nearfield32.js';
import { deterministicFeatures, exp2, powerOfTwoAbove, queryFeatures, type PrfLogitsKernel } from '../math/features.js';
import { kernelMaxLog, shiftKernel, type CausalKernel, type ShiftedKernel } from '../math/kernel.js';
import type { AformRingArgs, FarAbsorbArgs, FarArrays, FarContractArgs, PrfLogitsArgs } from '../math/kernelArgs.js';
import type { AformRing32Args, FarAbsorb32Args } from '../math/kernelArgs.js';
import { checkDtypeOption, type DType } from './dtype.js';
import { Arena, checkArenaOption, checkBackendOption, OwnedMemory, resolveBackend, type BackendName, type BackendOption, type Region, type Workspace } from '../backend/index.js';
import { declare, type ArrayDecl, type Layout, type LayoutViews } from '../backend/layout.js';
import { checkDecoderState, NO_KEY, valueExpLimit, type DecoderState, type HeadState } from './state.js';

export type { DecoderState, HeadState } from './state.js';
export type { DType } from './dtype.js';

export interface DecoderOptions {
  /** near-field method for chunks: 'auto' (cost model), 'fft' or 'direct'. Steps always use the A-form. */
  method?: MethodOption;
  /** 'auto' (WASM SIMD where supported), 'js' or 'wasm'; with an arena, left out or 'auto' means the arena's */
  backend?: BackendOption;
  /**
   * An arena (createArena) to take the decoder's memory from, shared with other decoders; dispose() gives it back.
   * Without one, a WASM decoder makes a WebAssembly memory of its own (V8 refuses new ones past ~12,800 live).
   */
  arena?: Arena;
  /**
   * 'float64' (default, the reference) or 'float32': rings of float32 key features and values (half the state
   * bytes) and float32 window kernels; features, far field F and accumulators stay float64. Per-row normwise
   * error vs the float64 oracle <= 1e-4 (test/engine/decoder-float32.test.ts).
   */
  dtype?: DType;
}

/** Decoders on an arena give their regions back when collected without dispose(). */
const arenaOwners = typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<OwnedMemory>((mem) => mem.dispose()) : null;

const LN2 = Math.LN2;
const FIRST_RING = 64;

/** Live state of one head; the arrays are views of the decoder's region. */
interface Head {
  readonly K: number;
  /** index into the decoder's kernels (heads sharing one RPE share one) */
  readonly shared: number;
  /** the shared kernel with its near table in the decoder's region */
  kernel: ShiftedKernel;
  readonly partitions: PartitionCache;
  /** ringK: [cap, m], ringV: [cap, dv]; `len` slots oldest-first from `start`, wrapping at cap (Float32Array for dtype 'float32') */
  ringK: Float64Array | Float32Array;
  ringV: Float64Array | Float32Array;
  /** dtype 'float32': the shared kernel's near table c(t) as float32, in the decoder's region; else empty */
  c32: Float32Array;
  cap: number;
  start: number;
  len: number;
  far: FarArrays;
  keyExp: number;
  valueExp: number;
}

/**
 * The engine's decoder: step, chunk, state export and rebuild. The public `Decoder` (codec/decoder.ts) adds
 * snapshot bytes on top; use this class directly to keep msgpackr out of a bundle.
 */
export class DecoderCore {
  readonly config: ResolvedConfig;
  readonly method: MethodOption;
  readonly backend: BackendName;
  readonly dtype: DType;
  private readonly mem: OwnedMemory;
  /** the persistent region (laid out by persistentLayout) and a workspace over it (the kernels run on it) */
  private region: Region | null = null;
  private ws!: Workspace;
  private disposed = false;
  /** the distinct kernels, their near tables in the region (as computed until the first install) */
  private readonly kernels: ShiftedKernel[] = [];
  private heads: Head[];
  private pos = 0;
  // per-token scratch in the region, reused (no allocation per token): step()'s inputs gathered and checked
  // ([heads, dim] each, with a view per head row), features, accumulator
  private qIn!: Float64Array[];
  private kIn!: Float64Array[];
  private vIn!: Float64Array[];
  private qAll!: Float64Array;
  private kAll!: Float64Array;
  private vAll!: Float64Array;
  /** max |v| per head of the token being stepped */
  private vMax: Float64Array;
  /** features of the token's queries and keys: [heads, m] each (phiK with room for d if d > m), a view per head */
  private phiQ!: Float64Array;
  private phiK!: Float64Array;
  private phiQRows!: Float64Array[];
  private phiKRows!: Float64Array[];
  private acc!: Float64Array;
  /** the workspace's PRF logits kernel, bound once per region, and W in the region: [m, d] */
  private logits!: PrfLogitsKernel;
  private W: Float64Array = new Float64Array(0);
  /** step()'s expected shapes and their texts, made on the first step */
  private stepExpect: { key: readonly number[]; keyText: string; value: readonly number[]; valueText: string } | undefined;
  /** stepRows()'s inputs as checked [heads, dim] tensors over the caller's arrays, refilled per call */
  private flatRows: { q: FlatRows; k: FlatRows; v: FlatRows } | undefined;
  // kernel argument records over the region's views, made with them (bind), refilled per call
  private logitsArgs!: PrfLogitsArgs;
  private ringArgs!: AformRingArgs;
  private absorbArgs!: FarAbsorbArgs;
  private contractArgs!: FarContractArgs;
  /** dtype 'float32': the query features as float32 ([heads, m] in the region, the window kernel's input) and its records */
  private phiQ32: Float32Array = new Float32Array(0);
  private ring32Args!: AformRing32Args;
  private absorb32Args!: FarAbsorb32Args;
  /** values are kept below 2^valueLimit (state.ts valueExpLimit) */
  private readonly valueLimit: number;
  lastStats: PassStats[] = [];

  constructor(config: AttentionConfig | ResolvedConfig, options: DecoderOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { method?, backend?, dtype?, arena? }, got ${describe(options)}`);
    const method = checkMethodOption(options.method);
    const backendOption = checkBackendOption(options.backend);
    const dtype = checkDtypeOption(options.dtype);
    const arena = checkArenaOption(options.arena, options.backend);
    const backend = arena?.backend ?? resolveBackend(backendOption);
    const cfg = toResolvedConfig(config);
    if (!cfg.causal) throw new StateError(`Decoder needs a causal config (causal: true), got causal: false; use attention() for bidirectional sequences`);
    this.config = cfg;
    this.method = method;
    this.backend = backend;
    this.dtype = dtype;
    this.valueLimit = valueExpLimit(dtype);
    this.vMax = new Float64Array(cfg.heads);
    // heads sharing one RPE share its kernel table and spectra (a long shared table is held once)
    const shared = new Map<CausalKernel, { index: number; partitions: PartitionCache }>();
    this.heads = cfg.past.map((p) => {
      let k = shared.get(p);
      if (k === undefined) {
        k = { index: this.kernels.length, partitions: new PartitionCache() };
        this.kernels.push(shiftKernel(p, Math.max(kernelMaxLog(p), -1e300)));
        shared.set(p, k);
      }
      const empty = new Float64Array(0);
      const c32 = new Float32Array(0);
      return { K: p.logBias.length, shared: k.index, kernel: this.kernels[k.index]!, partitions: k.partitions, ringK: empty, ringV: empty, c32, cap: 0, start: 0, len: 0, far: { sum: empty, comp: empty }, keyExp: NO_KEY, valueExp: 0 };
    });
    this.mem = new OwnedMemory(backend, arena, `a decoder of ${cfg.heads} heads`);
    this.relayout(cfg.past.map((p) => Math.min(p.logBias.length, FIRST_RING)), 0);
    if (arena !== null) arenaOwners?.register(this, this.mem, this);
  }

  /** A decoder continuing from a state (validated against the config and the engine's invariants). */
  static fromState<T extends DecoderCore>(this: new (config: ResolvedConfig, options?: DecoderOptions) => T, config: AttentionConfig | ResolvedConfig, state: DecoderState, options: DecoderOptions = {}): T {
    const cfg = toResolvedConfig(config);
    checkDecoderState(cfg, state);
    if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { method?, backend?, dtype?, arena? }, got ${describe(options)}`);
    // the state's dtype unless options ask for another (its rings are then converted: no longer bit-identical)
    const dec = new this(cfg, { ...options, method: options.method ?? state.method, backend: options.backend ?? state.backend, dtype: options.dtype ?? state.dtype ?? 'float64' });
    try {
      dec.load(state);
    } catch (e) {
      dec.dispose(); // its region goes back to the arena now, not when collected
      throw e;
    }
    return dec;
  }

  /**
   * Give the decoder's memory back (to its arena, or its own memory to the collector). The decoder cannot be used
   * afterwards (a StateError says so); its position, windows and stateBytes stay readable. Idempotent.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    arenaOwners?.unregister(this);
    this.mem.dispose();
    this.region = null;
  }

  /** Whether dispose() was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * What the decoder keeps in its region between calls, with rings of capacity `caps`: token scratch, W, the kernel
   * tables, and per head the ring and the far-field state. dtype 'float32': rings of type 'f32', and the float32
   * copies of the near tables and of the query features the float32 window kernel reads.
   */
  private persistentLayout(caps: readonly number[]): Layout {
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = this.config;
    const f = this.config.features;
    const f32 = this.dtype === 'float32';
    const f64 = (name: string, length: number): ArrayDecl => ({ name, type: 'f64', length });
    const ring = (name: string, length: number): ArrayDecl => ({ name, type: f32 ? 'f32' : 'f64', length });
    const decls: ArrayDecl[] = [
      f64('W', f.kind === 'prf' ? f.projection.length : 0),
      f64('qAll', heads * d), f64('kAll', heads * d), f64('vAll', heads * dv),
      f64('phiQ', heads * m), f64('phiK', heads * m + Math.max(0, d - m)), f64('acc', dv + 1),
    ];
    if (f32) decls.push({ name: 'phiQ32', type: 'f32', length: heads * m });
    this.kernels.forEach((k, i) => {
      decls.push(f64(`near${i}`, k.near.length));
      if (f32) decls.push({ name: `near32_${i}`, type: 'f32', length: k.near.length });
    });
    caps.forEach((cap, h) => decls.push(ring(`ringK${h}`, cap * m), ring(`ringV${h}`, cap * dv), f64(`farSum${h}`, m * (dv + 1)), f64(`farComp${h}`, m * (dv + 1))));
    return declare(decls);
  }

  /** A ring array of the layout (its type is the decoder's dtype). */
  private ringView(views: LayoutViews, name: string): Float64Array | Float32Array {
    return this.dtype === 'float32' ? views.f32(name) : views.f64(name);
  }

  /** What one chunk of L tokens takes per head on top of its pass's scratch: buffer rows nb = ring + L. */
  private chunkLayout(nb: number, L: number): Layout {
    const { keyDim: d, valueDim: dv, featureDim: m } = this.config;
    return declare([
      { name: 'x', type: 'f64', length: L * Math.max(d, dv) },
      { name: 'bufK', type: 'f64', length: nb * m },
      { name: 'bufV', type: 'f64', length: nb * dv },
      { name: 'phiQ', type: 'f64', length: L * m },
      { name: 'acc', type: 'f64', length: L * (dv + 1) },
    ]);
  }

  /**
   * Rings of capacity `caps` (each >= its length) and, when scratchBytes > 0, a scratch region for one call (the
   * caller frees it). A new capacity re-declares the layout and moves the state to a region of that size; so does
   * a decoder whose own memory has no room (it moves to a right-sized memory). Nothing changes when memory is
   * refused (ResourceError).
   */
  private relayout(caps: readonly number[], scratchBytes: number): Region | null {
    // (the layout is declared again rather than kept: ~1 KB of objects less per decoder, for 20,000 of them)
    const same = this.region !== null && this.heads.every((h, i) => h.cap === caps[i]);
    const layout = this.persistentLayout(caps);
    const placed = this.mem.place(same ? this.region : null, layout.bytes, scratchBytes);
    if (placed.persist !== this.region) this.install(layout, caps, placed.persist);
    return placed.scratch;
  }

  /**
   * Move into `region` (laid out as `layout`): rings linearized oldest-first (in the decoder's dtype: float32 rings
   * copy exactly), far state copied, float32 near tables rounded from the float64 ones; the old region is freed.
   */
  private install(layout: Layout, caps: readonly number[], region: Region): void {
    const { valueDim: dv, featureDim: m } = this.config;
    const ws = this.mem.workspace(region);
    const views = ws.take(layout);
    const f32 = this.dtype === 'float32';
    const near32: Float32Array[] = [];
    this.kernels.forEach((k, i) => {
      const near = views.f64(`near${i}`);
      near.set(k.near);
      this.kernels[i] = { ...k, near };
      const c32 = f32 ? views.f32(`near32_${i}`) : new Float32Array(0);
      if (f32) c32.set(near);
      near32.push(c32);
    });
    this.heads.forEach((h, i) => {
      const cap = caps[i]!;
      const ringK = this.ringView(views, `ringK${i}`);
      const ringV = this.ringView(views, `ringV${i}`);
      for (let j = 0; j < h.len; j++) {
        const slot = (h.start + j) % h.cap;
        ringK.set(h.ringK.subarray(slot * m, slot * m + m), j * m);
        ringV.set(h.ringV.subarray(slot * dv, slot * dv + dv), j * dv);
      }
      const far = { sum: views.f64(`farSum${i}`), comp: views.f64(`farComp${i}`) };
      far.sum.set(h.far.sum);
      far.comp.set(h.far.comp);
      Object.assign(h, { kernel: this.kernels[h.shared]!, c32: near32[h.shared]!, ringK, ringV, cap, start: 0, far });
    });
    const old = this.region;
    this.region = region;
    this.ws = ws;
    this.bind(views);
    this.mem.free(old);
  }

  /** Point the token scratch and the kernel argument records at the region's views. */
  private bind(views: LayoutViews): void {
    const { keyDim: d, valueDim: dv, featureDim: m } = this.config;
    const f = this.config.features;
    const heads = this.config.heads;
    // W in the region too: the PRF kernel reads it for every key and query
    this.W = views.f64('W');
    if (f.kind === 'prf') this.W.set(f.projection);
    const rows = (all: Float64Array, dim: number) => Array.from({ length: heads }, (_, h) => all.subarray(h * dim, (h + 1) * dim));
    this.qAll = views.f64('qAll');
    this.kAll = views.f64('kAll');
    this.vAll = views.f64('vAll');
    this.qIn = rows(this.qAll, d);
    this.kIn = rows(this.kAll, d);
    this.vIn = rows(this.vAll, dv);
    this.phiQ = views.f64('phiQ');
    this.phiK = views.f64('phiK');
    this.phiQRows = rows(this.phiQ, m);
    this.phiKRows = rows(this.phiK, m);
    this.acc = views.f64('acc');
    this.logits = this.ws.prfLogits.bind(this.ws);
    this.logitsArgs = { W: this.W, m, d, normalize: f.kind === 'prf' ? f.normalize : 'none', x: this.qAll, n: 0, out: this.phiK };
    const h0 = this.heads[0]!;
    this.ringArgs = { c: h0.kernel.near, ringK: this.phiK, ringV: this.phiK, start: 0, len: 0, cap: 1, phiQ: this.phiQ, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    this.absorbArgs = { far: h0.far, gamma: 1, phiK: this.phiK, kOff: 0, v: this.phiK, vOff: 0, m, dv };
    this.contractArgs = { far: h0.far, cFar: 0, phiQ: this.phiQ, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    // dtype 'float32': the float32 query row and the 32-bit records (empty arrays for float64: never called)
    this.phiQ32 = this.dtype === 'float32' ? views.f32('phiQ32') : new Float32Array(0);
    this.ring32Args = { c: h0.c32, ringK: this.phiQ32, ringV: this.phiQ32, start: 0, len: 0, cap: 1, phiQ: this.phiQ32, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    this.absorb32Args = { far: h0.far, gamma: 1, phiK: this.phiQ32, kOff: 0, v: this.phiQ32, vOff: 0, m, dv };
  }

  /** Tokens consumed so far. */
  get position(): number {
    return this.pos;
  }

  /** Near-field window K_h of each head (its RPE table length). */
  get windows(): number[] {
    return this.heads.map((h) => h.K);
  }

  /** Bytes held by the state arrays (rings at their capacity, far-field sums and compensations). */
  get stateBytes(): number {
    const { valueDim: dv, featureDim: m } = this.config;
    const ringBytes = this.dtype === 'float32' ? 4 : 8;
    let bytes = 8;
    for (const h of this.heads) bytes += h.cap * (m + dv) * ringBytes + 2 * m * (dv + 1) * 8 + 16;
    return bytes;
  }

  /** Forget every token (the config, W, method and backend stay). */
  reset(): void {
    this.checkLive('reset()');
    for (const h of this.heads) {
      h.start = 0;
      h.len = 0;
      h.far.sum.fill(0);
      h.far.comp.fill(0);
      h.keyExp = NO_KEY;
      h.valueExp = 0;
    }
    this.pos = 0;
  }

  /** The state as plain data (copies, rings linearized oldest first): what a snapshot stores. */
  exportState(): DecoderState {
    this.checkLive('exportState()');
    const { valueDim: dv, featureDim: m } = this.config;
    const f32 = this.dtype === 'float32';
    const heads: HeadState[] = this.heads.map((h) => {
      const ringK = f32 ? new Float32Array(h.len * m) : new Float64Array(h.len * m);
      const ringV = f32 ? new Float32Array(h.len * dv) : new Float64Array(h.len * dv);
      for (let i = 0; i < h.len; i++) {
        const slot = (h.start + i) % h.cap;
        ringK.set(h.ringK.subarray(slot * m, slot * m + m), i * m);
        ringV.set(h.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
      }
      return { ringK, ringV, farSum: Float64Array.from(h.far.sum), farComp: Float64Array.from(h.far.comp), keyExp: h.keyExp, valueExp: h.valueExp };
    });
    // dtype only when it is float32: float64 states stay exactly what they were before the option
    return f32 ? { position: this.pos, method: this.method, backend: this.backend, dtype: this.dtype, heads } : { position: this.pos, method: this.method, backend: this.backend, heads };
  }

  /**
   * Replace the whole state in place (e.g. with one a worker computed): checked like fromState, and it must be
   * a state of this decoder's method, backend and dtype. Nothing changes when it is refused.
   */
  replaceState(state: DecoderState): void {
    checkDecoderState(this.config, state);
    const dtype = state.dtype ?? 'float64';
    if (state.method !== this.method || state.backend !== this.backend || dtype !== this.dtype) {
      throw new StateError(
        `replaceState needs a state of method '${this.method}', backend '${this.backend}' and dtype '${this.dtype}', got method ${describe(state.method)}, backend ${describe(state.backend)} and dtype ${describe(dtype)}`,
      );
    }
    this.load(state);
  }

  /** Install a checked state (rings grown to hold it first; nothing changes if memory is refused). */
  private load(state: DecoderState): void {
    this.checkLive('replaceState()');
    const { valueDim: dv, featureDim: m } = this.config;
    this.relayout(this.heads.map((h, i) => Math.max(h.cap, ringCapacity(state.heads[i]!.ringK.length / m, h.K))), 0);
    this.heads.forEach((h, i) => {
      const s = state.heads[i]!;
      h.ringK.set(s.ringK, 0);
      h.start = 0;
      h.len = s.ringK.length / m;
      h.far.sum.set(s.farSum);
      h.far.comp.set(s.farComp);
      h.keyExp = s.keyExp;
      h.valueExp = s.valueExp;
      // a state of another dtype (a float64 state into float32 rings) may hold values above this dtype's limit:
      // they are scaled by a power of two first, F's numerator columns with them, as scaleValuesRunning does
      // (stored values are already scaled by 2^-valueExp: their bound is 2^valueLimit itself)
      let vMax = 0;
      for (let j = 0; j < s.ringV.length; j++) vMax = Math.max(vMax, Math.abs(s.ringV[j]!));
      if (vMax < 2 ** this.valueLimit) {
        h.ringV.set(s.ringV, 0);
        return;
      }
      const exp = powerOfTwoAbove(vMax) + h.valueExp - this.valueLimit + 1;
      const factor = exp2(h.valueExp - exp);
      for (let j = 0; j < s.ringV.length; j++) h.ringV[j] = s.ringV[j]! * factor;
      scaleFarValues(h.far, factor, m, dv);
      h.valueExp = exp;
    });
    this.pos = state.position;
  }

  /** Grow the rings to hold `add` more tokens (a ring holding its whole window K has room: the oldest entry leaves). */
  private prepare(add: number): void {
    // the per-token path: every ring has room (no allocation, no sizing)
    let room = true;
    for (let i = 0; i < this.heads.length; i++) {
      const h = this.heads[i]!;
      if (Math.min(h.len + add, h.K) > h.cap) room = false;
    }
    if (!room) this.relayout(this.ringCaps(add), 0);
  }

  /** Ring capacities that hold `add` more tokens. */
  private ringCaps(add: number): number[] {
    return this.heads.map((h) => (h.len + add <= h.cap ? h.cap : ringCapacity(h.len + add, h.K)));
  }

  private checkLive(what: string): void {
    if (this.disposed) throw new StateError(`${what} on a disposed decoder: dispose() gave its memory back; make a new decoder (or restore a snapshot taken before)`);
  }

  /**
   * Key features of rows [0, n) of x into out, shifted by the head's running 2^-keyExp; when a new key is
   * larger, the exponent moves up and the head's key-side state is rescaled first (exactly: a power of two).
   */
  private keyFeaturesRunning(h: Head, x: Float64Array, n: number, out: Float64Array): void {
    const f = this.config.features;
    const d = this.config.keyDim;
    // exp: the smallest integer with every feature of these rows <= 2^exp (null: none is positive)
    let exp: number | null = null;
    if (f.kind === 'prf') {
      const la = this.logitsArgs;
      la.x = x;
      la.n = n;
      la.out = out;
      exp = expAbove(this.logits(la));
    } else {
      const top = deterministicFeatures(f.kind, x, n, d, out);
      if (top > 0) exp = powerOfTwoAbove(top);
    }
    this.shiftKeys(h, exp, out, n * (f.kind === 'prf' ? f.count : d));
  }

  /**
   * keyFeaturesRunning's second half: out[0, len) (logits or features of new keys, every feature <= 2^exp; exp
   * null: none is positive) shifted by the head's running exponent, raised first to exp when it is larger.
   */
  private shiftKeys(h: Head, exp: number | null, out: Float64Array, len: number): void {
    const f = this.config.features;
    if (exp !== null && (h.keyExp === NO_KEY || exp > h.keyExp)) {
      if (h.keyExp !== NO_KEY) this.rescaleKeys(h, exp2(h.keyExp - exp));
      h.keyExp = exp;
    }
    if (h.keyExp === NO_KEY) {
      out.fill(0, 0, len); // no key with a representable feature yet
    } else if (f.kind === 'prf') {
      this.ws.expShift(out, len, h.keyExp * LN2);
    } else {
      const s = exp2(-h.keyExp);
      for (let i = 0; i < len; i++) out[i] = out[i]! * s;
    }
  }

  /** Query features of rows [0, n) of x into out (math/features.ts queryFeatures, with the decoder's reused logits record). */
  private queryFeaturesInto(x: Float64Array, n: number, out: Float64Array): void {
    const f = this.config.features;
    if (f.kind !== 'prf') return queryFeatures(f, this.config.keyDim, x, n, out);
    const la = this.logitsArgs;
    la.x = x;
    la.n = n;
    la.out = out;
    this.logits(la);
    this.ws.expRows(out, n, f.count);
  }

  /** Multiply the head's key-side state (ring features, F) by a power of two (exact unless it underflows). */
  private rescaleKeys(h: Head, factor: number): void {
    const m = this.config.featureDim;
    for (let i = 0; i < h.len; i++) {
      const o = ((h.start + i) % h.cap) * m;
      for (let r = 0; r < m; r++) h.ringK[o + r] = h.ringK[o + r]! * factor;
    }
    this.ws.scaleFar(h.far, factor, m, this.config.valueDim);
  }

  /**
   * Values of rows [0, n) of v: [n, dv] scaled by 2^-valueExp in place; raises valueExp first when they are near the
   * top of the dtype (2^valueLimit). vMax: max |v| when the caller knows it (else measured here).
   */
  private scaleValuesRunning(h: Head, v: Float64Array, n: number, vMax = -1): void {
    const dv = this.config.valueDim;
    if (vMax < 0) {
      vMax = 0;
      for (let i = 0; i < n * dv; i++) vMax = Math.max(vMax, Math.abs(v[i]!));
    }
    const limit = this.valueLimit;
    if (vMax >= 2 ** limit * exp2(h.valueExp)) {
      const exp = powerOfTwoAbove(vMax) - limit + 1;
      const factor = exp2(h.valueExp - exp);
      const m = this.config.featureDim;
      for (let i = 0; i < h.len; i++) {
        const o = ((h.start + i) % h.cap) * dv;
        for (let col = 0; col < dv; col++) h.ringV[o + col] = h.ringV[o + col]! * factor;
      }
      scaleFarValues(h.far, factor, m, dv);
      h.valueExp = exp;
    }
    if (h.valueExp !== 0) {
      const s = exp2(-h.valueExp);
      for (let i = 0; i < n * dv; i++) v[i] = v[i]! * s;
    }
  }

  private checkPosition(add: number, what: string): void {
    this.checkLive(what);
    if (this.pos + add > MAX_POSITION) throw new StateError(`the decoder is at position ${this.pos}; ${add} more tokens would pass the largest supported position ${MAX_POSITION}`);
  }

  /** One token: q, k: [heads, keyDim]; v: [heads, valueDim] -> z: [heads, valueDim] (into `out` when given; any strides). */
  step(q: NdArray, k: NdArray, v: NdArray, out?: NdArray<Float64Array>): NdArray<Float64Array> {
    const cfg = this.config;
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
    // expected shapes and their texts are made once (no allocation per token)
    const e = (this.stepExpect ??= { key: [heads, d], keyText: `[heads=${heads}, keyDim=${d}]`, value: [heads, dv], valueText: `[heads=${heads}, valueDim=${dv}]` });
    const qv = checkTensor('q', q, e.key, e.keyText, false);
    const kv = checkTensor('k', k, e.key, e.keyText, false);
    const vv = checkTensor('v', v, e.value, e.valueText, false);
    if (out !== undefined) checkOut(out, heads, dv);
    this.checkPosition(1, 'step()');
    // room first (it may move the decoder to a new workspace), then each input gathered into the workspace and
    // checked finite in one pass: scratch only, so a bad value leaves the state as it was
    this.prepare(1);
    gatherRows('q', qv, this.qAll);
    gatherRows('k', kv, this.kAll);
    gatherRows('v', vv, this.vAll, this.vMax);
    const z = out ?? ndarray(new Float64Array(heads * dv), [heads, dv]);
    this.stepGathered(z.data, z.offset, z.stride[0]!, z.stride[1]!);
    return z;
  }

  /**
   * One token from flat rows, for a caller that owns its arrays (the model's session): q, k: [heads * keyDim]
   * from qOff, kOff (head h at h * keyDim); v: [heads * valueDim] from vOff -> z: [heads * valueDim] from zOff.
   * The same as step() on ndarray views of them (same kernels, same bits), without the ndarray checks per
   * call; the values are checked finite while they are gathered, and nothing changes when one is not.
   */
  stepRows(q: Float64Array, qOff: number, k: Float64Array, kOff: number, v: Float64Array, vOff: number, z: Float64Array, zOff: number): void {
    const { heads, keyDim: d, valueDim: dv } = this.config;
    const flat = (this.flatRows ??= { q: flatRecord(heads, d), k: flatRecord(heads, d), v: flatRecord(heads, dv) });
    flatRows('q', flat.q, q, qOff);
    flatRows('k', flat.k, k, kOff);
    flatRows('v', flat.v, v, vOff);
    if (!(z instanceof Float64Array) || !Number.isInteger(zOff) || zOff < 0 || zOff + heads * dv > z.length) {
      throw new ShapeError(`z must be a Float64Array with [heads=${heads}, valueDim=${dv}] = ${heads * dv} entries from offset ${describe(zOff)}, got ${z instanceof Float64Array ? `length ${z.length}` : describe(z)}`);
    }
    this.checkPosition(1, 'stepRows()');
    this.prepare(1);
    gatherRows('q', flat.q, this.qAll);
    gatherRows('k', flat.k, this.kAll);
    gatherRows('v', flat.v, this.vAll, this.vMax);
    this.stepGathered(z, zOff, dv, 1);
  }

  /** step()'s work once q, k, v are gathered into qAll, kAll, vAll (vMax set): z[zOff + h*s0 + c*s1]. */
  private stepGathered(zData: Float64Array, zOff: number, s0: number, s1: number): void {
    const { heads, valueDim: dv, featureDim: m } = this.config;
    const { phiQ, phiK, acc, ringArgs, absorbArgs, contractArgs, ws } = this;
    const prf = this.config.features.kind === 'prf';
    // dtype 'float32': the same steps, with the ring (float32) read and written by the float32 kernels
    const f32 = this.dtype === 'float32';
    if (prf) {
      // every head's key and query logits in one kernel call each (rows of kAll, qAll: [heads, d] -> [heads, m]),
      // each row computed as a one-row call computes it; the query features exponentiated in one call too
      const la = this.logitsArgs;
      la.x = this.kAll;
      la.n = heads;
      la.out = phiK;
      this.logits(la);
      la.x = this.qAll;
      la.out = phiQ;
      this.logits(la);
      ws.expRows(phiQ, heads, m);
    }
    for (let hIdx = 0; hIdx < heads; hIdx++) {
      const h = this.heads[hIdx]!;
      const kernel = h.kernel;
      const full = h.len === h.K;
      const slot = full ? h.start : (h.start + h.len) % h.cap;
      const vRow = this.vIn[hIdx]!;
      const kRow = this.phiKRows[hIdx]!;
      if (prf) this.shiftKeys(h, expAbove(rowMax(phiK, hIdx * m, m)), kRow, m);
      else this.keyFeaturesRunning(h, this.kIn[hIdx]!, 1, kRow);
      this.scaleValuesRunning(h, vRow, 1, this.vMax[hIdx]!);
      // the oldest key leaves the near field: fold it into F (F_i = gamma (F_{i-1} + U_{i-K}))
      if (full && kernel.hasFar) {
        if (f32) {
          this.absorb32(h, h.ringK as Float32Array, slot * m, h.ringV as Float32Array, slot * dv);
        } else {
          absorbArgs.far = h.far;
          absorbArgs.gamma = kernel.gamma;
          absorbArgs.phiK = h.ringK as Float64Array;
          absorbArgs.kOff = slot * m;
          absorbArgs.v = h.ringV as Float64Array;
          absorbArgs.vOff = slot * dv;
          ws.farAbsorb(absorbArgs);
        }
      }
      // (float32 rings: the features and values computed in float64 are rounded here, once)
      h.ringK.set(kRow, slot * m);
      h.ringV.set(vRow, slot * dv);
      if (full) h.start = (h.start + 1) % h.cap;
      else h.len++;
      if (!prf) this.queryFeaturesInto(this.qIn[hIdx]!, 1, this.phiQRows[hIdx]!);
      acc.fill(0);
      if (f32) {
        this.nearRing32(h, hIdx);
      } else {
        ringArgs.qOff = hIdx * m;
        ringArgs.c = kernel.near;
        ringArgs.ringK = h.ringK as Float64Array;
        ringArgs.ringV = h.ringV as Float64Array;
        ringArgs.start = h.start;
        ringArgs.len = h.len;
        ringArgs.cap = h.cap;
        ws.aformRing(ringArgs);
      }
      // the far field contracts the float64 query features (F is float64 in either dtype)
      if (kernel.hasFar) {
        contractArgs.far = h.far;
        contractArgs.cFar = kernel.cFar;
        contractArgs.qOff = hIdx * m;
        ws.farContract(contractArgs);
      }
      const scale = exp2(h.valueExp);
      const den = acc[dv]!;
      const base = zOff + hIdx * s0;
      for (let col = 0; col < dv; col++) zData[base + col * s1] = den > 0 ? finite((acc[col]! / den) * scale) : 0;
    }
    this.pos++;
  }

  /** dtype 'float32': F <- gamma (F + U) of one float32 row (F float64, compensated). */
  private absorb32(h: Head, k: Float32Array, kOff: number, v: Float32Array, vOff: number, ws: Workspace = this.ws): void {
    const a = this.absorb32Args;
    a.far = h.far;
    a.gamma = h.kernel.gamma;
    a.phiK = k;
    a.kOff = kOff;
    a.v = v;
    a.vOff = vOff;
    ws.farAbsorb32(a);
  }

  /** dtype 'float32': acc += the near field of head hIdx's query (phiQ row, rounded to float32) against its ring. */
  private nearRing32(h: Head, hIdx: number): void {
    const m = this.config.featureDim;
    const q32 = this.phiQ32;
    const q = this.phiQ;
    const o = hIdx * m;
    for (let r = 0; r < m; r++) q32[o + r] = q[o + r]!;
    const a = this.ring32Args;
    a.qOff = o;
    a.c = h.c32;
    a.ringK = h.ringK as Float32Array;
    a.ringV = h.ringV as Float32Array;
    a.start = h.start;
    a.len = h.len;
    a.cap = h.cap;
    this.ws.aformRing32(a);
  }

  /** L tokens: q, k: [heads, L, keyDim]; v: [heads, L, valueDim] -> z: [heads, L, valueDim]. */
  chunk(q: NdArray, k: NdArray, v: NdArray): NdArray<Float64Array> {
    const cfg = this.config;
    const { heads, valueDim: dv } = cfg;
    const { q: qv, k: kv, v: vv, n: L } = checkSequence(cfg, 'L', q, k, v);
    this.checkPosition(L, 'chunk()');
    const z = ndarray(new Float64Array(heads * L * dv), [heads, L, dv]);
    if (L === 0) return z;
    this.chunkChecked(qv, kv, vv, L, z.data);
    return z;
  }

  private chunkChecked(qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, L: number, out: Float64Array): void {
    if (this.dtype === 'float32') return this.chunkChecked32(qv, kv, vv, L, out);
    const cfg = this.config;
    const { heads, valueDim: dv, featureDim: m } = cfg;
    // plan every head's pass first (pure), then size one scratch region for the call: the FFT plans (kept to its
    // end), and per head (one at a time) the chunk's buffers and the pass's scratch
    const plans = this.heads.map((h) => planPass(h.K, this.method, 0, h.len, h.len + L, m, dv, this.backend));
    const sizes = new Set<number>();
    let stack = 0;
    this.heads.forEach((h, i) => {
      const p = plans[i]!;
      if (p.method === 'fft') sizes.add(2 * p.block);
      stack = Math.max(stack, this.chunkLayout(h.len + L, L).bytes + p.scratch * 8);
    });
    let planBytes = 0;
    for (const N of sizes) planBytes += this.mem.planBytes(N);
    const scratch = this.relayout(this.ringCaps(L), stack + planBytes)!;
    try {
      const ws = this.mem.workspace(scratch);
      for (const N of sizes) ws.fftPlan(N);
      this.lastStats = [];
      for (let hIdx = 0; hIdx < heads; hIdx++) {
        const h = this.heads[hIdx]!;
        const R = h.len;
        const nb = R + L;
        const mark = ws.mark();
        const views = ws.take(this.chunkLayout(nb, L));
        const x = views.f64('x');
        const bufK = views.f64('bufK');
        const bufV = views.f64('bufV');
        const phiQ = views.f64('phiQ');
        const acc = views.f64('acc');
        copyHead(kv, hIdx, x);
        this.keyFeaturesRunning(h, x, L, bufK.subarray(R * m));
        copyHead(vv, hIdx, bufV, 0, L, R);
        this.scaleValuesRunning(h, bufV.subarray(R * dv), L);
        ringIntoBuffer(h, bufK, bufV, m, dv);
        copyHead(qv, hIdx, x);
        this.queryFeaturesInto(x, L, phiQ);
        const pass = { kernel: h.kernel, partitions: h.partitions, method: this.method, block: 0, phiK: bufK, v: bufV, phiQ, q0: R, nb, m, dv, far: h.far, acc };
        this.lastStats.push(attendBuffer(pass, plans[hIdx]!, ws));
        finalizeRows(acc, L, dv, out, hIdx * L * dv, exp2(h.valueExp));
        bufferIntoRing(h, bufK, bufV, nb, m, dv);
        ws.release(mark);
      }
      this.pos += L;
    } finally {
      this.mem.free(scratch);
    }
  }

  /**
   * What one float32 chunk of L tokens takes per head on top of its pass's scratch (buffer rows nb = ring + L): the
   * float32 buffer [ring | chunk] (what the ring keeps), float64 features and accumulators, the float32 queries of
   * the direct pass, and for an FFT pass float64 copies of the buffer (attention()'s float32 pass reads float64 rows).
   */
  private chunkLayout32(nb: number, L: number, fft: boolean): Layout {
    const { keyDim: d, valueDim: dv, featureDim: m } = this.config;
    return declare([
      { name: 'x', type: 'f64', length: L * Math.max(d, dv, m) },
      { name: 'bufK', type: 'f32', length: nb * m },
      { name: 'bufV', type: 'f32', length: nb * dv },
      { name: 'phiQ', type: 'f64', length: L * m },
      { name: 'phiQ32', type: 'f32', length: fft ? 0 : L * m },
      { name: 'acc', type: 'f64', length: L * (dv + 1) },
      { name: 'bufK64', type: 'f64', length: fft ? nb * m : 0 },
      { name: 'bufV64', type: 'f64', length: fft ? nb * dv : 0 },
    ]);
  }

  /**
   * chunk() in dtype 'float32'. Features and values are computed in float64 and rounded to float32 once, into a
   * float32 buffer [ring oldest-first | chunk] (what the ring keeps). The cost model (float32 constants, planPass32)
   * picks the near field: 'direct' runs the float32 A-form (aformRows32) with the far field absorbing the buffer's
   * float32 rows into F (float64); 'fft' runs attention()'s float32 pass (nearfield32.ts: far field, head lags and
   * repairs in float64, FFT channels in float32) over float64 copies of the same rounded rows.
   */
  private chunkChecked32(qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, L: number, out: Float64Array): void {
    const { heads, valueDim: dv, featureDim: m } = this.config;
    // plan every head's pass first (pure), then size one scratch region for the call: the float32 FFT plans (WASM:
    // taken from the region's top and kept to its end), and per head (one at a time) the chunk's arrays and the
    // pass's scratch
    const plans = this.heads.map((h) => planPass32(h.K, this.method, 0, h.len, h.len + L, m, dv, this.backend));
    const planBytes = new Map<number, number>();
    let stack = 0;
    this.heads.forEach((h, i) => {
      const p = plans[i]!;
      const fft = p.method === 'fft';
      if (fft && this.backend === 'wasm') planBytes.set(2 * p.block, p.planFloats * 8);
      stack = Math.max(stack, this.chunkLayout32(h.len + L, L, fft).bytes + p.scratch * 8);
    });
    let plansTotal = 0;
    for (const b of planBytes.values()) plansTotal += b;
    const scratch = this.relayout(this.ringCaps(L), stack + plansTotal)!;
    try {
      const ws = this.mem.workspace(scratch);
      this.lastStats = [];
      for (let hIdx = 0; hIdx < heads; hIdx++) {
        const h = this.heads[hIdx]!;
        const kernel = h.kernel;
        const R = h.len;
        const nb = R + L;
        const plan = plans[hIdx]!;
        const fft = plan.method === 'fft';
        const mark = ws.mark();
        const views = ws.take(this.chunkLayout32(nb, L, fft));
        const x = views.f64('x');
        const bufK = views.f32('bufK');
        const bufV = views.f32('bufV');
        const phiQ = views.f64('phiQ');
        const acc = views.f64('acc');
        // key features into phiQ (free until the queries), rounded to float32 into the buffer
        copyHead(kv, hIdx, x);
        this.keyFeaturesRunning(h, x, L, phiQ);
        bufK.set(phiQ.subarray(0, L * m), R * m);
        copyHead(vv, hIdx, x);
        this.scaleValuesRunning(h, x, L);
        bufV.set(x.subarray(0, L * dv), R * dv);
        ringIntoBuffer(h, bufK, bufV, m, dv);
        copyHead(qv, hIdx, x);
        this.queryFeaturesInto(x, L, phiQ);
        if (fft) {
          const bufK64 = views.f64('bufK64');
          const bufV64 = views.f64('bufV64');
          bufK64.set(bufK);
          bufV64.set(bufV);
          const pass = { kernel, partitions: h.partitions, method: this.method, block: 0, phiK: bufK64, v: bufV64, phiQ, q0: R, nb, m, dv, far: h.far, acc };
          this.lastStats.push(attendBuffer32(pass, plan, ws));
        } else {
          const phiQ32 = views.f32('phiQ32');
          phiQ32.set(phiQ);
          this.direct32(h, bufK, bufV, phiQ, phiQ32, R, nb, acc, ws);
          this.lastStats.push({ method: 'direct', block: 0, repairedRows: 0 });
        }
        finalizeRows(acc, L, dv, out, hIdx * L * dv, exp2(h.valueExp));
        bufferIntoRing(h, bufK, bufV, nb, m, dv);
        ws.release(mark);
      }
      this.pos += L;
    } finally {
      this.mem.free(scratch);
    }
  }

  /**
   * The float32 direct pass over a buffer of nb rows (queries from row R): far field first (as attendBuffer does:
   * key row b - K leaves the near field before row b is read; F float64, the query features float64), then the
   * float32 A-form over lags < K. acc: [nb - R, dv + 1], added into. ws: the chunk's scratch workspace.
   */
  private direct32(h: Head, bufK: Float32Array, bufV: Float32Array, phiQ: Float64Array, phiQ32: Float32Array, R: number, nb: number, acc: Float64Array, ws: Workspace): void {
    const { valueDim: dv, featureDim: m } = this.config;
    const kernel = h.kernel;
    const K = h.K;
    const contract = this.contractArgs;
    if (kernel.hasFar) {
      contract.far = h.far;
      contract.cFar = kernel.cFar;
      contract.phiQ = phiQ;
      contract.acc = acc;
      for (let b = Math.max(R, K); b < nb; b++) {
        this.absorb32(h, bufK, (b - K) * m, bufV, (b - K) * dv, ws);
        contract.qOff = (b - R) * m;
        contract.aOff = (b - R) * (dv + 1);
        ws.farContract(contract);
      }
      // the step's record again
      contract.phiQ = this.phiQ;
      contract.acc = this.acc;
      contract.aOff = 0;
    }
    ws.aformRows32({ c: h.c32, tLo: 0, tHi: Math.min(K, nb), phiK: bufK, v: bufV, phiQ: phiQ32, q0: R, b0: R, b1: nb, m, dv, acc });
  }
}

/** The smallest integer e with 2^e >= e^best (null when best is -Infinity: no representable feature). */
function expAbove(best: number): number | null {
  if (!(best > -Infinity)) return null;
  let exp = Math.ceil(best / LN2);
  if (exp * LN2 < best) exp++;
  return exp;
}

/** F's numerator columns (of v) times `factor` (a power of two: exact), sum and compensation; the denominator column does not scale with v. F: [m, dv + 1]. */
function scaleFarValues(far: FarArrays, factor: number, m: number, dv: number): void {
  for (let r = 0; r < m; r++) {
    for (let col = 0; col < dv; col++) {
      const o = r * (dv + 1) + col;
      far.sum[o] = far.sum[o]! * factor;
      far.comp[o] = far.comp[o]! * factor;
    }
  }
}

/** A chunk's buffer rows [0, h.len) = the ring, oldest first (bufK: [nb, m], bufV: [nb, dv], the ring's dtype). */
function ringIntoBuffer(h: Head, bufK: Float64Array | Float32Array, bufV: Float64Array | Float32Array, m: number, dv: number): void {
  for (let i = 0; i < h.len; i++) {
    const slot = (h.start + i) % h.cap;
    bufK.set(h.ringK.subarray(slot * m, slot * m + m), i * m);
    bufV.set(h.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
  }
}

/** After a chunk: the ring keeps the buffer's last min(K, nb) rows, linearized from slot 0. */
function bufferIntoRing(h: Head, bufK: Float64Array | Float32Array, bufV: Float64Array | Float32Array, nb: number, m: number, dv: number): void {
  const keep = Math.min(h.K, nb);
  h.ringK.set(bufK.subarray((nb - keep) * m, nb * m), 0);
  h.ringV.set(bufV.subarray((nb - keep) * dv, nb * dv), 0);
  h.start = 0;
  h.len = keep;
}

/** max of a[off, off + n) (-Infinity when empty), as the PRF logits kernel reports it for one row */
function rowMax(a: Float64Array, off: number, n: number): number {
  let best = -Infinity;
  for (let i = off; i < off + n; i++) if (a[i]! > best) best = a[i]!;
  return best;
}

/** A contiguous [rows, dim] view, refilled per call (a CheckedTensor without allocation). */
interface FlatRows {
  data: Float64Array;
  offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly rows: number;
  readonly dim: number;
}

function flatRecord(rows: number, dim: number): FlatRows {
  return { data: new Float64Array(0), offset: 0, shape: [rows, dim], stride: [dim, 1], rows, dim };
}

/** Point `r` at a[off .. off + rows*dim): a Float64Array holding them, else a ShapeError (nothing changed). */
function flatRows(name: string, r: FlatRows, a: Float64Array, off: number): void {
  const len = r.rows * r.dim;
  if (!(a instanceof Float64Array) || !Number.isInteger(off) || off < 0 || off + len > a.length) {
    throw new ShapeError(`${name} must be a Float64Array with ${r.rows} x ${r.dim} = ${len} entries from offset ${describe(off)}, got ${a instanceof Float64Array ? `length ${a.length}` : describe(a)}`);
  }
  r.data = a;
  r.offset = off;
}

/** Ring capacity for `need` entries: doubling from FIRST_RING, at most K. */
function ringCapacity(need: number, K: number): number {
  let cap = Math.min(K, FIRST_RING);
  while (cap < need) cap *= 2;
  return Math.min(cap, K);
}

function checkOut(out: NdArray<Float64Array>, heads: number, dv: number): void {
  const ok =
    out !== null &&
    typeof out === 'object' &&
    out.data instanceof Float64Array &&
    Array.isArray(out.shape) &&
    out.shape.length === 2 &&
    out.shape[0] === heads &&
    out.shape[1] === dv &&
    Array.isArray(out.stride) &&
    Number.isInteger(out.offset);
  if (!ok) throw new ShapeError(`out must be a Float64Array-backed ndarray of shape [${heads}, ${dv}], got ${out === null || typeof out !== 'object' ? describe(out) : `shape ${describe(out.shape)} over ${describe(out.data)}`}`);
  const s0 = out.stride[0]!;
  const s1 = out.stride[1]!;
  const lo = out.offset + Math.min(0, (heads - 1) * s0) + Math.min(0, (dv - 1) * s1);
  const hi = out.offset + Math.max(0, (heads - 1) * s0) + Math.max(0, (dv - 1) * s1);
  if (!Number.isInteger(s0) || !Number.isInteger(s1) || lo < 0 || hi >= out.data.length) {
    throw new ShapeError(`out (shape [${heads}, ${dv}], stride [${s0}, ${s1}], offset ${out.offset}) reaches outside its data of length ${out.data.length}`);
  }
  // two elements of out sharing one slot would be overwritten
  if ((heads > 1 && s0 === 0) || (dv > 1 && s1 === 0)) throw new ShapeError(`out must not alias its own elements (stride [${s0}, ${s1}])`);
}
