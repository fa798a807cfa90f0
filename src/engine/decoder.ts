// The stateful causal decoder: token by token (step) or chunk by chunk (chunk), equal to whole-sequence
// attention. State per head: a ring of the last K (phi(k), v) pairs (the near field) and the far-field
// feature state F (keys older than K, collapsed by the tail's constant or geometric weight), so memory is
// O(K (m + dv) + m dv) whatever the position.
import type { NdArray } from 'ndarray';
import ndarray from 'ndarray';
import { resolveConfig, type AttentionConfig, type ResolvedConfig } from './config.js';
import { ConfigError, StateError, describe } from '../core/errors.js';
import { checkTensor, copyHead, type CheckedTensor } from './tensor.js';
import { attendBuffer, finalizeRows, type MethodOption, type PassStats } from './nearfield.js';
import { prfLogits, queryFeatures, deterministicFeatures } from '../math/features.js';
import { kernelMaxLog, shiftKernel, type ShiftedKernel } from '../math/kernel.js';
import { createFarState, farAbsorb, farContract, scaleFar, type FarState } from '../math/farfield.js';
import { aformRing } from '../math/aform.js';
import { encodeSnapshot, decodeSnapshot } from '../codec/snapshot.js';

export interface DecoderOptions {
  /** near-field method for chunks: 'auto' (cost model), 'fft' or 'direct'. Steps always use the A-form. */
  method?: MethodOption;
}

/** Per-head mutable state; plain typed arrays. */
export interface HeadState {
  /** ringK: [cap, m] phi(k) of the last `len` keys, shifted by 2^-keyExp; slots oldest-first from `start` */
  ringK: Float64Array;
  /** ringV: [cap, dv] */
  ringV: Float64Array;
  /** far-field state F: [m, dv + 1] and its compensation */
  far: FarState;
  /** key logits are shifted by keyExp * ln 2 (a power of two, so moving it rescales the state exactly) */
  keyExp: number;
}

/** The decoder's whole mutable state (shared ring indices; one HeadState per head). */
export interface DecoderState {
  position: number;
  ringStart: number;
  ringLen: number;
  ringCap: number;
  heads: HeadState[];
}

const LN2 = Math.LN2;
const NO_SHIFT = -1e308; // keyExp before the first key

export class Decoder {
  readonly config: ResolvedConfig;
  private readonly method: MethodOption;
  private readonly kernels: ShiftedKernel[];
  /** K per head: the near-field window (table length) */
  private readonly window: number;
  private state: DecoderState;
  // per-token scratch, reused (no allocation per token)
  private readonly x: Float64Array;
  private readonly phiQ: Float64Array;
  private readonly phiK: Float64Array;
  private readonly acc: Float64Array;
  lastStats: PassStats[] = [];

  constructor(config: AttentionConfig | ResolvedConfig, options: DecoderOptions = {}) {
    const cfg = 'featureDim' in config ? (config as ResolvedConfig) : resolveConfig(config as AttentionConfig);
    if (!cfg.causal) throw new StateError(`Decoder needs a causal config (causal: true), got causal: false; use attention() for bidirectional sequences`);
    const method = options.method ?? 'auto';
    if (method !== 'auto' && method !== 'fft' && method !== 'direct') {
      throw new ConfigError(`options.method must be 'auto', 'fft' or 'direct', got ${describe(method)}`);
    }
    this.config = cfg;
    this.method = method;
    const K = cfg.past[0]!.logBias.length;
    for (let h = 1; h < cfg.heads; h++) {
      if (cfg.past[h]!.logBias.length !== K) {
        throw new ConfigError(`Decoder needs the same table length K in every head (one ring), got ${K} in head 0 and ${cfg.past[h]!.logBias.length} in head ${h}`);
      }
    }
    this.window = K;
    this.kernels = cfg.past.map((p) => shiftKernel(p, Math.max(kernelMaxLog(p), -1e300)));
    const { keyDim: d, valueDim: dv, featureDim: m } = cfg;
    this.x = new Float64Array(Math.max(d, dv));
    this.phiQ = new Float64Array(m);
    this.phiK = new Float64Array(m);
    this.acc = new Float64Array(dv + 1);
    this.state = this.emptyState();
  }

  private emptyState(): DecoderState {
    const { heads, valueDim: dv, featureDim: m } = this.config;
    const cap = Math.min(this.window, 64);
    return {
      position: 0,
      ringStart: 0,
      ringLen: 0,
      ringCap: cap,
      heads: Array.from({ length: heads }, () => ({
        ringK: new Float64Array(cap * m),
        ringV: new Float64Array(cap * dv),
        far: createFarState(m, dv),
        keyExp: NO_SHIFT,
      })),
    };
  }

  /** Tokens consumed so far. */
  get position(): number {
    return this.state.position;
  }

  /** Near-field window K (the RPE table length). */
  get windowSize(): number {
    return this.window;
  }

  /** Bytes held by the state arrays (ring at its capacity, far-field sums and compensations). */
  get stateBytes(): number {
    const { valueDim: dv, featureDim: m } = this.config;
    const perHead = this.state.ringCap * (m + dv) * 8 + 2 * m * (dv + 1) * 8 + 8;
    return this.config.heads * perHead + 4 * 8;
  }

  /** Forget every token (the config and W stay). */
  reset(): void {
    this.state = this.emptyState();
  }

  /** The mutable state, for the snapshot codec. Do not modify. */
  get internalState(): DecoderState {
    return this.state;
  }

  /** Replace the state (snapshot restore); the codec validated sizes against the config. */
  setInternalState(state: DecoderState): void {
    this.state = state;
  }

  /** The whole state and config as versioned snapshot bytes (see FORMAT.md); deterministic. */
  snapshot(): Uint8Array {
    return encodeSnapshot(this);
  }

  /** A Decoder from snapshot bytes, continuing bit-identically; refuses bad bytes with a SnapshotError. */
  static restore(bytes: Uint8Array, options: DecoderOptions = {}): Decoder {
    return decodeSnapshot(bytes, options);
  }

  /** Grow the ring (doubling, up to K) so `need` entries fit; linearizes it oldest-first. */
  private ensureCapacity(need: number): void {
    const s = this.state;
    if (need <= s.ringCap) return;
    const { valueDim: dv, featureDim: m } = this.config;
    let cap = s.ringCap;
    while (cap < need) cap *= 2;
    cap = Math.min(cap, this.window);
    for (const hs of s.heads) {
      const k = new Float64Array(cap * m);
      const v = new Float64Array(cap * dv);
      for (let i = 0; i < s.ringLen; i++) {
        const slot = (s.ringStart + i) % s.ringCap;
        k.set(hs.ringK.subarray(slot * m, slot * m + m), i * m);
        v.set(hs.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
      }
      hs.ringK = k;
      hs.ringV = v;
    }
    s.ringStart = 0;
    s.ringCap = cap;
  }

  /** Key features of rows [0, n) of x into out with the head's running shift, rescaling the state exactly first. */
  private keyFeaturesRunning(hs: HeadState, x: Float64Array, n: number, out: Float64Array): void {
    const f = this.config.features;
    if (f.kind !== 'prf') return deterministicFeatures(f.kind, x, n, this.config.keyDim, out);
    const m = f.count;
    const best = prfLogits(f.projection, m, this.config.keyDim, f.normalize, x, n, out);
    if (best > hs.keyExp * LN2) {
      const exp = Math.ceil(best / LN2);
      if (hs.keyExp !== NO_SHIFT) this.rescaleHead(hs, 2 ** (hs.keyExp - exp));
      hs.keyExp = exp;
    }
    const shift = hs.keyExp * LN2;
    for (let i = 0; i < n * m; i++) out[i] = Math.exp(out[i]! - shift);
  }

  /** Multiply the head's key-side state by a power of two (exact unless it underflows). */
  private rescaleHead(hs: HeadState, factor: number): void {
    const { valueDim: dv, featureDim: m } = this.config;
    const s = this.state;
    for (let i = 0; i < s.ringLen; i++) {
      const o = ((s.ringStart + i) % s.ringCap) * m;
      for (let r = 0; r < m; r++) hs.ringK[o + r] = hs.ringK[o + r]! * factor;
    }
    scaleFar(hs.far, factor, m, dv);
  }

  /** One token: q, k: [heads, keyDim]; v: [heads, valueDim] -> z: [heads, valueDim]. */
  step(q: NdArray, k: NdArray, v: NdArray, out?: NdArray<Float64Array>): NdArray<Float64Array> {
    const cfg = this.config;
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
    const qv = checkTensor('q', q, [heads, d], `[heads=${heads}, keyDim=${d}]`);
    const kv = checkTensor('k', k, [heads, d], `[heads=${heads}, keyDim=${d}]`);
    const vv = checkTensor('v', v, [heads, dv], `[heads=${heads}, valueDim=${dv}]`);
    if (out !== undefined && (!(out.data instanceof Float64Array) || out.data.length < heads * dv)) {
      throw new StateError(`out must be a Float64Array-backed ndarray of shape [${heads}, ${dv}], got ${describe(out.data)}`);
    }
    const z = out ?? ndarray(new Float64Array(heads * dv), [heads, dv]);
    const s = this.state;
    const K = this.window;
    const full = s.ringLen === K;
    if (!full) this.ensureCapacity(s.ringLen + 1);
    const cap = s.ringCap;
    const slot = full ? s.ringStart : (s.ringStart + s.ringLen) % cap;
    const { x, phiQ, phiK, acc } = this;
    for (let h = 0; h < heads; h++) {
      const hs = s.heads[h]!;
      const kernel = this.kernels[h]!;
      copyHead(kv, h, x);
      this.keyFeaturesRunning(hs, x, 1, phiK);
      // the oldest key leaves the near field: fold it into F (F_i = gamma (F_{i-1} + U_{i-K}))
      if (full && kernel.hasFar) farAbsorb(hs.far, kernel.gamma, hs.ringK, slot * m, hs.ringV, slot * dv, m, dv);
      hs.ringK.set(phiK.subarray(0, m), slot * m);
      copyHead(vv, h, x);
      hs.ringV.set(x.subarray(0, dv), slot * dv);
      copyHead(qv, h, x);
      queryFeatures(cfg.features, d, x, 1, phiQ);
      acc.fill(0);
      const start = full ? (s.ringStart + 1) % cap : s.ringStart;
      const len = full ? K : s.ringLen + 1;
      aformRing(kernel.near, hs.ringK, hs.ringV, start, len, cap, phiQ, 0, m, dv, acc, 0);
      if (kernel.hasFar) farContract(hs.far, kernel.cFar, phiQ, 0, m, dv, acc, 0);
      finalizeRows(acc, 1, dv, z.data, z.offset + h * dv);
    }
    if (full) s.ringStart = (s.ringStart + 1) % cap;
    else s.ringLen++;
    s.position++;
    return z;
  }

  /** L tokens: q, k: [heads, L, keyDim]; v: [heads, L, valueDim] -> z: [heads, L, valueDim]. */
  chunk(q: NdArray, k: NdArray, v: NdArray): NdArray<Float64Array> {
    const cfg = this.config;
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
    const qv = checkTensor('q', q, [heads, 'L', d], `[heads=${heads}, L, keyDim=${d}]`);
    const L = qv.shape[1]!;
    const kv = checkTensor('k', k, [heads, L, d], `[heads=${heads}, L=${L}, keyDim=${d}]`);
    const vv = checkTensor('v', v, [heads, L, dv], `[heads=${heads}, L=${L}, valueDim=${dv}]`);
    const z = ndarray(new Float64Array(heads * L * dv), [heads, L, dv]);
    if (L === 0) return z;
    this.chunkChecked(qv, kv, vv, L, z.data);
    return z;
  }

  private chunkChecked(qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, L: number, out: Float64Array): void {
    const cfg = this.config;
    const { heads, keyDim: d, valueDim: dv, featureDim: m } = cfg;
    const s = this.state;
    const K = this.window;
    const R = s.ringLen;
    const nb = R + L;
    const x = new Float64Array(L * Math.max(d, dv));
    const bufK = new Float64Array(nb * m);
    const bufV = new Float64Array(nb * dv);
    const phiQ = new Float64Array(L * m);
    const acc = new Float64Array(L * (dv + 1));
    const keep = Math.min(K, nb);
    this.ensureCapacity(keep);
    const cap = s.ringCap;
    this.lastStats = [];
    for (let h = 0; h < heads; h++) {
      const hs = s.heads[h]!;
      copyHead(kv, h, x);
      this.keyFeaturesRunning(hs, x, L, bufK.subarray(R * m));
      // buffer = [ring oldest-first | chunk]
      for (let i = 0; i < R; i++) {
        const slot = (s.ringStart + i) % cap;
        bufK.set(hs.ringK.subarray(slot * m, slot * m + m), i * m);
        bufV.set(hs.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
      }
      copyHead(vv, h, bufV, 0, L, R);
      copyHead(qv, h, x);
      queryFeatures(cfg.features, d, x, L, phiQ);
      acc.fill(0);
      this.lastStats.push(attendBuffer(this.kernels[h]!, this.method, bufK, bufV, phiQ, R, nb, m, dv, hs.far, acc));
      finalizeRows(acc, L, dv, out, h * L * dv);
      // the ring keeps the last min(K, nb) rows, linearized from slot 0
      hs.ringK.set(bufK.subarray((nb - keep) * m, nb * m), 0);
      hs.ringV.set(bufV.subarray((nb - keep) * dv, nb * dv), 0);
    }
    s.ringStart = 0;
    s.ringLen = keep;
    s.position += L;
  }
}
