// A pool of worker threads for the second core (and the ones after it): attention() and DecoderCore.chunk
// split their heads into contiguous groups, one task per group, and each worker runs the library's own code
// on its rows. Heads are independent (a head's output depends only on its own q, k, v rows and RPE), so the
// assembled result equals the single-threaded call bit for bit. A single head (attention() of one head, long
// enough) goes to two workers at once that share each FFT pass's channel convolutions (exchange.ts); they add
// the halves in the order one thread does, so that too equals attention() bit for bit.
//
// Node only (worker_threads): reached from the `toeplitz-attention/threads` entry, never from the root.
// Everything is checked here, on the calling thread, before any work is queued, with the same typed errors
// as the single-threaded calls. Work is queued first in, first out; a pool serves concurrent callers.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import ndarray, { type NdArray } from 'ndarray';
import { checkInputs, checkOptions, type AttentionOptions, type AttentionResult, type DType } from '../engine/attention.js';
import type { AttentionConfig, ResolvedConfig } from '../engine/config.js';
import { DecoderCore } from '../engine/decoder.js';
import type { DecoderState, HeadState } from '../engine/state.js';
import { checkSequence, copyHead, zeros, type CheckedTensor } from '../engine/tensor.js';
import { planPass, type MethodOption, type PassStats } from '../engine/nearfield.js';
import { planPass32 } from '../engine/nearfield32.js';
import { resolveBackend, type BackendName, type BackendOption } from '../backend/index.js';
import { ConfigError, ShapeError, SnapshotError, StateError, ToeplitzAttentionError, describe, type SnapshotErrorCode } from '../core/errors.js';
import { MAX_POSITION } from '../core/limits.js';
import { abortSplit, ABORTED_MESSAGE, controlOf, splitLayout } from './exchange.js';
import { CONFIG_CACHE_SIZE, type AttentionStats, type AttentionTask, type ChunkTask, type GroupConfig, type Reply } from './protocol.js';
import { tsxImport, workerModuleUrl } from './workerModule.js';

export interface PoolOptions {
  /** worker threads (default: os.availableParallelism()); 1 to 256 */
  threads?: number;
  /** Node flags for the workers (default: the process's own, as worker_threads does) */
  workerExecArgv?: string[];
  /**
   * pool.attention of a single head runs on two workers sharing its FFT channels from this sequence length on
   * (default SPLIT_MIN_LENGTH), when a pass of it runs the FFT (the A-form has no channels to share) and the
   * pool has two threads or more. Otherwise one worker runs the head.
   */
  splitMinLength?: number;
}

/**
 * Default PoolOptions.splitMinLength. The cost model keeps a full table on the A-form up to n = 8192 at d = m = 64
 * (WASM); from n = 12288 on the channels are ~86% of the time. Shorter heads forced onto the FFT spend more of it
 * on features and copies, which both workers repeat.
 */
export const SPLIT_MIN_LENGTH = 4096;

/** Some pass of the head runs the FFT (planned as attention() plans it), so there are channels to share. */
function hasFftPass(cfg: ResolvedConfig, n: number, method: MethodOption, block: number, backend: BackendName, dtype: DType): boolean {
  const sides = [cfg.past[0]!, cfg.future[0] ?? null];
  const plan = dtype === 'float32' ? planPass32 : planPass;
  return sides.some((s) => s !== null && plan(s.logBias.length, method, block, 0, n, cfg.featureDim, cfg.valueDim, backend).method === 'fft');
}

/** The result of pool.chunk: the chunk's outputs and the decoder to continue with. */
export interface ChunkResult<D extends DecoderCore> {
  /** z: [heads, L, valueDim] */
  z: NdArray<Float64Array>;
  /** The decoder after the chunk: the decoder passed in, its state replaced in place. */
  decoder: D;
}

const MAX_THREADS = 256;
/** Shared buffers of split calls kept for reuse (one per concurrent split call of the same size is plenty). */
const SHARED_CACHE_COUNT = 2;

const WORKER_URL = workerModuleUrl('worker', import.meta.url);

/** How a worker starts: worker.js itself, or from the sources a bootstrap that registers tsx first (workerModule.ts). */
let start: { url: URL } | { code: string } | undefined;
function workerStart(): { url: URL } | { code: string } {
  if (start !== undefined) return start;
  const code = tsxImport(WORKER_URL);
  start = code === null ? { url: WORKER_URL } : { code: `${code};` };
  return start;
}

/** One worker, the task it runs, and a mirror of its config cache (same keys, same order, same evictions). */
interface Slot {
  worker: Worker;
  ready: Promise<void>;
  /** its module graph is loaded: it takes tasks */
  started: boolean;
  task: Pending | null;
  cached: string[];
}

/** A task without the parts the slot it goes to fills in. */
type TaskBody = Omit<AttentionTask, 'config' | 'id'> | Omit<ChunkTask, 'config' | 'id'>;

/** A queued group task; `task` is completed (config spec or not) by the slot it goes to. */
interface Pending {
  task: TaskBody;
  config: { key: string; spec: AttentionConfig };
  transfer: ArrayBuffer[];
  resolve: (r: Extract<Reply, { ok: true }>) => void;
  reject: (e: unknown) => void;
  /** a half of a split head: the control words to abort its exchanges (so its partner never waits in vain) */
  control?: Int32Array;
}

let nextConfigId = 1;
/** Ids of resolved configs (so a worker resolves each group config once, not per call). */
const configIds = new WeakMap<ResolvedConfig, number>();

function configId(cfg: ResolvedConfig): number {
  let id = configIds.get(cfg);
  if (id === undefined) {
    id = nextConfigId++;
    configIds.set(cfg, id);
  }
  return id;
}

/** The public config of heads [h0, h1): same features, W, causality and dims; the group's RPE specs. */
function groupSpec(spec: AttentionConfig, h0: number, h1: number): AttentionConfig {
  return { ...spec, heads: h1 - h0, rpe: Array.isArray(spec.rpe) ? spec.rpe.slice(h0, h1) : spec.rpe };
}

/** Contiguous head groups [h0, h1), at most `parts`, sizes differing by at most one. */
export function headGroups(heads: number, parts: number): Array<[number, number]> {
  const g = Math.max(1, Math.min(heads, parts));
  const out: Array<[number, number]> = [];
  for (let i = 0, h0 = 0; i < g; i++) {
    const h1 = h0 + Math.floor(heads / g) + (i < heads % g ? 1 : 0);
    out.push([h0, h1]);
    h0 = h1;
  }
  return out;
}

/**
 * Input buffers back from the workers, kept for the next calls' copies: fresh memory costs a page fault per 4 KiB
 * on first touch (here ~15 ms per 16 MiB, ten times the copy itself). At most BUFFER_CACHE_BYTES are kept.
 */
const BUFFER_CACHE_BYTES = 256 * 2 ** 20;
class BufferCache {
  private readonly bySize = new Map<number, ArrayBuffer[]>();
  private bytes = 0;

  /** A Float64Array of `length` entries, recycled when one of that size is kept (contents: garbage). */
  take(length: number): Float64Array<ArrayBuffer> {
    const b = this.bySize.get(length * 8)?.pop();
    if (b === undefined) return new Float64Array(length);
    this.bytes -= b.byteLength;
    return new Float64Array(b);
  }

  give(b: ArrayBuffer): void {
    if (b.byteLength === 0 || this.bytes + b.byteLength > BUFFER_CACHE_BYTES) return;
    let list = this.bySize.get(b.byteLength);
    if (list === undefined) this.bySize.set(b.byteLength, (list = []));
    list.push(b);
    this.bytes += b.byteLength;
  }

  clear(): void {
    this.bySize.clear();
    this.bytes = 0;
  }
}

/** Rows of heads [h0, h1) of a checked [heads, n, dim] view into out: [h1 - h0, n, dim] contiguous (every entry written). */
function copyGroup<T extends Float64Array<ArrayBufferLike>>(t: CheckedTensor, h0: number, h1: number, n: number, dim: number, out: T): T {
  const [s0, s1, s2] = t.stride as [number, number, number];
  const size = n * dim;
  if (size === 0 || ((dim === 1 || s2 === 1) && (n === 1 || s1 === dim))) {
    // each head's rows are one contiguous run of data: a block copy (float32 converts exactly)
    for (let h = h0; h < h1; h++) out.set(t.data.subarray(t.offset + h * s0, t.offset + h * s0 + size), (h - h0) * size);
  } else {
    for (let h = h0; h < h1; h++) copyHead(t, h, out.subarray((h - h0) * size, (h - h0 + 1) * size));
  }
  return out;
}

/** The library's typed error back from a worker (same class, name and message). */
function rebuildError(e: { name: string; message: string; code?: string; stack?: string }): Error {
  let err: Error;
  switch (e.name) {
    case 'ConfigError': err = new ConfigError(e.message); break;
    case 'ShapeError': err = new ShapeError(e.message); break;
    case 'StateError': err = new StateError(e.message); break;
    case 'SnapshotError': {
      const code = e.code as SnapshotErrorCode;
      const prefix = `${code}: `;
      err = new SnapshotError(code, e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message);
      break;
    }
    case 'ToeplitzAttentionError': err = new ToeplitzAttentionError(e.message); break;
    default:
      err = new Error(e.message);
      err.name = e.name;
  }
  if (e.stack !== undefined) err.stack = `${err.name}: ${err.message}\n    (in a pool worker)\n${e.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/**
 * An owner of N worker threads. Reusable across calls and safe to call concurrently: group tasks queue first
 * in, first out, one per idle worker. Idle workers do not keep the process alive; close() ends them.
 */
export class AttentionPool {
  readonly threads: number;
  private readonly execArgv: string[] | undefined;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextTaskId = 1;
  private closing: Promise<void> | null = null;
  /** per decoder, the end of its queued chunk calls: calls on one decoder run one after another */
  private readonly decoderTails = new WeakMap<DecoderCore, Promise<unknown>>();
  private readonly buffers = new BufferCache();
  /** shared buffers of split calls, kept for the next (fresh ones cost page faults); at most SHARED_CACHE_COUNT */
  private readonly shared: SharedArrayBuffer[] = [];
  private readonly splitMinLength: number;
  private splits = 0;

  constructor(options: PoolOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ConfigError(`pool options must be an object { threads?, workerExecArgv? }, got ${describe(options)}`);
    const threads = options.threads ?? availableParallelism();
    if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new ConfigError(`options.threads must be an integer in [1, ${MAX_THREADS}], got ${describe(threads)}`);
    }
    const argv = options.workerExecArgv;
    if (argv !== undefined && (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string'))) {
      throw new ConfigError(`options.workerExecArgv must be an array of strings, got ${describe(argv)}`);
    }
    const splitMin = options.splitMinLength ?? SPLIT_MIN_LENGTH;
    if (typeof splitMin !== 'number' || !Number.isInteger(splitMin) || splitMin < 0) {
      throw new ConfigError(`options.splitMinLength must be a non-negative integer, got ${describe(splitMin)}`);
    }
    this.threads = threads;
    this.splitMinLength = splitMin;
    this.execArgv = argv?.slice();
    for (let i = 0; i < threads; i++) this.slots.push(this.spawn());
  }

  /** Resolves when every worker has loaded the library (calls made before then simply wait in the queue). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /** Thread ids of the live workers (empty once close() has resolved). */
  get threadIds(): number[] {
    return this.slots.map((s) => s.worker.threadId).filter((id) => id >= 0);
  }

  /** Calls of one head run on two workers so far. */
  get splitCount(): number {
    return this.splits;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /**
   * attention() with its heads split over the workers: same arguments, same result bit for bit, as a promise.
   * One head of n >= splitMinLength runs on two workers sharing its channel convolutions (same bits too).
   * The inputs are read (copied) before this returns; options.onStats is called on this thread, in head order.
   */
  attention<D extends DType = 'float64'>(config: AttentionConfig | ResolvedConfig, q: NdArray, k: NdArray, v: NdArray, options?: AttentionOptions<D>): Promise<AttentionResult<D>> {
    try {
      this.checkOpen();
      // the same checks as attention(), in the same order, by its own functions: options, config and tensors, backend
      const { method, block, backend, dtype } = checkOptions(options);
      const { cfg, q: qv, k: kv, v: vv, n } = checkInputs(config, q, k, v);
      const { heads, keyDim: d, valueDim: dv } = cfg;
      const result = (): NdArray<Float64Array | Float32Array> => (dtype === 'float32' ? ndarray(new Float32Array(heads * n * dv), [heads, n, dv]) : zeros([heads, n, dv]));
      if (n === 0) return Promise.resolve(result() as AttentionResult<D>);
      const name = resolveBackend(backend); // refuses 'wasm' where it cannot run, here rather than in every worker
      const onStats = options?.onStats;
      const id = configId(cfg);
      // one head over two workers (either dtype)
      if (heads === 1 && n >= this.splitMinLength && this.slots.length >= 2 && hasFftPass(cfg, n, method, block, name, dtype)) {
        return this.attentionSplit(cfg, id, qv, kv, vv, n, { method, block, backend, dtype }, onStats) as Promise<AttentionResult<D>>;
      }
      const out = result();
      const parts = headGroups(heads, this.threads).map(([h0, h1]) => {
        const qg = this.copyGroup(qv, h0, h1, n, d);
        const kg = this.copyGroup(kv, h0, h1, n, d);
        const vg = this.copyGroup(vv, h0, h1, n, dv);
        return this.submit(
          { kind: 'attention', n, q: qg, k: kg, v: vg, method, backend, block, dtype, stats: onStats !== undefined },
          { key: `${id}:${h0}-${h1}`, spec: groupSpec(cfg.spec, h0, h1) },
          [qg.buffer, kg.buffer, vg.buffer],
        ).then((r) => {
          out.data.set(r.z, h0 * n * dv); // as each group arrives, while others still run
          return { h0, r };
        });
      });
      return Promise.all(parts).then((done) => {
        if (onStats !== undefined) for (const { h0, r } of done) for (const s of r.stats as AttentionStats[]) onStats({ ...s, head: s.head + h0 });
        return out as AttentionResult<D>;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * decoder.chunk(q, k, v) with its heads split over the workers: q, k: [heads, L, keyDim]; v: [heads, L, valueDim].
   * Resolves to the outputs (equal to decoder.chunk's bit for bit) and the decoder holding the state after the
   * chunk (equal to decoder.chunk's): continue with `result.decoder`.
   *
   * That is the decoder passed in, updated in place (DecoderCore.replaceState): calls on one decoder run in call
   * order, each from the state the one before left, and a decoder that moves while its call runs (step or chunk
   * on this thread) is refused with a StateError rather than overwritten.
   *
   * Inputs are read before this returns, and so is the decoder's state unless calls on it are still queued.
   */
  chunk<D extends DecoderCore>(decoder: D, q: NdArray, k: NdArray, v: NdArray): Promise<ChunkResult<D>> {
    try {
      this.checkOpen();
      if (!(decoder instanceof DecoderCore)) throw new ConfigError(`decoder must be a Decoder or DecoderCore, got ${describe(decoder)}`);
      const cfg = decoder.config;
      const { heads, keyDim: d, valueDim: dv } = cfg;
      // the same checks as chunk(), in the same order
      const { q: qv, k: kv, v: vv, n: L } = checkSequence(cfg, 'L', q, k, v);
      const groups = headGroups(heads, this.threads).map(([h0, h1]) => ({ h0, h1, q: this.copyGroup(qv, h0, h1, L, d), k: this.copyGroup(kv, h0, h1, L, d), v: this.copyGroup(vv, h0, h1, L, dv) }));
      // the first call on a decoder takes its state now; later ones when the calls before them are done
      const before = this.decoderTails.get(decoder);
      const run = before === undefined ? this.runChunk(decoder, groups, L) : before.then(() => this.runChunk(decoder, groups, L));
      const tail = run.then(
        () => undefined,
        () => undefined,
      );
      this.decoderTails.set(decoder, tail);
      void tail.then(() => {
        if (this.decoderTails.get(decoder) === tail) this.decoderTails.delete(decoder);
      });
      return run;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private async runChunk<D extends DecoderCore>(decoder: D, groups: Array<{ h0: number; h1: number; q: Float64Array<ArrayBuffer>; k: Float64Array<ArrayBuffer>; v: Float64Array<ArrayBuffer> }>, L: number): Promise<ChunkResult<D>> {
    this.checkOpen();
    const cfg = decoder.config;
    const { heads, valueDim: dv } = cfg;
    const start = decoder.position;
    if (start + L > MAX_POSITION) throw new StateError(`the decoder is at position ${start}; ${L} more tokens would pass the largest supported position ${MAX_POSITION}`);
    const z = zeros([heads, L, dv]);
    if (L === 0) return { z, decoder };
    const state = decoder.exportState();
    const id = configId(cfg);
    const done = await Promise.all(
      groups.map(({ h0, h1, q, k, v }) => {
        const sub: DecoderState = { position: state.position, method: state.method, backend: state.backend, ...(state.dtype !== undefined ? { dtype: state.dtype } : {}), heads: state.heads.slice(h0, h1) };
        const transfer: ArrayBuffer[] = [q.buffer, k.buffer, v.buffer];
        for (const h of sub.heads) transfer.push(h.ringK.buffer as ArrayBuffer, h.ringV.buffer as ArrayBuffer, h.farSum.buffer as ArrayBuffer, h.farComp.buffer as ArrayBuffer);
        return this.submit({ kind: 'chunk', L, state: sub, q, k, v }, { key: `${id}:${h0}-${h1}`, spec: groupSpec(cfg.spec, h0, h1) }, transfer).then((r) => {
          z.data.set(r.z, h0 * L * dv);
          return { r };
        });
      }),
    );
    const merged: HeadState[] = [];
    const stats: PassStats[] = [];
    for (const { r } of done) {
      merged.push(...r.state!.heads);
      stats.push(...(r.stats as PassStats[]));
    }
    const next: DecoderState = { position: start + L, method: state.method, backend: state.backend, ...(state.dtype !== undefined ? { dtype: state.dtype } : {}), heads: merged };
    if (decoder.position !== start) {
      throw new StateError(`the decoder moved from position ${start} to ${decoder.position} while pool.chunk ran; its state was left as it is`);
    }
    decoder.replaceState(next);
    decoder.lastStats = stats;
    return { z, decoder };
  }

  /**
   * One head on two workers: the same call (config, inputs, options) as two tasks sharing every FFT pass's
   * channels through one shared buffer (exchange.ts); half 0's result is attention()'s.
   */
  private attentionSplit(
    cfg: ResolvedConfig, id: number, qv: CheckedTensor, kv: CheckedTensor, vv: CheckedTensor, n: number,
    options: { method: MethodOption; block: number; backend: BackendOption; dtype: DType }, onStats: AttentionOptions['onStats'],
  ): Promise<NdArray<Float64Array | Float32Array>> {
    const { keyDim: d, valueDim: dv } = cfg;
    this.splits++;
    const layout = splitLayout(n, d, dv, cfg.featureDim, cfg.future[0] ? 2 : 1);
    const shared = this.takeShared(layout.bytes);
    const control = controlOf(shared);
    control.fill(0);
    // the head's inputs once, read by both workers: q, k: [n, keyDim]; v: [n, valueDim]
    const q = copyGroup(qv, 0, 1, n, d, new Float64Array(shared, layout.q, n * d));
    const k = copyGroup(kv, 0, 1, n, d, new Float64Array(shared, layout.k, n * d));
    const v = copyGroup(vv, 0, 1, n, dv, new Float64Array(shared, layout.v, n * dv));
    const config = { key: `${id}:0-1`, spec: groupSpec(cfg.spec, 0, 1) };
    const task = (half: 0 | 1) => ({ kind: 'attention' as const, n, q, k, v, ...options, stats: half === 0 && onStats !== undefined, split: { half, shared, layout } });
    // half 1 queued first, half 0 right after it (first in, first out): when one half starts and waits for the
    // other (features, channels), the other is running, done, or next in line for the next idle worker (never
    // stuck behind a task that waits in turn)
    const halves = [this.submit(task(1), config, [], control), this.submit(task(0), config, [], control)];
    return Promise.allSettled(halves).then(([b, a]) => {
      if (this.shared.length < SHARED_CACHE_COUNT && this.closing === null) this.shared.push(shared);
      if (a!.status === 'rejected' || b!.status === 'rejected') {
        // the cause, not the partner that gave up because of it
        const errors = [a!, b!].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        throw errors.find((e) => !(e instanceof Error && e.message === ABORTED_MESSAGE)) ?? errors[0];
      }
      const r = a!.value;
      if (onStats !== undefined) for (const s of r.stats as AttentionStats[]) onStats(s);
      return ndarray(r.z as Float64Array<ArrayBuffer> | Float32Array<ArrayBuffer>, [1, n, dv]);
    });
  }

  private takeShared(bytes: number): SharedArrayBuffer {
    const i = this.shared.findIndex((b) => b.byteLength === bytes);
    return i >= 0 ? this.shared.splice(i, 1)[0]! : new SharedArrayBuffer(bytes);
  }

  /**
   * End the workers. Calls still queued or running reject with a StateError; calls made afterwards too.
   * Resolves when every worker has exited.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      const err = () => new StateError('the attention pool was closed before this call finished');
      for (const p of this.queue.splice(0)) p.reject(err());
      this.buffers.clear();
      this.shared.length = 0;
      this.closing = Promise.all(
        this.slots.map((s) => {
          const t = s.task;
          s.task = null;
          if (t?.control !== undefined) abortSplit(t.control); // a half waiting in Atomics.wait returns, so terminate() ends it
          t?.reject(err());
          return s.worker.terminate();
        }),
      ).then(() => undefined);
    }
    return this.closing;
  }

  private copyGroup(t: CheckedTensor, h0: number, h1: number, n: number, dim: number): Float64Array<ArrayBuffer> {
    return copyGroup(t, h0, h1, n, dim, this.buffers.take((h1 - h0) * n * dim));
  }

  private checkOpen(): void {
    if (this.closing !== null) throw new StateError('the attention pool is closed; create a new one with createPool()');
  }

  private spawn(): Slot {
    const how = workerStart();
    const options = this.execArgv === undefined ? {} : { execArgv: this.execArgv };
    const worker = 'code' in how ? new Worker(how.code, { ...options, eval: true }) : new Worker(how.url, options);
    let readyResolve!: () => void;
    let readyReject!: (e: unknown) => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    ready.catch(() => undefined); // observed through ready() or the tasks
    const slot: Slot = { worker, ready, started: false, task: null, cached: [] };
    worker.on('message', (msg: Reply | { ready: true }) => {
      if ('ready' in msg) {
        slot.started = true;
        readyResolve();
        this.pump();
        return;
      }
      for (const b of msg.recycle) this.buffers.give(b);
      const p = slot.task;
      slot.task = null;
      if (p === null) return; // its call was rejected by close()
      if (msg.ok) p.resolve(msg);
      else p.reject(rebuildError(msg.error));
      this.pump();
    });
    worker.on('error', (e) => {
      // an uncaught error inside the worker (e.g. its module failed to load): 'exit' follows
      if (!slot.started) readyReject(e);
      const p = slot.task;
      slot.task = null;
      if (p?.control !== undefined) abortSplit(p.control);
      p?.reject(e);
    });
    worker.on('exit', (code) => {
      if (this.closing !== null) return;
      const p = slot.task;
      slot.task = null;
      if (p?.control !== undefined) abortSplit(p.control);
      p?.reject(new Error(`toeplitz-attention/threads: a pool worker exited (code ${code}) while running a task`));
      if (!slot.started) {
        // the worker cannot start (a bad execArgv, a missing loader): fail what waits instead of respawning forever
        readyReject(new Error(`toeplitz-attention/threads: a pool worker exited (code ${code}) before it was ready`));
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        if (this.slots.length === 0) for (const q of this.queue.splice(0)) q.reject(new Error('toeplitz-attention/threads: no pool worker could start'));
        // one worker cannot run both halves of a split head at once: they give up rather than wait forever
        if (this.slots.length < 2) for (const t of [...this.queue, ...this.slots.map((s) => s.task)]) if (t?.control !== undefined) abortSplit(t.control);
        return;
      }
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = this.spawn();
      this.pump();
    });
    return slot;
  }

  private submit(task: Pending['task'], config: Pending['config'], transfer: ArrayBuffer[], control?: Int32Array): Promise<Extract<Reply, { ok: true }>> {
    return new Promise((resolve, reject) => {
      if (this.slots.length === 0) {
        reject(new Error('toeplitz-attention/threads: no pool worker could start'));
        return;
      }
      this.queue.push({ task, config, transfer, resolve, reject, ...(control === undefined ? {} : { control }) });
      this.pump();
    });
  }

  /** Hand queued tasks to idle, started workers (preferring one that has the task's config cached). */
  private pump(): void {
    while (this.queue.length > 0 && this.closing === null) {
      const idle = this.slots.filter((s) => s.task === null && s.started);
      if (idle.length === 0) return;
      const p = this.queue.shift()!;
      const slot = idle.find((s) => s.cached.includes(p.config.key)) ?? idle[0]!;
      const has = slot.cached.includes(p.config.key);
      // mirror the worker's LRU: the key moves to the back, the front falls off past the limit
      if (has) slot.cached.splice(slot.cached.indexOf(p.config.key), 1);
      slot.cached.push(p.config.key);
      if (slot.cached.length > CONFIG_CACHE_SIZE) slot.cached.shift();
      const config: GroupConfig = has ? { key: p.config.key } : p.config;
      slot.task = p;
      slot.worker.ref();
      try {
        slot.worker.postMessage({ ...p.task, config, id: this.nextTaskId++ }, p.transfer);
      } catch (e) {
        slot.task = null;
        slot.cached = [];
        p.reject(e);
      }
    }
    // idle workers must not keep the process alive; starting ones must while anything waits for them
    for (const s of this.slots) if (s.task === null && s.started && this.queue.length === 0) s.worker.unref();
  }
}

/** A pool of `threads` workers (default: os.availableParallelism()). */
export function createPool(options?: PoolOptions): AttentionPool {
  return new AttentionPool(options);
}
