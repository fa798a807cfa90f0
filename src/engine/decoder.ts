// The stateful causal decoder: token by token (step) or chunk by chunk (chunk), equal to whole-sequence
// attention. State per head h: a ring of the last K_h (phi(k), v) pairs (the near field; K_h is the head's
// RPE table length, heads may differ) and the far-field feature state F (keys older than K_h, collapsed by
// the tail's constant or geometric weight), so memory is O(K_h (m + dv) + m dv) whatever the position.
// The state is plain data (state.ts): exportState() gives it, Decoder.fromState() rebuilds a decoder from it.
// Arrays the kernels touch live in the decoder's workspace (WASM memory on the WASM backend).
import type { NdArray } from 'ndarray';
import ndarray from 'ndarray';
import { toResolvedConfig, type AttentionConfig, type ResolvedConfig } from './config.js';
import { ConfigError, ShapeError, StateError, describe } from '../core/errors.js';
import { MAX_POSITION } from '../core/limits.js';
import { checkSequence, checkTensor, copyHead, gatherRows, type CheckedTensor } from './tensor.js';
import { attendBuffer, checkMethodOption, planPass, PartitionCache, type MethodOption, type PassStats } from './nearfield.js';
import { attendBuffer32, planPass32 } from './nearfield32.js';
import { deterministicFeatures, exp2, powerOfTwoAbove, queryFeatures, type PrfLogitsKernel } from '../math/features.js';
import { kernelMaxLog, shiftKernel, type CausalKernel, type ShiftedKernel } from '../math/kernel.js';
import type { AformRingArgs, FarAbsorbArgs, FarArrays, FarContractArgs, PrfLogitsArgs } from '../math/kernelArgs.js';
import type { AformRing32Args, FarAbsorb32Args } from '../math/kernelArgs32.js';
import { checkDtypeOption, type DType } from './dtype.js';
import { checkBackendOption, createWorkspace, resolveBackend, type BackendName, type BackendOption, type Workspace } from '../backend/index.js';
import { checkDecoderState, NO_KEY, valueExpLimit, type DecoderState, type HeadState } from './state.js';

export type { DecoderState, HeadState } from './state.js';
export type { DType } from './dtype.js';

export interface DecoderOptions {
  /** near-field method for chunks: 'auto' (cost model), 'fft' or 'direct'. Steps always use the A-form. */
  method?: MethodOption;
  /** 'auto' (WASM SIMD where supported), 'js' or 'wasm' */
  backend?: BackendOption;
  /**
   * 'float64' (default, the reference) or 'float32': rings of float32 key features and values (half the state
   * bytes) and float32 window kernels; features, far field F and accumulators stay float64. Per-row normwise
   * error vs the float64 oracle <= 1e-4 (test/engine/decoder-float32.test.ts).
   */
  dtype?: DType;
}

const LN2 = Math.LN2;
const FIRST_RING = 64;

/** Live state of one head; the arrays are views of the decoder's workspace. */
interface Head {
  readonly K: number;
  readonly kernel: ShiftedKernel;
  readonly partitions: PartitionCache;
  /** ringK: [cap, m], ringV: [cap, dv]; `len` slots oldest-first from `start`, wrapping at cap (Float32Array for dtype 'float32') */
  ringK: Float64Array | Float32Array;
  ringV: Float64Array | Float32Array;
  /** dtype 'float32': the kernel's near table c(t) as float32, in the workspace (shared like `kernel`); else empty */
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
  private ws: Workspace;
  private heads: Head[];
  private pos = 0;
  // per-token scratch in the workspace, reused (no allocation per token): step()'s inputs gathered and checked
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
  /** the workspace's PRF logits kernel, bound once, and W in the workspace: [m, d] */
  private logits!: PrfLogitsKernel;
  private W: Float64Array = new Float64Array(0);
  /** step()'s expected shapes and their texts, made on the first step */
  private stepExpect: { key: readonly number[]; keyText: string; value: readonly number[]; valueText: string } | undefined;
  /** stepRows()'s inputs as checked [heads, dim] tensors over the caller's arrays, refilled per call */
  private flatRows: { q: FlatRows; k: FlatRows; v: FlatRows } | undefined;
  /** one PRF logits record, refilled per call */
  private logitsArgs!: PrfLogitsArgs;
  private readonly ringArgs: AformRingArgs;
  private readonly absorbArgs: FarAbsorbArgs;
  private readonly contractArgs: FarContractArgs;
  /** dtype 'float32': the query features as float32 ([heads, m], the window kernel's input) and its records */
  private phiQ32: Float32Array = new Float32Array(0);
  private readonly ring32Args: AformRing32Args;
  private readonly absorb32Args: FarAbsorb32Args;
  /** values are kept below 2^valueLimit (state.ts valueExpLimit) */
  private readonly valueLimit: number;
  lastStats: PassStats[] = [];

  constructor(config: AttentionConfig | ResolvedConfig, options: DecoderOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { method?, backend?, dtype? }, got ${describe(options)}`);
    const method = checkMethodOption(options.method);
    const backend = resolveBackend(checkBackendOption(options.backend));
    const dtype = checkDtypeOption(options.dtype);
    const cfg = toResolvedConfig(config);
    if (!cfg.causal) throw new StateError(`Decoder needs a causal config (causal: true), got causal: false; use attention() for bidirectional sequences`);
    this.config = cfg;
    this.method = method;
    this.backend = backend;
    this.dtype = dtype;
    this.valueLimit = valueExpLimit(dtype);
    const { valueDim: dv, featureDim: m } = cfg;
    this.ws = createWorkspace(backend, this.persistentFloats(cfg.past.map((p) => Math.min(p.logBias.length, FIRST_RING))) * 2 + 4096);
    this.vMax = new Float64Array(cfg.heads);
    this.allocScratch();
    // heads sharing one RPE share its kernel table and spectra (a long shared table is held once)
    const shared = new Map<CausalKernel, { kernel: ShiftedKernel; partitions: PartitionCache; c32: Float32Array }>();
    this.heads = cfg.past.map((p) => {
      const cap = Math.min(p.logBias.length, FIRST_RING);
      let k = shared.get(p);
      if (k === undefined) {
        const kernel = this.inWorkspace(shiftKernel(p, Math.max(kernelMaxLog(p), -1e300)));
        k = { kernel, partitions: new PartitionCache(), c32: this.near32(kernel) };
        shared.set(p, k);
      }
      return {
        K: p.logBias.length,
        kernel: k.kernel,
        partitions: k.partitions,
        c32: k.c32,
        ringK: this.ringArray(cap * m),
        ringV: this.ringArray(cap * dv),
        cap,
        start: 0,
        len: 0,
        far: { sum: this.ws.f64(m * (dv + 1)), comp: this.ws.f64(m * (dv + 1)) },
        keyExp: NO_KEY,
        valueExp: 0,
      };
    });
    const far = this.heads[0]!.far;
    this.ringArgs = { c: this.heads[0]!.kernel.near, ringK: this.phiK, ringV: this.phiK, start: 0, len: 0, cap: 1, phiQ: this.phiQ, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    this.absorbArgs = { far, gamma: 1, phiK: this.phiK, kOff: 0, v: this.phiK, vOff: 0, m, dv };
    this.contractArgs = { far, cFar: 0, phiQ: this.phiQ, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    const no32 = new Float32Array(0);
    this.ring32Args = { c: no32, ringK: no32, ringV: no32, start: 0, len: 0, cap: 1, phiQ: this.phiQ32, qOff: 0, m, dv, acc: this.acc, aOff: 0 };
    this.absorb32Args = { far, gamma: 1, phiK: no32, kOff: 0, v: no32, vOff: 0, m, dv };
  }

  /** A ring array of `n` entries of this decoder's dtype, in the workspace. */
  private ringArray(n: number): Float64Array | Float32Array {
    return this.dtype === 'float32' ? this.ws.f32(n) : this.ws.f64(n);
  }

  /** dtype 'float32': the kernel's near table as float32 in the workspace (else an empty array). */
  private near32(kernel: ShiftedKernel): Float32Array {
    if (this.dtype !== 'float32') return new Float32Array(0);
    const c = this.ws.f32(kernel.near.length);
    c.set(kernel.near);
    return c;
  }

  /** A decoder continuing from a state (validated against the config and the engine's invariants). */
  static fromState<T extends DecoderCore>(this: new (config: ResolvedConfig, options?: DecoderOptions) => T, config: AttentionConfig | ResolvedConfig, state: DecoderState, options: DecoderOptions = {}): T {
    const cfg = toResolvedConfig(config);
    checkDecoderState(cfg, state);
    if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { method?, backend? }, got ${describe(options)}`);
    // the state's dtype unless options ask for another (its rings are then converted: no longer bit-identical)
    const dec = new this(cfg, { method: options.method ?? state.method, backend: options.backend ?? state.backend, dtype: options.dtype ?? state.dtype ?? 'float64' });
    dec.load(state);
    return dec;
  }

  /** Float64 the decoder keeps in its workspace with rings of capacity `caps`: W, kernels, rings, far state, token scratch. */
  private persistentFloats(caps: number[]): number {
    const { keyDim: d, valueDim: dv, featureDim: m } = this.config;
    // + 7 per array: WASM views start on a cache line (wasmF64Entries)
    let n = this.config.heads * (2 * d + dv + 2 * m) + d + dv + 1 + m * d + 7 * 7 + 64;
    caps.forEach((cap) => (n += cap * (m + dv) + 2 * m * (dv + 1) + 4 * 7));
    for (const kern of new Set(this.config.past)) n += kern.logBias.length + 7;
    // dtype 'float32' (its rings, counted above as float64, take half): the float32 tables and query features
    if (this.dtype === 'float32') {
      n += (this.config.heads * m) / 2 + 8;
      for (const kern of new Set(this.config.past)) n += kern.logBias.length / 2 + 8;
    }
    return n;
  }

  /** The kernel with its near table copied into the workspace (the kernels read it every token). */
  private inWorkspace(kernel: ShiftedKernel): ShiftedKernel {
    const near = this.ws.f64(kernel.near.length);
    near.set(kernel.near);
    return { ...kernel, near };
  }

  private allocScratch(): void {
    const { keyDim: d, valueDim: dv, featureDim: m } = this.config;
    const f = this.config.features;
    // W in the workspace too: the PRF kernel reads it for every key and query
    if (f.kind === 'prf') {
      this.W = this.ws.f64(f.projection.length);
      this.W.set(f.projection);
    }
    const heads = this.config.heads;
    const rows = (all: Float64Array, dim: number) => Array.from({ length: heads }, (_, h) => all.subarray(h * dim, (h + 1) * dim));
    this.qAll = this.ws.f64(heads * d);
    this.kAll = this.ws.f64(heads * d);
    this.vAll = this.ws.f64(heads * dv);
    this.qIn = rows(this.qAll, d);
    this.kIn = rows(this.kAll, d);
    this.vIn = rows(this.vAll, dv);
    this.phiQ = this.ws.f64(heads * m);
    this.phiK = this.ws.f64(heads * m + Math.max(0, d - m));
    this.phiQRows = rows(this.phiQ, m);
    this.phiKRows = rows(this.phiK, m);
    this.acc = this.ws.f64(dv + 1);
    if (this.dtype === 'float32') this.phiQ32 = this.ws.f32(heads * m);
    this.logits = this.ws.prfLogits.bind(this.ws);
    this.logitsArgs = { W: this.W, m, d, normalize: f.kind === 'prf' ? f.normalize : 'none', x: this.qAll, n: 0, out: this.phiK };
  }

  /**
   * Make sure `extra` float64 of scratch fit in the workspace (and rings of capacity `caps`); a WASM workspace
   * that is too small is replaced by a larger one and the state moves over (memory is never grown in place).
   */
  private reserve(extra: number, caps: number[] = this.heads.map((h) => h.cap)): void {
    const persistent = this.persistentFloats(caps);
    if (this.ws.available >= extra + persistent) return;
    const old = this.heads;
    this.ws = createWorkspace(this.backend, 2 * (persistent + extra));
    this.allocScratch();
    this.ringArgs.phiQ = this.phiQ;
    this.ringArgs.acc = this.acc;
    this.contractArgs.phiQ = this.phiQ;
    this.contractArgs.acc = this.acc;
    this.ring32Args.phiQ = this.phiQ32;
    this.ring32Args.acc = this.acc;
    const { valueDim: dv, featureDim: m } = this.config;
    const moved = new Map<ShiftedKernel, { kernel: ShiftedKernel; c32: Float32Array }>();
    this.heads = old.map((h) => {
      let k = moved.get(h.kernel);
      if (k === undefined) {
        const kernel = this.inWorkspace(h.kernel);
        k = { kernel, c32: this.near32(kernel) };
        moved.set(h.kernel, k);
      }
      const { kernel, c32 } = k;
      const ringK = this.ringArray(h.cap * m);
      const ringV = this.ringArray(h.cap * dv);
      ringK.set(h.ringK);
      ringV.set(h.ringV);
      const far = { sum: this.ws.f64(m * (dv + 1)), comp: this.ws.f64(m * (dv + 1)) };
      far.sum.set(h.far.sum);
      far.comp.set(h.far.comp);
      return { ...h, kernel, c32, ringK, ringV, far };
    });
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
   * a state of this decoder's method and backend. Nothing changes when it is refused.
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

  /** Install a checked state (fresh decoder of the same config). */
  private load(state: DecoderState): void {
    const { valueDim: dv, featureDim: m } = this.config;
    const caps = this.heads.map((h, i) => Math.max(h.cap, ringCapacity(state.heads[i]!.ringK.length / m, h.K)));
    this.reserve(0, caps);
    this.heads.forEach((h, i) => {
      const s = state.heads[i]!;
      const len = s.ringK.length / m;
      this.growRing(h, caps[i]!);
      h.ringK.set(s.ringK, 0);
      h.start = 0;
      h.len = len;
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
      for (let r = 0; r < m; r++) {
        for (let col = 0; col < dv; col++) {
          const o = r * (dv + 1) + col;
          h.far.sum[o] = h.far.sum[o]! * factor;
          h.far.comp[o] = h.far.comp[o]! * factor;
        }
      }
      h.valueExp = exp;
    });
    this.pos = state.position;
  }

  /** Grow a head's ring to capacity `cap` (<= K), linearizing it oldest-first. The workspace has room (reserve). */
  private growRing(h: Head, cap: number): void {
    if (cap <= h.cap) return;
    const { valueDim: dv, featureDim: m } = this.config;
    const k = this.ringArray(cap * m);
    const v = this.ringArray(cap * dv);
    for (let i = 0; i < h.len; i++) {
      const slot = (h.start + i) % h.cap;
      k.set(h.ringK.subarray(slot * m, slot * m + m), i * m);
      v.set(h.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
    }
    h.ringK = k;
    h.ringV = v;
    h.start = 0;
    h.cap = cap;
  }

  /** Capacities every head needs to hold `add` more tokens; reserve room for them and for `extra` scratch. */
  private prepare(add: number, extra: number): void {
    // the per-token path: every ring has room and no scratch is asked for (no allocation, no sizing); a ring
    // holding its whole window K has room too (the oldest entry leaves)
    if (extra === 0) {
      let room = true;
      for (let i = 0; i < this.heads.length; i++) {
        const h = this.heads[i]!;
        if (Math.min(h.len + add, h.K) > h.cap) room = false;
      }
      if (room) return;
    }
    const caps = this.heads.map((h) => (h.len + add <= h.cap ? h.cap : ringCapacity(h.len + add, h.K)));
    this.reserve(extra, caps);
    this.heads.forEach((h, i) => this.growRing(h, caps[i]!));
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
   * float64 top. vMax: max |v| when the caller knows it (else measured here).
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
      // numerator columns of F scale with v; the denominator column does not
      for (let r = 0; r < m; r++) {
        for (let col = 0; col < dv; col++) {
          const o = r * (dv + 1) + col;
          h.far.sum[o] = h.far.sum[o]! * factor;
          h.far.comp[o] = h.far.comp[o]! * factor;
        }
      }
      h.valueExp = exp;
    }
    if (h.valueExp !== 0) {
      const s = exp2(-h.valueExp);
      for (let i = 0; i < n * dv; i++) v[i] = v[i]! * s;
    }
  }

  private checkPosition(add: number): void {
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
    this.checkPosition(1);
    // room first (it may move the decoder to a new workspace), then each input gathered into the workspace and
    // checked finite in one pass: scratch only, so a bad value leaves the state as it was
    this.prepare(1, 0);
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
    this.checkPosition(1);
    this.prepare(1, 0);
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
  private absorb32(h: Head, k: Float32Array, kOff: number, v: Float32Array, vOff: number): void {
    const a = this.absorb32Args;
    a.far = h.far;
    a.gamma = h.kernel.gamma;
    a.phiK = k;
    a.kOff = kOff;
    a.v = v;
    a.vOff = vOff;
    this.ws.farAbsorb32(a);
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
    this.checkPosition(L);
    const z = ndarray(new Float64Array(heads * L * dv), [heads, L, dv]);
    if (L === 0) return z;
    this.chunkChecked(qv, kv, vv, L, z.data);
    return z;
  }

  private chunkChecked(qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, L: number, out: Float64Array): void {
    if (this.dtype === 'float32') return this.chunkChecked32(qv, kv, vv, L, out);
    const cfg = this.config;
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
    // plan every head's pass first (pure), so the workspace is sized once, before any view is taken
    const plans = this.heads.map((h) => planPass(h.K, this.method, 0, h.len, h.len + L, m, dv, this.backend));
    let scratch = 0;
    this.heads.forEach((h, i) => {
      const nb = h.len + L;
      scratch = Math.max(scratch, plans[i]!.scratch + plans[i]!.planFloats + nb * (m + dv));
    });
    scratch += L * Math.max(d, dv) + L * m + L * (dv + 1) + 5 * 7 + 64;
    this.prepare(L, scratch);
    const ws = this.ws;
    // FFT plans live as long as the workspace: make them before any scratch mark
    for (const p of plans) if (p.method === 'fft') ws.fftPlan(2 * p.block);
    this.lastStats = [];
    for (let hIdx = 0; hIdx < heads; hIdx++) {
      const h = this.heads[hIdx]!;
      const R = h.len;
      const nb = R + L;
      const mark = ws.mark();
      const x = ws.f64(L * Math.max(d, dv));
      const bufK = ws.f64(nb * m);
      const bufV = ws.f64(nb * dv);
      const phiQ = ws.f64(L * m);
      const acc = ws.f64(L * (dv + 1));
      copyHead(kv, hIdx, x);
      this.keyFeaturesRunning(h, x, L, bufK.subarray(R * m));
      copyHead(vv, hIdx, bufV, 0, L, R);
      this.scaleValuesRunning(h, bufV.subarray(R * dv), L);
      // buffer = [ring oldest-first | chunk]
      for (let i = 0; i < R; i++) {
        const slot = (h.start + i) % h.cap;
        bufK.set(h.ringK.subarray(slot * m, slot * m + m), i * m);
        bufV.set(h.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
      }
      copyHead(qv, hIdx, x);
      this.queryFeaturesInto(x, L, phiQ);
      const pass = { kernel: h.kernel, partitions: h.partitions, method: this.method, block: 0, phiK: bufK, v: bufV, phiQ, q0: R, nb, m, dv, far: h.far, acc };
      this.lastStats.push(attendBuffer(pass, plans[hIdx]!, ws));
      const scale = exp2(h.valueExp);
      const o = hIdx * L * dv;
      for (let i = 0; i < L; i++) {
        const den = acc[i * (dv + 1) + dv]!;
        for (let col = 0; col < dv; col++) out[o + i * dv + col] = den > 0 ? finite((acc[i * (dv + 1) + col]! / den) * scale) : 0;
      }
      // the ring keeps the last min(K, nb) rows, linearized from slot 0
      const keep = Math.min(h.K, nb);
      h.ringK.set(bufK.subarray((nb - keep) * m, nb * m), 0);
      h.ringV.set(bufV.subarray((nb - keep) * dv, nb * dv), 0);
      h.start = 0;
      h.len = keep;
      ws.release(mark);
    }
    this.pos += L;
  }

  /**
   * chunk() in dtype 'float32'. Features and values are computed in float64 and rounded to float32 once, into a
   * float32 buffer [ring oldest-first | chunk] (what the ring keeps). The cost model (float32 constants, planPass32)
   * picks the near field: 'direct' runs the float32 A-form (aformRows32) with the far field absorbing the buffer's
   * float32 rows into F (float64); 'fft' runs attention()'s float32 pass (nearfield32.ts: far field, head lags and
   * repairs in float64, FFT channels in float32) over float64 copies of the same rounded rows.
   */
  private chunkChecked32(qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, L: number, out: Float64Array): void {
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = this.config;
    const plans = this.heads.map((h) => planPass32(h.K, this.method, 0, h.len, h.len + L, m, dv, this.backend));
    let scratch = 0;
    this.heads.forEach((h, i) => {
      const nb = h.len + L;
      const p = plans[i]!;
      // the float32 buffer, and for an FFT pass its float64 copy, the pass's scratch and a plan
      scratch = Math.max(scratch, Math.ceil((nb * (m + dv)) / 2) + (p.method === 'fft' ? nb * (m + dv) + p.scratch + p.planFloats + 3 * 8 : 0));
    });
    // x, features (f64); queries (f32); acc (f64); alignment
    scratch += L * Math.max(d, dv, m) + Math.ceil((L * m) / 2) + L * m + L * (dv + 1) + 6 * 8;
    this.prepare(L, scratch);
    const ws = this.ws;
    this.lastStats = [];
    for (let hIdx = 0; hIdx < heads; hIdx++) {
      const h = this.heads[hIdx]!;
      const kernel = h.kernel;
      const R = h.len;
      const nb = R + L;
      const mark = ws.mark();
      const x = ws.f64(L * Math.max(d, dv, m));
      const bufK = ws.f32(nb * m);
      const bufV = ws.f32(nb * dv);
      const phiQ = ws.f64(L * m);
      const phiQ32 = ws.f32(L * m);
      const acc = ws.f64(L * (dv + 1));
      // key features into phiQ (free until the queries), rounded to float32 into the buffer
      copyHead(kv, hIdx, x);
      this.keyFeaturesRunning(h, x, L, phiQ);
      bufK.set(phiQ.subarray(0, L * m), R * m);
      copyHead(vv, hIdx, x);
      this.scaleValuesRunning(h, x, L);
      bufV.set(x.subarray(0, L * dv), R * dv);
      // buffer = [ring oldest-first | chunk]
      for (let i = 0; i < R; i++) {
        const slot = (h.start + i) % h.cap;
        bufK.set(h.ringK.subarray(slot * m, slot * m + m), i * m);
        bufV.set(h.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
      }
      copyHead(qv, hIdx, x);
      this.queryFeaturesInto(x, L, phiQ);
      const K = h.K;
      const plan = plans[hIdx]!;
      if (plan.method === 'fft') {
        const bufK64 = ws.f64(nb * m);
        const bufV64 = ws.f64(nb * dv);
        bufK64.set(bufK);
        bufV64.set(bufV);
        const pass = { kernel, partitions: h.partitions, method: this.method, block: 0, phiK: bufK64, v: bufV64, phiQ, q0: R, nb, m, dv, far: h.far, acc };
        this.lastStats.push(attendBuffer32(pass, plan, ws));
      } else {
        phiQ32.set(phiQ);
        this.direct32(h, bufK, bufV, phiQ, phiQ32, R, nb, acc);
        this.lastStats.push({ method: 'direct', block: 0, repairedRows: 0 });
      }
      const scale = exp2(h.valueExp);
      const o = hIdx * L * dv;
      for (let i = 0; i < L; i++) {
        const den = acc[i * (dv + 1) + dv]!;
        for (let col = 0; col < dv; col++) out[o + i * dv + col] = den > 0 ? finite((acc[i * (dv + 1) + col]! / den) * scale) : 0;
      }
      const keep = Math.min(K, nb);
      h.ringK.set(bufK.subarray((nb - keep) * m, nb * m), 0);
      h.ringV.set(bufV.subarray((nb - keep) * dv, nb * dv), 0);
      h.start = 0;
      h.len = keep;
      ws.release(mark);
    }
    this.pos += L;
  }

  /**
   * The float32 direct pass over a buffer of nb rows (queries from row R): far field first (as attendBuffer does:
   * key row b - K leaves the near field before row b is read; F float64, the query features float64), then the
   * float32 A-form over lags < K. acc: [nb - R, dv + 1], added into.
   */
  private direct32(h: Head, bufK: Float32Array, bufV: Float32Array, phiQ: Float64Array, phiQ32: Float32Array, R: number, nb: number, acc: Float64Array): void {
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
        this.absorb32(h, bufK, (b - K) * m, bufV, (b - K) * dv);
        contract.qOff = (b - R) * m;
        contract.aOff = (b - R) * (dv + 1);
        this.ws.farContract(contract);
      }
      // the step's record again
      contract.phiQ = this.phiQ;
      contract.acc = this.acc;
      contract.aOff = 0;
    }
    this.ws.aformRows32({ c: h.c32, tLo: 0, tHi: Math.min(K, nb), phiK: bufK, v: bufV, phiQ: phiQ32, q0: R, b0: R, b1: nb, m, dv, acc });
  }
}

/** The smallest integer e with 2^e >= e^best (null when best is -Infinity: no representable feature). */
function expAbove(best: number): number | null {
  if (!(best > -Infinity)) return null;
  let exp = Math.ceil(best / LN2);
  if (exp * LN2 < best) exp++;
  return exp;
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

/** A weighted average of finite values is finite; rounding at the very top of the range must not say otherwise. */
function finite(z: number): number {
  return z > Number.MAX_VALUE ? Number.MAX_VALUE : z < -Number.MAX_VALUE ? -Number.MAX_VALUE : z;
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
