// A generation session: one Decoder per layer (bounded state), the last logits, a seeded sampler and the
// UTF-8 bytes of an unfinished character. feed() prefills through Decoder.chunk (or step for one token);
// generate() samples, feeds each token back, and yields UTF-8-safe text pieces; snapshot() / restore
// carry all of it across processes, continuing exactly.
import ndarray, { type NdArray } from 'ndarray';
import { ConfigError, Decoder, StateError, type DecoderOptions } from '../index.js';
import { describe } from '../core/errors.js';
import { ModelError } from './errors.js';
import { createRunState, forward, headsToRows, type AttendFn, type RunState } from './forward.js';
import type { Model } from './model.js';
import { checkTokens } from './tokens.js';
import { MAX_DRAWS, Sampler, checkSamplerOptions, type ResolvedSampler, type SamplerOptions } from './sampler.js';
import { decodeSession, encodeSession } from './snapshot.js';
import { Utf8Pieces } from './utf8.js';

export type SessionOptions = SamplerOptions;

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
  /** the text this token completes: '' inside a multi-byte character, U+FFFD for invalid bytes */
  text: string;
  /** tokens consumed by the session after this one (prompt and generated alike) */
  position: number;
}

export const DEFAULT_CHUNK = 256;
/** generation hands the event loop a turn at least this often (ms), so timers and aborts get through */
const YIELD_EVERY_MS = 16;

interface Restored {
  decoders: Decoder[];
  draws: number;
  pending: Uint8Array;
  last: Float64Array | null;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

export class Session {
  readonly model: Model;
  private readonly decoders: Decoder[];
  private readonly sampler: Sampler;
  private readonly utf8 = new Utf8Pieces();
  /** last: [vocab] logits after the last token fed (what the next token is sampled from) */
  private readonly last: Float64Array;
  private fed = false;
  private busy = false;
  // one-token path: RunState of one row, [heads, dim] views over it, a token buffer
  private readonly one: RunState;
  private readonly qOne: NdArray<Float64Array>;
  private readonly kOne: NdArray<Float64Array>;
  private readonly vOne: NdArray<Float64Array>;
  private readonly zOne: NdArray<Float64Array>;
  private readonly tokenOne = new Uint8Array(1);
  /** chunk path: grown to the largest chunk seen */
  private many: RunState | null = null;
  private readonly attend: AttendFn;

  /** Use model.session(options) or model.restore(bytes). */
  constructor(model: Model, options?: SessionOptions, restored?: Restored) {
    this.model = model;
    const c = model.config;
    const sampling = checkSamplerOptions(options);
    this.sampler = new Sampler(sampling, c.vocab, restored?.draws ?? 0);
    const engine = model.options as DecoderOptions;
    this.decoders = restored?.decoders ?? model.attentionConfigs.map((cfg) => new Decoder(cfg, engine));
    this.last = new Float64Array(c.vocab);
    if (restored?.last) {
      this.last.set(restored.last);
      this.fed = true;
    }
    if (restored) this.utf8.restore(restored.pending);
    const { heads, keyDim: d, valueDim: dv } = c;
    this.one = createRunState(c, 1, model.gemm);
    this.qOne = ndarray(this.one.q, [heads, d]);
    this.kOne = ndarray(this.one.k, [heads, d]);
    this.vOne = ndarray(this.one.v, [heads, dv]);
    this.zOne = ndarray(this.one.z, [heads, dv]);
    this.attend = (l, n, s) => {
      const dec = this.decoders[l]!;
      if (s === this.one) {
        dec.step(this.qOne, this.kOne, this.vOne, this.zOne);
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

  /** Bytes of state carried from token to token: every layer's decoder state and the last logits. */
  get stateBytes(): number {
    return this.decoders.reduce((s, d) => s + d.stateBytes, 0) + this.last.byteLength;
  }

  /** A copy of the logits the next token is sampled from ([vocab]), or null before the first token. */
  lastLogits(): Float64Array | null {
    return this.fed ? this.last.slice() : null;
  }

  private checkIdle(what: string): void {
    if (this.busy) throw new StateError(`${what} is not allowed while a generate() iteration is running on this session; finish or break out of it first`);
  }

  /**
   * Consume tokens (a prompt, or forced tokens); returns their logits [L, vocab] row-major, equal (to
   * rounding) to model.logits over everything fed so far, rows for these tokens. With lastOnly: [vocab].
   */
  feed(tokens: ArrayLike<number>, options: FeedOptions = {}): Float64Array {
    this.checkIdle('feed()');
    const c = this.model.config;
    checkTokens(tokens, c.vocab);
    const chunk = options.chunkSize ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < 1) throw new ConfigError(`chunkSize must be a positive integer, got ${describe(chunk)}`);
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new ConfigError(`onProgress must be a function, got ${describe(options.onProgress)}`);
    return this.feedChecked(tokens, chunk, options.onProgress, options.lastOnly ?? false);
  }

  private feedChecked(tokens: ArrayLike<number>, chunk: number, onProgress: FeedOptions['onProgress'], lastOnly: boolean): Float64Array {
    const c = this.model.config;
    const total = tokens.length;
    if (total === 0) return new Float64Array(0);
    const V = c.vocab;
    const out = new Float64Array(lastOnly ? V : total * V);
    for (let p = 0; p < total; p += chunk) {
      const n = Math.min(chunk, total - p);
      let s: RunState;
      if (n === 1) s = this.one;
      else {
        if (this.many === null || this.many.rows < n) this.many = createRunState(c, n, this.model.gemm);
        s = this.many;
      }
      const rowsOut = lastOnly || n === 1;
      // one row (lastOnly, or a single token): into `last`; else all rows into out
      forward(c, this.model.weights, tokens, p, n, s, this.attend, rowsOut ? this.last : out, rowsOut ? 0 : p * V, lastOnly);
      if (rowsOut) {
        if (!lastOnly) out.set(this.last, p * V);
      } else {
        this.last.set(out.subarray((p + n - 1) * V, (p + n) * V));
      }
      this.fed = true;
      onProgress?.(p + n, total);
    }
    if (lastOnly) out.set(this.last);
    return out;
  }

  /** One sampled token fed back (the per-token path: no allocation in the model code). */
  private feedOne(token: number): void {
    this.tokenOne[0] = token;
    forward(this.model.config, this.model.weights, this.tokenOne, 0, 1, this.one, this.attend, this.last, 0, true);
  }

  /**
   * Generate up to maxTokens tokens after `prompt` (a string is UTF-8 encoded; an empty prompt continues
   * from where the session stands). Each token is sampled from the current logits and fed back before it
   * is yielded, so a snapshot taken between iterations includes it. Bad arguments (and an empty prompt on a
   * session fed nothing) throw at the call; the prompt is fed when iteration starts.
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
    // arguments are checked now, at the call; the work happens as the iterator is consumed
    this.checkIdle('generate()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`generate options must be an object { maxTokens, stop?, signal? }, got ${describe(options)}`);
    const { maxTokens, signal } = options;
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 0) throw new ConfigError(`maxTokens must be an integer >= 0, got ${describe(maxTokens)}`);
    const stops = options.stop === undefined ? [] : typeof options.stop === 'string' ? [options.stop] : Array.from(options.stop);
    for (const s of stops) if (typeof s !== 'string' || s.length === 0) throw new ConfigError(`stop must be a non-empty string or an array of them, got ${describe(s)}`);
    const tokens = typeof prompt === 'string' ? new TextEncoder().encode(prompt) : prompt;
    checkTokens(tokens, this.model.config.vocab, 'prompt');
    if (tokens.length === 0 && !this.fed) throw new StateError('generate() needs a non-empty prompt on a session fed nothing yet (there is no start token to continue from)');
    signal?.throwIfAborted();
    return this.run(tokens, maxTokens, stops, signal);
  }

  private async *run(tokens: ArrayLike<number>, maxTokens: number, stops: string[], signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    this.checkIdle('generate()');
    this.busy = true;
    try {
      if (tokens.length > 0) {
        this.feedChecked(tokens, DEFAULT_CHUNK, undefined, true);
        this.utf8.reset(); // an unfinished character of earlier output can no longer complete
      }
      const longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
      let tail = '';
      let turn = performance.now();
      for (let i = 0; i < maxTokens; i++) {
        if (performance.now() - turn > YIELD_EVERY_MS) {
          await nextTurn();
          turn = performance.now();
        }
        signal?.throwIfAborted();
        const token = this.sampler.sample(this.last);
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
      this.busy = false;
    }
  }

  /** The whole session as bytes: every layer's decoder, the sampler, pending UTF-8 bytes, the last logits. */
  snapshot(): Uint8Array {
    const o = this.sampler.options;
    return encodeSession({
      fingerprint: this.model.fingerprint,
      position: this.position,
      seed: o.seed,
      draws: this.sampler.draws,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      pending: this.utf8.pendingBytes(),
      lastLogits: this.fed ? this.last : new Float64Array(0),
      decoders: this.decoders.map((d) => d.snapshot()),
    });
  }
}

function sameArray(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** model.restore(bytes): every field checked (and the snapshot's model) before the session is built. */
export function restoreSession(model: Model, bytes: Uint8Array): Session {
  const c = model.config;
  const p = decodeSession(bytes, c.vocab, c.layers);
  const mine = model.fingerprint;
  if (!sameArray(p.fingerprint, mine)) {
    const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join('');
    throw new ModelError('wrong-model', `this snapshot belongs to another model (fingerprint ${hex(p.fingerprint)}…, this model's is ${hex(mine)}…)`);
  }
  const bad = (message: string): never => {
    throw new ModelError('snapshot', message);
  };
  if (!Number.isInteger(p.position) || p.position < 0 || p.position > Number.MAX_SAFE_INTEGER) bad(`position must be an integer >= 0, got ${describe(p.position)}`);
  let sampling: ResolvedSampler;
  try {
    sampling = checkSamplerOptions({ seed: p.seed, temperature: p.temperature, topK: p.topK, topP: p.topP });
  } catch (e) {
    return bad(`sampler: ${(e as Error).message}`);
  }
  if (!Number.isInteger(p.draws) || p.draws < 0 || p.draws % 2 !== 0 || p.draws > 2 * p.position || p.draws > MAX_DRAWS) {
    bad(`the sampler's draw count must be an even integer in [0, min(2 x position, ${MAX_DRAWS})] = [0, ${Math.min(2 * p.position, MAX_DRAWS)}], got ${describe(p.draws)}`);
  }
  if ((p.position === 0) !== (p.lastLogits.length === 0)) bad(`last logits must be present exactly when position > 0, got position ${p.position} with ${p.lastLogits.length} logits`);
  if (!new Utf8Pieces().restore(p.pending)) bad(`pending UTF-8 bytes must be the start of one multi-byte character, got [${Array.from(p.pending).join(', ')}]`);
  const decoders = p.decoders.map((b, l) => {
    let dec: Decoder;
    try {
      dec = Decoder.restore(b);
    } catch (e) {
      return bad(`layer ${l}: ${(e as Error).message}`);
    }
    checkLayerDecoder(model, l, dec, p.position);
    return dec;
  });
  return new Session(model, sampling, { decoders, draws: p.draws, pending: p.pending, last: p.lastLogits.length > 0 ? p.lastLogits : null });
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
  if (f.kind !== 'prf' || f.normalize !== 'l2' || f.count !== c.features.count || !sameArray(f.projection, layer.projection)) fail(`its PRF features (kind, count, normalize 'l2', W) differ from the layer's`);
  const K = c.rpe.length;
  for (let h = 0; h < c.heads; h++) {
    const past = r.past[h]!;
    const rate = c.rpe.tail === 'decay' ? layer.rpeDecay![h]! : null; // toeplitz-lm/2: the head's decay tail
    const tailOk = rate === null ? past.tail.kind === 'clip' : past.tail.kind === 'decay' && past.tail.rate === rate;
    if (!tailOk || !sameArray(past.logBias, layer.rpeBias.subarray(h * K, (h + 1) * K))) fail(`head ${h}'s RPE table differs from rpe_bias[${h}] with the ${rate === null ? 'clip tail' : `decay tail ${rate}`}`);
  }
  if (dec.position !== position) fail(`expected position ${position}, got ${dec.position}`);
}
