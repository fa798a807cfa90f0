// A generation session: one Decoder per layer (bounded state), the last logits, a seeded sampler and the
// UTF-8 bytes of an unfinished character. feed() prefills through Decoder.chunk (or step for one token);
// generate() samples, feeds each token back, and yields UTF-8-safe text pieces; snapshot() / restore
// carry all of it across processes, continuing exactly.
import ndarray, { type NdArray } from 'ndarray';
import { ConfigError, Decoder, ResourceError, ShapeError, StateError, type DecoderOptions, type DecoderState } from '../index.js';
import { describe, ModelError } from '../core/errors.js';
import { Rng } from '../math/rng.js';
import { forward, headsToRows, type AttendFn, type RunState } from './forward.js';
import type { Model } from './model.js';
import { copyTokens } from './tokens.js';
import { Sampler, checkSamplerOptions, type ResolvedSampler, type SamplerOptions } from './sampler.js';
import { decodeSession, encodeSession } from './snapshot.js';
import { checkDtypeOption, type DType } from '../engine/dtype.js';
import { Utf8Pieces } from './utf8.js';
import { Utf8Mask } from './utf8Mask.js';
import { sameNumbers } from '../core/arrays.js';

/**
 * Sampling options and the session's dtype: 'float64' (default: the reference, bit for bit what it was) or
 * 'float32': every layer's Decoder is a float32 Decoder (float32 rings and window kernels) and, on WASM, the
 * linear layers' one-row products (generation, single-token feeds) run in float32 (f32 panels x the row rounded to
 * float32, f32x4 sums per depth block, added in float64); multi-row products (chunked prefill) and everything else
 * (norms, SwiGLU, residual stream, logits, sampling) stay float64. On JS only the decoders are float32. The
 * snapshot records the dtype; a restored float32 session continues bit-identically on the same backend.
 */
export type SessionOptions = SamplerOptions & { dtype?: DType };

export interface FeedOptions {
  /** tokens per Decoder.chunk call (default 256): bounds working memory for long prompts */
  chunkSize?: number;
  /** called after each chunk with (tokens done, tokens in this call) */
  onProgress?: (done: number, total: number) => void;
  /** return only the last token's logits [vocab] instead of [L, vocab] (long prompts) */
  lastOnly?: boolean;
}

export interface GenerateOptions {
  /** tokens to generate at most */
  maxTokens: number;
  /** stop after the token whose text completes one of these strings (the string is part of the output) */
  stop?: string | readonly string[];
  /** abort between tokens: the iterator throws signal.reason; tokens yielded so far stay fed */
  signal?: AbortSignal;
}

/** One generated token. */
export interface GeneratedToken {
  /** token id = byte value */
  token: number;
  /**
   * the text this token completes: '' inside a multi-byte character (a character the prompt ended inside
   * completes here, whole); U+FFFD for invalid bytes, which validUtf8 sampling (the default) never draws
   */
  text: string;
  /** tokens consumed by the session after this one (prompt and generated alike) */
  position: number;
}

export const DEFAULT_CHUNK = 256;
/**
 * Tokens the rollback journal holds: a refused call (a forward pass that overflows) puts the session back
 * by restoring the rollback point (every layer's state, taken when the journal is full or a call is larger
 * than it) and replaying the journaled calls since. So a session holds a second copy of its decoder
 * states, and the per-token path pays one state export per JOURNAL_TOKENS tokens, not one per token.
 */
const JOURNAL_TOKENS = 4096;

/** How model.restore treats the backend a snapshot was made on (see RestoreOptions). */
export interface RestoreOptions {
  /**
   * 'exact' (default): continue bit-exactly, so the snapshot's backend must be this model's (a ModelError
   * 'backend' otherwise, saying how to load the model). 'model': continue on this model's backend (and
   * method option), the same computation up to floating-point rounding.
   */
  backend?: 'exact' | 'model';
}
/** generation hands the event loop a turn at least this often (ms), so timers and aborts get through */
const YIELD_EVERY_MS = 16;

interface Restored {
  decoders: Decoder[];
  draws: number;
  /** the generator's state words (v2 snapshot), or null: advance a fresh one by `draws` (v1) */
  rngWords: readonly number[] | null;
  pending: Uint8Array;
  last: Float64Array | null;
  dtype: DType;
}

/** A forward pass produced (or would feed the decoders) a non-finite value: the session is put back. */
function overflow(where: string, cause?: unknown): ModelError {
  const why = cause instanceof Error ? ` (${cause.message})` : '';
  return new ModelError('overflow', `the forward pass overflowed float64 ${where}${why}; the call was refused and the session is unchanged`);
}

function firstNonFinite(a: Float64Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/**
 * Hands the event loop one turn (a macrotask, so timers, I/O and an abort from a setTimeout get through) without
 * the 4 ms clamp browsers put on chained setTimeout(0): setImmediate in Node; elsewhere a MessageChannel of the
 * yielder's own (a message is a task with no clamp; Chromium measured 4.1-4.3 ms idle per yield with setTimeout);
 * setTimeout(0) only where neither exists. The strategy is looked up when the yielder is made (per generate() run).
 */
class Yielder {
  private channel: MessageChannel | null = null;
  private wake: (() => void) | null = null;

  constructor() {
    if (typeof setImmediate !== 'function' && typeof MessageChannel === 'function') {
      this.channel = new MessageChannel();
      this.channel.port1.onmessage = () => {
        const w = this.wake;
        this.wake = null;
        w?.();
      };
    }
  }

  /** One turn of the event loop (one pending at a time: the session's generate() is the only caller). */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      if (typeof setImmediate === 'function' && this.channel === null) setImmediate(resolve);
      else if (this.channel !== null) {
        this.wake = resolve;
        this.channel.port2.postMessage(null);
      } else setTimeout(resolve, 0);
    });
  }

  /** Close the channel (an open port keeps a Node process alive). */
  close(): void {
    if (this.channel === null) return;
    this.channel.port1.onmessage = null;
    this.channel.port1.close();
    this.channel.port2.close();
    this.channel = null;
  }
}

export class Session {
  readonly model: Model;
  /** 'float64' (default) or 'float32' (SessionOptions.dtype) */
  readonly dtype: DType;
  private readonly decoders: Decoder[];
  private readonly sampler: Sampler;
  private readonly utf8 = new Utf8Pieces();
  /** the bytes validUtf8 sampling allows next (recomputed from utf8's pending bytes) */
  private readonly mask = new Utf8Mask();
  /** last: [vocab] logits after the last token fed (what the next token is sampled from) */
  private readonly last: Float64Array;
  private fed = false;
  /** the running generate() iteration (its token), or null when the session is free */
  private busy: object | null = null;
  /** inside feedChecked (an onProgress callback may not feed or generate: the rollback journal records calls in order) */
  private feeding = false;
  /** why the session can no longer be used (a rollback failed), or null */
  private broken: string | null = null;
  // one-token path: RunState of one row, [heads, dim] views over it, a token buffer
  private readonly one: RunState;
  private readonly tokenOne = new Uint8Array(1);
  /** chunk path: grown to the largest chunk seen */
  private many: RunState | null = null;
  private readonly attend: AttendFn;
  // rollback: the point (every layer's state) and the calls since (tokens, and rows per forward call)
  private point: DecoderState[] | null = null;
  private readonly journal = new Uint8Array(JOURNAL_TOKENS);
  private readonly spans = new Int32Array(JOURNAL_TOKENS);
  private journalTokens = 0;
  private journalSpans = 0;
  /** the last logits and `fed` before the current call, and the sampler's generator before its draw */
  private readonly lastBefore: Float64Array;
  private fedBefore = false;
  /** [dim] the residual stream (before the final norm) of the last token fed, and its value before the current call */
  private readonly lastX: Float64Array;
  private readonly lastXBefore: Float64Array;
  private readonly rngBefore = new Rng(0);
  private drawsBefore = 0;

  /** Use model.session(options) or model.restore(bytes). */
  constructor(model: Model, options?: SessionOptions, restored?: Restored) {
    this.model = model;
    const c = model.config;
    const sampling = checkSamplerOptions(options);
    this.dtype = restored?.dtype ?? checkDtypeOption(options?.dtype, 'options.dtype');
    const dtype = this.dtype;
    this.sampler = new Sampler(sampling, c.vocab, restored ? { draws: restored.draws, words: restored.rngWords } : undefined);
    const engine = model.options as DecoderOptions;
    // float64 sessions pass the model's options unchanged (no dtype key: their decoders are what they were)
    this.decoders = restored?.decoders ?? model.attentionConfigs.map((cfg) => new Decoder(cfg, dtype === 'float32' ? { ...engine, dtype } : engine));
    this.last = new Float64Array(c.vocab);
    this.lastBefore = new Float64Array(c.vocab);
    this.lastX = new Float64Array(c.dim);
    this.lastXBefore = new Float64Array(c.dim);
    if (restored?.last) {
      this.last.set(restored.last);
      this.fed = true;
    }
    if (restored) this.utf8.restore(restored.pending);
    const { heads, keyDim: d, valueDim: dv } = c;
    this.one = model.runState(1, dtype);
    this.attend = (l, n, s) => {
      const dec = this.decoders[l]!;
      if (s === this.one) {
        dec.stepRows(s.q, 0, s.k, 0, s.v, 0, s.z, 0); // rows [heads * dim]: no ndarray views per call
        return;
      }
      // rows [n, heads*dim] viewed as [heads, n, dim] through strides
      const q = ndarray(s.q, [heads, n, d], [d, heads * d, 1]);
      const k = ndarray(s.k, [heads, n, d], [d, heads * d, 1]);
      const v = ndarray(s.v, [heads, n, dv], [dv, heads * dv, 1]);
      const z = dec.chunk(q, k, v);
      headsToRows(z.data, z.offset, s.z, heads, n, dv);
    };
  }

  /** Tokens consumed so far (prompt and generated). */
  get position(): number {
    return this.decoders[0]!.position;
  }

  /** The sampling options in force. */
  get sampling(): ResolvedSampler {
    return this.sampler.options;
  }

  /**
   * Change the sampling (temperature, topK, topP) from the next sampled token on; the seed and the
   * generator's position stay. Options left out keep their value. Checked as model.session() checks them.
   */
  setSampling(options: Omit<SamplerOptions, 'seed'>): void {
    this.checkIdle('setSampling()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`sampling options must be an object { temperature?, topK?, topP? }, got ${describe(options)}`);
    if ('seed' in options) throw new ConfigError('the seed of a running session cannot change (it would not continue the same generator); start a new session');
    const now = this.sampler.options;
    const { temperature = now.temperature, topK = now.topK, topP = now.topP } = options;
    this.sampler.retune(checkSamplerOptions({ seed: now.seed, temperature, topK, topP }));
  }

  /**
   * Give the decoders' memory back now (to the model's arena, or their own memories to the collector) rather than
   * when the session is collected. Later calls that need the state are a StateError; snapshot() before it.
   */
  dispose(): void {
    for (const d of this.decoders) d.dispose();
  }

  /** Bytes of state carried from token to token: every layer's decoder state and the last logits. */
  get stateBytes(): number {
    return this.decoders.reduce((s, d) => s + d.stateBytes, 0) + this.last.byteLength;
  }

  /** A copy of the logits the next token is sampled from ([vocab]), or null before the first token. */
  lastLogits(): Float64Array | null {
    return this.fed ? this.last.slice() : null;
  }

  private checkIdle(what: string): void {
    if (this.broken !== null) throw new StateError(`${what} is not allowed: ${this.broken}`);
    if (this.feeding) throw new StateError(`${what} is not allowed inside a feed() call on this session (from its onProgress callback)`);
    if (this.busy) throw new StateError(`${what} is not allowed while a generate() iteration is running on this session; finish or break out of it first`);
  }

  /**
   * Consume tokens (a prompt, or forced tokens); returns their logits [L, vocab] row-major, equal (to
   * rounding) to model.logits over everything fed so far, rows for these tokens. With lastOnly: [vocab].
   * The tokens are copied when checked (later changes to the array, e.g. by onProgress, do not matter).
   * A forward pass that overflows float64 is a ModelError 'overflow' and leaves the session as it was
   * before the call (onProgress may have been called for chunks that were then undone).
   */
  feed(tokens: ArrayLike<number>, options: FeedOptions = {}): Float64Array {
    this.checkIdle('feed()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`feed options must be an object { chunkSize?, onProgress?, lastOnly? }, got ${describe(options)}`);
    const chunk = options.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunkSize must be a positive integer, got ${describe(chunk)}`);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ConfigError(`onProgress must be a function, got ${describe(options.onProgress)}`);
    const own = copyTokens(tokens, this.model.config.vocab);
    const out = this.feedChecked(own, this.model.chunkRows(chunk), options.onProgress, options.lastOnly ?? false);
    if (own.length > 0) this.utf8.resetAfter(own); // output continues after these bytes, not after earlier output
    return out;
  }

  /** Take a rollback point now if the journal cannot record a call of `total` tokens; note what the call may change. */
  private begin(total: number): void {
    if (this.point === null || this.journalTokens + total > JOURNAL_TOKENS) {
      this.point = this.decoders.map((d) => d.exportState());
      this.journalTokens = 0;
      this.journalSpans = 0;
    }
    this.lastBefore.set(this.last);
    this.lastXBefore.set(this.lastX);
    this.fedBefore = this.fed;
  }

  /** A call succeeded: journal its forward calls (or, too large for the journal, drop the point). */
  private commit(tokens: Uint8Array, chunk: number): void {
    const total = tokens.length;
    if (this.journalTokens + total > JOURNAL_TOKENS) {
      this.point = null; // the next call takes a fresh one
      return;
    }
    this.journal.set(tokens, this.journalTokens);
    this.journalTokens += total;
    for (let p = 0; p < total; p += chunk) this.spans[this.journalSpans++] = Math.min(chunk, total - p);
  }

  /**
   * A call failed: every decoder back to the rollback point, the journaled calls replayed (the same forward
   * calls as the first time, so the same state bits), `last` and `fed` back. The replay recomputes with the
   * model's weights: if they were changed after load and the replay fails, the session is unusable
   * (StateError from then on) rather than silently different.
   */
  private rollback(): void {
    const point = this.point!;
    try {
      this.decoders.forEach((d, l) => d.replaceState(point[l]!));
      const c = this.model.config;
      let at = 0;
      for (let i = 0; i < this.journalSpans; i++) {
        const n = this.spans[i]!;
        const st = this.stateFor(n);
        forward(c, this.model.weights, this.journal, at, n, st, this.attend, this.last, 0, true);
        this.keepX(st, n);
        at += n;
      }
      // the replay must land on the very residual stream the last token had: other bits mean the layers
      // changed since (model.weights written after load), and the decoders would silently differ
      if (this.journalSpans > 0 && !sameNumbers(this.lastX, this.lastXBefore)) throw new Error('the replayed journal gave another residual stream than the first time');
    } catch (e) {
      this.broken = `a refused call could not be undone (${(e as Error).message}): were model.weights changed after load?`;
    }
    this.last.set(this.lastBefore);
    this.lastX.set(this.lastXBefore);
    this.fed = this.fedBefore;
  }

  /** lastX <- the residual row of the n-th (last) token of a forward pass over s (a loop: no view per token) */
  private keepX(s: RunState, n: number): void {
    const dim = this.lastX.length;
    const o = (n - 1) * dim;
    for (let j = 0; j < dim; j++) this.lastX[j] = s.x[o + j]!;
  }

  private stateFor(n: number): RunState {
    if (n === 1) return this.one;
    if (this.many === null || this.many.rows < n) this.many = this.model.runState(n, this.dtype);
    return this.many;
  }

  private feedChecked(tokens: Uint8Array, chunk: number, onProgress: FeedOptions['onProgress'], lastOnly: boolean): Float64Array {
    const c = this.model.config;
    const total = tokens.length;
    if (total === 0) return new Float64Array(0);
    const V = c.vocab;
    const out = new Float64Array(lastOnly ? V : total * V);
    this.begin(total);
    this.feeding = true;
    try {
      for (let p = 0; p < total; p += chunk) {
        const n = Math.min(chunk, total - p);
        const s = this.stateFor(n);
        const rowsOut = lastOnly || n === 1;
        // one row (lastOnly, or a single token): into `last`; else all rows into out
        try {
          forward(c, this.model.weights, tokens, p, n, s, this.attend, rowsOut ? this.last : out, rowsOut ? 0 : p * V, lastOnly);
          this.keepX(s, n);
        } catch (e) {
          if (e instanceof ShapeError) throw overflow(`in tokens ${p}..${p + n - 1} of this call`, e);
          throw e;
        }
        const bad = rowsOut ? firstNonFinite(this.last, 0, V) : firstNonFinite(out, p * V, (p + n) * V);
        if (bad >= 0) throw overflow(`in the logits of tokens ${p}..${p + n - 1} of this call`);
        if (rowsOut) {
          if (!lastOnly) out.set(this.last, p * V);
        } else {
          this.last.set(out.subarray((p + n - 1) * V, (p + n) * V));
        }
        this.fed = true;
        onProgress?.(p + n, total);
      }
    } catch (e) {
      this.rollback();
      throw e;
    } finally {
      this.feeding = false;
    }
    this.commit(tokens, chunk);
    if (lastOnly) out.set(this.last);
    return out;
  }

  /** One sampled token fed back (the per-token path: no allocation in the model code but a rollback point per JOURNAL_TOKENS). */
  private feedOne(token: number): void {
    this.tokenOne[0] = token;
    this.begin(1);
    try {
      try {
        forward(this.model.config, this.model.weights, this.tokenOne, 0, 1, this.one, this.attend, this.last, 0, true);
        this.keepX(this.one, 1);
      } catch (e) {
        if (e instanceof ShapeError) throw overflow(`at the sampled token ${token}`, e);
        throw e;
      }
      if (firstNonFinite(this.last, 0, this.last.length) >= 0) throw overflow(`in the logits after the sampled token ${token}`);
    } catch (e) {
      this.rollback();
      this.sampler.restoreFrom(this.rngBefore, this.drawsBefore); // the draw is undone too
      throw e;
    }
    this.commit(this.tokenOne, 1);
  }

  /**
   * Generate up to maxTokens tokens after `prompt` (a string is UTF-8 encoded; an empty prompt continues
   * from where the session stands). Each token is sampled from the current logits and fed back before it
   * is yielded, so a snapshot taken between iterations includes it. Bad arguments (and an empty prompt on a
   * session fed nothing) throw at the call; the prompt is fed when iteration starts.
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
    // arguments are checked now, at the call, and the prompt copied: the work happens as the iterator is consumed
    this.checkIdle('generate()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`generate options must be an object { maxTokens, stop?, signal? }, got ${describe(options)}`);
    const { maxTokens, signal } = options;
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 0) throw new ConfigError(`maxTokens must be an integer >= 0, got ${describe(maxTokens)}`);
    const stop: unknown = options.stop;
    if (stop !== undefined && typeof stop !== 'string' && !Array.isArray(stop)) throw new ConfigError(`stop must be a non-empty string or an array of them, got ${describe(stop)}`);
    const stops: unknown[] = stop === undefined ? [] : typeof stop === 'string' ? [stop] : (stop as unknown[]).slice();
    for (const s of stops) if (typeof s !== 'string' || s.length === 0) throw new ConfigError(`stop must be a non-empty string or an array of them, got ${describe(s)}`);
    if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof (signal as AbortSignal).throwIfAborted !== 'function' || typeof (signal as AbortSignal).aborted !== 'boolean')) {
      throw new ConfigError(`signal must be an AbortSignal, got ${describe(signal)}`);
    }
    if (typeof prompt !== 'string' && (prompt === null || typeof prompt !== 'object')) throw new ShapeError(`prompt must be a string or an array of token ids (bytes 0..255), got ${describe(prompt)}`);
    const tokens = typeof prompt === 'string' ? new TextEncoder().encode(prompt) : copyTokens(prompt, this.model.config.vocab, 'prompt');
    if (tokens.length === 0 && !this.fed) throw new StateError('generate() needs a non-empty prompt on a session fed nothing yet (there is no start token to continue from)');
    signal?.throwIfAborted();
    return this.run(tokens, maxTokens, stops as string[], signal);
  }

  private async *run(tokens: Uint8Array, maxTokens: number, stops: string[], signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    this.checkIdle('generate()');
    // an abort frees the session at once (fromGeneration's unsubscribe): the generator itself finalizes a turn
    // later, and when resumed it stops at signal.throwIfAborted() before touching the state
    const mine = {};
    const release = (): void => {
      if (this.busy === mine) this.busy = null;
    };
    this.busy = mine;
    signal?.addEventListener('abort', release, { once: true });
    let yielder: Yielder | null = null;
    try {
      if (tokens.length > 0) {
        this.feedChecked(tokens, this.model.chunkRows(DEFAULT_CHUNK), undefined, true);
        // an unfinished character of earlier output can no longer complete; one the prompt ends inside can
        this.utf8.resetAfter(tokens);
      }
      const longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
      let tail = '';
      let turn = performance.now();
      for (let i = 0; i < maxTokens; i++) {
        if (performance.now() - turn > YIELD_EVERY_MS) {
          yielder ??= new Yielder();
          await yielder.turn();
          turn = performance.now();
        }
        signal?.throwIfAborted();
        this.drawsBefore = this.sampler.saveTo(this.rngBefore);
        const token = this.sampler.sample(this.last, 0, this.sampler.options.validUtf8 ? this.mask.update(this.utf8) : null);
        this.feedOne(token);
        const text = this.utf8.push(token);
        yield { token, text, position: this.position };
        if (longest > 0 && text.length > 0) {
          tail += text;
          if (stops.some((s) => tail.includes(s))) return;
          tail = longest > 1 ? tail.slice(-(longest - 1)) : ''; // a stop string can span pieces
        }
      }
    } finally {
      signal?.removeEventListener('abort', release);
      release();
      yielder?.close();
    }
  }

  /** The whole session as bytes: every layer's decoder, the sampler, pending UTF-8 bytes, the last logits. */
  snapshot(): Uint8Array {
    if (this.broken !== null) throw new StateError(`snapshot() is not allowed: ${this.broken}`);
    const o = this.sampler.options;
    return encodeSession({
      fingerprint: this.model.fingerprint,
      position: this.position,
      seed: o.seed,
      draws: this.sampler.draws,
      rngWords: this.sampler.stateWords(),
      backend: this.model.backend,
      dtype: this.dtype,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      validUtf8: o.validUtf8,
      pending: this.utf8.pendingBytes(),
      lastLogits: this.fed ? this.last : new Float64Array(0),
      decoders: this.decoders.map((d) => d.snapshot()),
    });
  }
}

/** model.restore(bytes, options): every field checked (and the snapshot's model and backend) before the session is built. */
export function restoreSession(model: Model, bytes: Uint8Array, options: RestoreOptions = {}): Session {
  if (options === null || typeof options !== 'object') throw new ConfigError(`restore options must be an object { backend?: 'exact' | 'model' }, got ${describe(options)}`);
  const policy = options.backend ?? 'exact';
  if (policy !== 'exact' && policy !== 'model') throw new ConfigError(`restore options.backend must be 'exact' or 'model', got ${describe(policy)}`);
  const c = model.config;
  const p = decodeSession(bytes, c.vocab, c.layers);
  const mine = model.fingerprint;
  if (!sameNumbers(p.fingerprint, mine)) {
    const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join('');
    throw new ModelError('wrong-model', `this snapshot belongs to another model (fingerprint ${hex(p.fingerprint)}…, this model's is ${hex(mine)}…)`);
  }
  const bad = (message: string): never => {
    throw new ModelError('snapshot', message);
  };
  if (!Number.isInteger(p.position) || p.position < 0 || p.position > Number.MAX_SAFE_INTEGER) bad(`position must be an integer >= 0, got ${describe(p.position)}`);
  let sampling: ResolvedSampler;
  try {
    sampling = checkSamplerOptions({ seed: p.seed, temperature: p.temperature, topK: p.topK, topP: p.topP, validUtf8: p.validUtf8 });
  } catch (e) {
    return bad(`sampler: ${(e as Error).message}`);
  }
  if (!Number.isInteger(p.draws) || p.draws < 0 || p.draws % 2 !== 0 || p.draws > 2 * p.position || p.draws > Number.MAX_SAFE_INTEGER) {
    bad(`the sampler's draw count must be an even integer in [0, 2 x position] = [0, ${2 * p.position}], got ${describe(p.draws)}`);
  }
  if (p.rngWords !== null) {
    // the stored generator must be the seed's after `draws` words (O(log draws) to check): a crafted state is refused
    const expected = new Rng(p.seed);
    expected.advance(p.draws);
    if (!sameNumbers(expected.getState().words, p.rngWords)) bad(`the sampler's generator state is not seed ${p.seed}'s after ${p.draws} draws`);
  }
  if ((p.position === 0) !== (p.lastLogits.length === 0)) bad(`last logits must be present exactly when position > 0, got position ${p.position} with ${p.lastLogits.length} logits`);
  if (!new Utf8Pieces().restore(p.pending)) bad(`pending UTF-8 bytes must be the start of one multi-byte character, got [${Array.from(p.pending).join(', ')}]`);
  const target = model.backend;
  if (policy === 'exact' && p.backend !== null && p.backend !== target) throw backendMismatch(p.backend, target);
  // a model on an arena restores its sessions' decoders onto it too (the arena is the model's backend)
  const arena = model.options.arena;
  const engine: DecoderOptions = { ...(policy === 'model' ? { method: model.options.method ?? 'auto', backend: target } : {}), ...(arena !== undefined ? { arena } : {}) };
  const decoders = p.decoders.map((b, l) => {
    let dec: Decoder;
    try {
      dec = Decoder.restore(b, engine);
    } catch (e) {
      if (e instanceof ResourceError) throw e; // memory ran out: the bytes are fine, say what ran out
      // a ConfigError here is the decoder's recorded backend, unavailable in this runtime (the bytes are fine)
      if (e instanceof ConfigError) throw new ModelError('backend', `layer ${l}'s decoder was saved on a backend this runtime cannot run (${e.message}); restore with { backend: 'model' } to continue on this model's '${target}' backend (same computation up to rounding)`);
      return bad(`layer ${l}: ${(e as Error).message}`);
    }
    checkLayerDecoder(model, l, dec, p.position);
    if (dec.dtype !== p.dtype) bad(`layer ${l}'s decoder is ${dec.dtype}, the session ${p.dtype}`);
    // v1 records no session backend: the decoders' own is the one the session ran on
    if (policy === 'exact' && dec.backend !== target) throw backendMismatch(dec.backend, target);
    return dec;
  });
  return new Session(model, sampling, { decoders, draws: p.draws, rngWords: p.rngWords, pending: p.pending, last: p.lastLogits.length > 0 ? p.lastLogits : null, dtype: p.dtype });
}

function backendMismatch(saved: string, mine: string): ModelError {
  return new ModelError(
    'backend',
    `the snapshot was made on the '${saved}' backend and this model runs on '${mine}': the continuation would differ in its rounding. ` +
      `Load the model with { backend: '${saved}' } to continue bit-exactly${saved === 'wasm' ? ' (where WebAssembly SIMD is available)' : ''}, or restore with { backend: 'model' } to continue on '${mine}'`,
  );
}

/** A restored decoder must be this layer's attention (sizes, W, RPE tables) at the session's position. */
function checkLayerDecoder(model: Model, l: number, dec: Decoder, position: number): void {
  const c = model.config;
  const r = dec.config;
  const layer = model.weights.layers[l]!;
  const fail = (what: string): never => {
    throw new ModelError('snapshot', `layer ${l}'s decoder does not match the model: ${what}`);
  };
  if (r.heads !== c.heads || r.keyDim !== c.keyDim || r.valueDim !== c.valueDim || !r.causal) {
    fail(`expected causal heads ${c.heads}, keyDim ${c.keyDim}, valueDim ${c.valueDim}, got ${r.causal ? 'causal' : 'bidirectional'} ${r.heads}, ${r.keyDim}, ${r.valueDim}`);
  }
  const f = r.features;
  if (f.kind !== 'prf' || f.normalize !== 'l2' || f.count !== c.features.count || !sameNumbers(f.projection, layer.projection)) fail(`its PRF features (kind, count, normalize 'l2', W) differ from the layer's`);
  const K = c.rpe.length;
  for (let h = 0; h < c.heads; h++) {
    const past = r.past[h]!;
    const rate = c.rpe.tail === 'decay' ? layer.rpeDecay![h]! : null; // toeplitz-lm/2: the head's decay tail
    const tailOk = rate === null ? past.tail.kind === 'clip' : past.tail.kind === 'decay' && past.tail.rate === rate;
    if (!tailOk || !sameNumbers(past.logBias, layer.rpeBias.subarray(h * K, (h + 1) * K))) fail(`head ${h}'s RPE table differs from rpe_bias[${h}] with the ${rate === null ? 'clip tail' : `decay tail ${rate}`}`);
  }
  if (dec.position !== position) fail(`expected position ${position}, got ${dec.position}`);
}
