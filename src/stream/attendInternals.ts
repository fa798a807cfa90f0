// Shared core of the stream operators (attend, attendChunks, attendGrouped) and of attendAsync: source
// resolution, token stacking, per-token / per-group / per-chunk processing with the exact failure semantics,
// and checkpoints handed to a serial sink queue; plus `coreOperator`, the one Observable wrapper the rx
// operators share (attendAsync uses AttendCore directly).
import ndarray, { type NdArray } from 'ndarray';
import { Observable, type OperatorFunction } from 'rxjs';
import { Decoder } from '../engine/decoder.js';
import type { AttentionConfig } from '../engine/config.js';
import { ConfigError, describe } from '../core/errors.js';
import { saveSnapshot } from '../codec/index.js';

/** One token: q, k: [heads, keyDim]; v: [heads, valueDim]. */
export interface Token {
  q: NdArray;
  k: NdArray;
  v: NdArray;
}

/** The output for one token: its 0-based position in the decoder's stream and z: [heads, valueDim]. */
export interface Attended {
  position: number;
  z: NdArray<Float64Array>;
}

/** L tokens at once: q, k: [heads, L, keyDim]; v: [heads, L, valueDim]. */
export interface ChunkToken {
  q: NdArray;
  k: NdArray;
  v: NdArray;
}

/** The output for one chunk: position of its first token and z: [heads, L, valueDim]. */
export interface AttendedChunk {
  position: number;
  z: NdArray<Float64Array>;
}

/**
 * Where the decoder comes from. A config gives a fresh Decoder per subscription (cold); a Decoder is shared
 * (the caller manages it, e.g. snapshots it after an error); `{ restore }` restores a fresh Decoder from
 * snapshot bytes per subscription (cold), continuing at the snapshot's position.
 */
export type AttendSource = AttentionConfig | Decoder | { restore: Uint8Array };

/** Receives checkpoint bytes and the position (tokens consumed) they were taken at. */
export type CheckpointSinkFn = (bytes: Uint8Array, position: number) => void | Promise<void>;

export interface CheckpointOptions {
  /** take a snapshot every `every` tokens (for chunks/groups: at the first boundary at or past each multiple) */
  every: number;
  /** a function, or a file path written atomically via saveSnapshot of `toeplitz-attention/codec` */
  sink: CheckpointSinkFn | string;
  /** rx operators only: also take a checkpoint (on demand) whenever this emits, at the current boundary */
  trigger?: Observable<unknown>;
}

export interface GroupOptions {
  /** close a group when it holds `count` tokens */
  count?: number;
  /** close a group `timeMs` after its first token arrived (bounds the added latency) */
  timeMs?: number;
}

export interface AttendOptions {
  checkpoint?: CheckpointOptions;
  /** group single tokens into decoder.chunk calls; outputs stay one per token, in order */
  group?: GroupOptions;
}

// ---- snapshots: decoder.snapshot() / Decoder.restore(bytes) and, for file sinks, the codec's atomic
// saveSnapshot(path, decoder).

/** A checkpoint file sink: the decoder's state at the boundary, written atomically. */
function saveToPath(path: string, decoder: Decoder): void | Promise<void> {
  return saveSnapshot(path, decoder) as void | Promise<void>;
}

// ---- sources and options

export function resolveSource(source: AttendSource): Decoder {
  if (source instanceof Decoder) return source;
  if (source !== null && typeof source === 'object' && 'restore' in source) {
    const bytes = (source as { restore: unknown }).restore;
    if (!(bytes instanceof Uint8Array)) throw new ConfigError(`source.restore must be a Uint8Array of snapshot bytes, got ${describe(bytes)}`);
    return Decoder.restore(bytes);
  }
  return new Decoder(source as AttentionConfig);
}

export function checkOptions(options: AttendOptions | undefined): AttendOptions {
  const o = options ?? {};
  if (o === null || typeof o !== 'object') throw new ConfigError(`options must be an object { checkpoint?, group? }, got ${describe(o)}`);
  if (o.checkpoint !== undefined) {
    const { every, sink } = o.checkpoint;
    if (typeof every !== 'number' || !Number.isInteger(every) || every < 1) {
      throw new ConfigError(`checkpoint.every must be an integer >= 1, got ${describe(every)}`);
    }
    if (typeof sink !== 'function' && typeof sink !== 'string') {
      throw new ConfigError(`checkpoint.sink must be a function (bytes, position) => void | Promise<void> or a file path, got ${describe(sink)}`);
    }
    const trigger = o.checkpoint.trigger as unknown;
    if (trigger !== undefined && (trigger === null || typeof (trigger as { subscribe?: unknown }).subscribe !== 'function')) {
      throw new ConfigError(`checkpoint.trigger must be an Observable, got ${describe(trigger)}`);
    }
  }
  if (o.group !== undefined) {
    const { count, timeMs } = o.group;
    if (count !== undefined && (typeof count !== 'number' || !Number.isInteger(count) || count < 1)) {
      throw new ConfigError(`group.count must be an integer >= 1, got ${describe(count)}`);
    }
    if (timeMs !== undefined && (typeof timeMs !== 'number' || !Number.isFinite(timeMs) || timeMs < 0)) {
      throw new ConfigError(`group.timeMs must be a finite number >= 0, got ${describe(timeMs)}`);
    }
    if (count === undefined && timeMs === undefined) throw new ConfigError('group needs count and/or timeMs, got neither');
  }
  return o;
}

// ---- stacking tokens into a chunk

/** Stack tokens ([heads, dim] each) into [heads, L, dim]; null if any token has another shape (then steps report it). */
function stack(tokens: readonly Token[], field: 'q' | 'k' | 'v', heads: number, dim: number): NdArray<Float64Array> | null {
  const L = tokens.length;
  const out = new Float64Array(heads * L * dim);
  for (let i = 0; i < L; i++) {
    const t = tokens[i]![field] as NdArray | undefined;
    if (t === null || typeof t !== 'object' || !Array.isArray(t.shape) || t.shape.length !== 2 || t.shape[0] !== heads || t.shape[1] !== dim) return null;
    if (!(t.data instanceof Float64Array) && !(t.data instanceof Float32Array)) return null;
    const data = t.data as Float64Array | Float32Array;
    const [s0, s1] = t.stride as [number, number];
    // a view reaching outside its data is left to decoder.step to report (return null)
    if (s1 === 1) {
      // rows are contiguous: copy each head's row at once
      for (let h = 0; h < heads; h++) {
        const o = t.offset + h * s0;
        if (!Number.isInteger(o) || o < 0 || o + dim > data.length) return null;
        out.set(data.subarray(o, o + dim), (h * L + i) * dim);
      }
    } else {
      for (let h = 0; h < heads; h++) {
        for (let c = 0; c < dim; c++) {
          const x = data[t.offset + h * s0 + c * s1];
          if (x === undefined) return null;
          out[(h * L + i) * dim + c] = x;
        }
      }
    }
  }
  return ndarray(out, [heads, L, dim]);
}

/** Row i of z: [heads, L, dv] as its own [heads, dv] tensor. */
function rowOf(z: NdArray<Float64Array>, i: number, heads: number, L: number, dv: number): NdArray<Float64Array> {
  const out = new Float64Array(heads * dv);
  for (let h = 0; h < heads; h++) out.set(z.data.subarray((h * L + i) * dv, (h * L + i + 1) * dv), h * dv);
  return ndarray(out, [heads, dv]);
}

// ---- the core

/**
 * One attending session over a decoder. Each method either advances the decoder and returns outputs, or
 * throws the decoder's typed error with the state as it was before the refused token (for groups: the
 * tokens before the refused one are processed and returned via `emit` first, then the error is thrown).
 * Outputs are emitted first; then, if due, a checkpoint is taken synchronously at that boundary and handed
 * to a serial sink queue (a sink that fails errors the stream after the outputs it follows).
 */
export class AttendCore {
  readonly decoder: Decoder;
  private readonly every: number;
  private readonly sinkFn: CheckpointSinkFn | null;
  private readonly sinkPath: string | null;
  private nextCheckpoint: number;
  /** checkpoints waiting for the sink, and whether a sink call is in flight */
  private readonly waiting: { bytes: Uint8Array | null; position: number }[] = [];
  private busy = false;
  private idle: (() => void)[] = [];
  private sinkError: { error: unknown } | null = null;
  /** called when a sink fails (nothing more is delivered after the first failure) */
  onSinkError: ((error: unknown) => void) | null = null;

  constructor(decoder: Decoder, options: AttendOptions) {
    this.decoder = decoder;
    const cp = options.checkpoint;
    this.every = cp?.every ?? 0;
    this.sinkFn = cp !== undefined && typeof cp.sink === 'function' ? cp.sink : null;
    this.sinkPath = cp !== undefined && typeof cp.sink === 'string' ? cp.sink : null;
    this.nextCheckpoint = this.every > 0 ? (Math.floor(decoder.position / this.every) + 1) * this.every : Infinity;
  }

  /** One token -> one output via emit, then a checkpoint if due (throws the typed error; the decoder is unchanged then). */
  step(token: Token, emit: (a: Attended) => void): void {
    if (token === null || typeof token !== 'object') throw new ConfigError(`a token must be an object { q, k, v }, got ${describe(token)}`);
    const position = this.decoder.position;
    const z = this.decoder.step(token.q, token.k, token.v);
    emit({ position, z });
    this.afterAdvance();
  }

  /** A group of single tokens through one decoder.chunk call; outputs one per token via emit, in order. */
  group(tokens: readonly Token[], emit: (a: Attended) => void): void {
    if (tokens.length === 0) return;
    if (tokens.length === 1) {
      this.step(tokens[0]!, emit);
      return;
    }
    const { heads, keyDim: d, valueDim: dv } = this.decoder.config;
    const ok = tokens.every((t) => t !== null && typeof t === 'object');
    const q = ok ? stack(tokens, 'q', heads, d) : null;
    const k = q && stack(tokens, 'k', heads, d);
    const v = k && stack(tokens, 'v', heads, dv);
    let z: NdArray<Float64Array> | null = null;
    if (q && k && v) {
      try {
        z = this.decoder.chunk(q, k, v); // refused chunk = state unchanged; fall back to steps below
      } catch {
        z = null;
      }
    }
    if (z === null) {
      // some token is invalid: step through so outputs before it are emitted and the error names the token
      for (const t of tokens) this.step(t, emit);
      return;
    }
    const L = tokens.length;
    const first = this.decoder.position - L;
    for (let i = 0; i < L; i++) emit({ position: first + i, z: rowOf(z, i, heads, L, dv) });
    this.afterAdvance();
  }

  /** One chunk [heads, L, dim] -> one output [heads, L, dv] via emit, then a checkpoint if due. */
  chunk(c: ChunkToken, emit: (a: AttendedChunk) => void): void {
    if (c === null || typeof c !== 'object') throw new ConfigError(`a chunk must be an object { q, k, v }, got ${describe(c)}`);
    const position = this.decoder.position;
    const z = this.decoder.chunk(c.q, c.k, c.v);
    emit({ position, z });
    this.afterAdvance();
  }

  /** Take a checkpoint now (on demand) regardless of `every`. */
  checkpointNow(): void {
    if (this.sinkFn !== null || this.sinkPath !== null) this.enqueue(this.decoder.position);
  }

  private afterAdvance(): void {
    const pos = this.decoder.position;
    if (pos < this.nextCheckpoint) return;
    this.nextCheckpoint = (Math.floor(pos / this.every) + 1) * this.every;
    if (this.sinkFn !== null || this.sinkPath !== null) this.enqueue(pos);
  }

  /**
   * A checkpoint at the current boundary. When the sink is idle it runs right now, synchronously (a file sink
   * saves the live decoder); otherwise the bytes are taken now and delivered in turn (a file sink then saves
   * a decoder restored from them), so a checkpoint always holds the state at its position.
   */
  private enqueue(position: number): void {
    if (this.sinkError !== null) return;
    const direct = !this.busy && this.waiting.length === 0;
    this.waiting.push({ bytes: direct && this.sinkFn === null ? null : this.decoder.snapshot(), position });
    if (!this.busy) this.pump();
  }

  /** Deliver queued checkpoints one at a time; a sink that returns synchronously is called synchronously. */
  private pump(): void {
    while (this.sinkError === null) {
      const item = this.waiting.shift();
      if (item === undefined) break;
      let result: void | Promise<void>;
      try {
        if (this.sinkFn !== null) result = this.sinkFn(item.bytes!, item.position);
        else result = saveToPath(this.sinkPath!, item.bytes === null ? this.decoder : Decoder.restore(item.bytes));
      } catch (error) {
        this.fail(error);
        break;
      }
      if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
        this.busy = true;
        (result as Promise<void>).then(
          () => {
            this.busy = false;
            this.pump();
          },
          (error: unknown) => {
            this.busy = false;
            this.fail(error);
          },
        );
        return;
      }
    }
    this.waiting.length = 0;
    const idle = this.idle.splice(0);
    for (const cb of idle) cb();
  }

  private fail(error: unknown): void {
    if (this.sinkError !== null) return;
    this.sinkError = { error };
    this.waiting.length = 0;
    this.onSinkError?.(error);
    const idle = this.idle.splice(0);
    for (const cb of idle) cb();
  }

  /** The first sink error, if any. */
  get failed(): { error: unknown } | null {
    return this.sinkError;
  }

  /** True while a checkpoint is being written or waits to be. */
  get pending(): boolean {
    return this.busy || this.waiting.length > 0;
  }

  /** Call cb once every checkpoint handed out so far has been written (or the sink failed): synchronously if idle. */
  whenIdle(cb: () => void): void {
    if (!this.pending || this.sinkError !== null) cb();
    else this.idle.push(cb);
  }

  /** Promise form of whenIdle. */
  drain(): Promise<void> {
    return new Promise((resolve) => this.whenIdle(resolve));
  }

  /** Drop queued checkpoints and callbacks (unsubscribe). A write already in flight finishes on its own. */
  dispose(): void {
    this.waiting.length = 0;
    this.idle.length = 0;
    this.onSinkError = null;
  }
}

// ---- the shared rx wrapper

/** What an operator does with each input, given the core and an emit function; `fail` errors the stream. */
export interface OperatorHooks<I> {
  next(value: I): void;
  /** before completing (e.g. flush a partial group); may emit or throw */
  flush?(): void;
  /** unsubscribe / error / completion: release timers and buffers */
  teardown?(): void;
}

/**
 * Build an operator around an AttendCore created per subscription (a shared Decoder stays shared). Errors
 * thrown by hooks (the decoder's typed errors) error the stream, and no further input reaches the decoder;
 * completion waits for pending checkpoint writes; a sink error errors the stream.
 */
export function coreOperator<I, O>(source: AttendSource, options: AttendOptions | undefined, setup: (core: AttendCore, emit: (out: O) => void, fail: (error: unknown) => void) => OperatorHooks<I>): OperatorFunction<I, O> {
  const opts = checkOptions(options);
  return (input: Observable<I>) =>
    new Observable<O>((subscriber) => {
      let stopped = false;
      let hooks: OperatorHooks<I> | null = null;
      let core: AttendCore;
      const stop = (): void => {
        if (stopped) return;
        stopped = true;
        hooks?.teardown?.();
        core?.dispose();
      };
      const fail = (error: unknown): void => {
        if (stopped) return;
        stop();
        subscriber.error(error);
      };
      try {
        core = new AttendCore(resolveSource(source), opts);
      } catch (error) {
        subscriber.error(error);
        return;
      }
      core.onSinkError = fail;
      const emit = (out: O): void => {
        if (!stopped) subscriber.next(out);
      };
      hooks = setup(core, emit, fail);
      const trigger = opts.checkpoint?.trigger;
      const triggerSub = trigger?.subscribe({
        next: () => {
          if (stopped) return;
          try {
            core.checkpointNow();
          } catch (error) {
            fail(error);
          }
        },
        error: (error: unknown) => fail(error),
      });
      const subscription = input.subscribe({
        next: (value) => {
          if (stopped) return;
          try {
            hooks!.next(value);
          } catch (error) {
            fail(error);
          }
        },
        error: (error: unknown) => fail(error),
        complete: () => {
          if (stopped) return;
          try {
            hooks!.flush?.();
          } catch (error) {
            fail(error);
            return;
          }
          if (stopped) return;
          hooks!.teardown?.();
          core.whenIdle(() => {
            if (stopped) return;
            const failed = core.failed;
            stop();
            if (failed !== null) subscriber.error(failed.error);
            else subscriber.complete();
          });
        },
      });
      return () => {
        stop();
        triggerSub?.unsubscribe();
        subscription.unsubscribe();
      };
    });
}
