// A durable session (DESIGN section 11): a model session whose inputs (creation options, fed tokens,
// option changes, generate calls with their limits, early ends) are journaled in a SessionStore before
// they are acknowledged, and whose state is checkpointed every N tokens or T ms, off the token path (the
// snapshot is taken between two tokens; the store write runs while generation goes on). Generated tokens
// are never written one by one: given the last checkpoint and the inputs after it they are derived
// again, exactly. A checkpoint keeps the current generation's token ids so far, so resume({ from }) can
// yield tokens that a client never received even when the checkpoint landed after them.
import { ConfigError, StateError, describe, ModelError, SessionError } from '../core/errors.js';
import type { Model } from '../model/model.js';
import type { FeedOptions, GeneratedToken, Session } from '../model/session.js';
import { checkSamplerOptions, type SamplerOptions } from '../model/sampler.js';
import { checkTokens } from '../model/tokens.js';
import { Utf8Pieces } from '../model/utf8.js';
import { arithmeticFingerprint } from './arithmetic.js';
import { decodeCheckpoint, decodeJournal, encodeCheckpoint, encodeJournal, type GenerationHeader, type JournalInput } from './records.js';
import { checkMs, checkSessionId, type Lease, type SessionStore } from './store.js';

/**
 * Defaults, measured (bench/sessions.ts, docs/sessions.md): a checkpoint of the shipped model costs
 * ~10 ms of snapshot on the token path; every 512 tokens or 2 s keeps that near 1-2% of generation at
 * ~700 tokens/s and bounds a replay to a few hundred ms.
 */
export const DEFAULT_CHECKPOINT_EVERY = 512;
export const DEFAULT_CHECKPOINT_MS = 2000;
export const DEFAULT_LEASE_MS = 10_000;
/**
 * With the default checkpointEvery, a token-count checkpoint also waits until this many times the last
 * one's token-path cost has passed since it, so checkpoints take ~2% of the token path however fast
 * generation runs. Chromium's main thread on WASM reached ~2,400 tokens/s, where 512 tokens last ~0.2 s
 * and a ~10 ms snapshot every 512 would be ~5%; with the budget, 3.0-3.1% measured under load (snapshot
 * times vary; bench/sessions-browser.ts). An explicit checkpointEvery is kept exactly.
 */
export const CHECKPOINT_BUDGET = 50;

export interface DurableSessionOptions extends SamplerOptions {
  /** checkpoint after this many tokens (fed or generated) since the last one (default 512) */
  checkpointEvery?: number;
  /** ... or once this many ms passed since the last one with tokens to save (default 2000) */
  checkpointMs?: number;
  /** the lease: renewed every leaseMs / 3 while open; another writer may take over leaseMs after a crash */
  leaseMs?: number;
  /** when another writer holds the session: false (default) -> SessionError 'busy'; true -> wait for it;
   * a number -> wait at most that many ms, then 'busy' */
  wait?: boolean | number;
}

export interface DurableGenerateOptions {
  maxTokens: number;
  stop?: string | readonly string[];
  /** abort between tokens: the iterator throws signal.reason; the early end is journaled */
  signal?: AbortSignal;
}

/** The interrupted generation: its tokens are at positions from..to (to: where its limit would end it). */
export interface PendingGeneration {
  from: number;
  to: number;
}

export interface ResumeOptions {
  /** the first position to yield (default: the generation's first token) */
  from?: number;
  signal?: AbortSignal;
}

const OPTION_KEYS = new Set(['seed', 'temperature', 'topK', 'topP', 'validUtf8', 'checkpointEvery', 'checkpointMs', 'leaseMs', 'wait']);

/** A generation: the limits its record fixed, and its token ids so far ([capacity], count used). */
interface Generation {
  seq: number;
  start: number;
  maxTokens: number;
  stop: string[];
  longest: number;
  utf8Start: Uint8Array;
  tokens: Uint8Array;
  count: number;
  done: boolean;
  /** stop-string tail of the texts so far (as model Session.generate keeps it) */
  tail: string;
}

function randomOwner(): string {
  const b = new Uint8Array(8);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function checkOptions(o: DurableSessionOptions | undefined): { every: number; ms: number; leaseMs: number; waitMs: number; budgeted: boolean } {
  if (o === undefined) return { every: DEFAULT_CHECKPOINT_EVERY, ms: DEFAULT_CHECKPOINT_MS, leaseMs: DEFAULT_LEASE_MS, waitMs: 0, budgeted: true };
  if (o === null || typeof o !== 'object') throw new ConfigError(`durable session options must be an object, got ${describe(o)}`);
  for (const k of Object.keys(o)) if (!OPTION_KEYS.has(k)) throw new ConfigError(`unknown durable session option ${JSON.stringify(k)}; expected one of ${[...OPTION_KEYS].join(', ')}`);
  const every = o.checkpointEvery === undefined ? DEFAULT_CHECKPOINT_EVERY : o.checkpointEvery;
  if (typeof every !== 'number' || !Number.isInteger(every) || every < 1) throw new ConfigError(`checkpointEvery must be an integer >= 1 (tokens), got ${describe(every)}`);
  const ms = o.checkpointMs === undefined ? DEFAULT_CHECKPOINT_MS : checkMs('checkpointMs', o.checkpointMs);
  const leaseMs = o.leaseMs === undefined ? DEFAULT_LEASE_MS : checkMs('leaseMs', o.leaseMs, 30);
  let waitMs = 0;
  if (o.wait === true) waitMs = Infinity;
  else if (typeof o.wait === 'number') waitMs = checkMs('wait', o.wait, 0);
  else if (o.wait !== undefined && o.wait !== false) throw new ConfigError(`wait must be a boolean or a number of ms, got ${describe(o.wait)}`);
  return { every, ms, leaseMs, waitMs, budgeted: o.checkpointEvery === undefined };
}

/** A store failure as the typed error (SessionErrors pass through). */
function storeError(e: unknown, id: string, what: string): SessionError {
  if (e instanceof SessionError) return e;
  return new SessionError('store', `session ${id}: ${what} failed: ${(e as Error)?.message ?? String(e)}`, id, undefined, { cause: e });
}

/**
 * Open the durable session `id` in `store`: create it when new (the sampler options are its own from
 * then on), else take its lease and resume it from its checkpoint plus the journal after it.
 */
export async function openSession(model: Model, store: SessionStore, id: string, options?: DurableSessionOptions): Promise<DurableSession> {
  checkSessionId(id);
  const o = checkOptions(options);
  const sampling = options === undefined ? undefined : { seed: options.seed, temperature: options.temperature, topK: options.topK, topP: options.topP, validUtf8: options.validUtf8 };
  const resolved = checkSamplerOptions(sampling);
  const owner = randomOwner();
  const deadline = o.waitMs === Infinity ? Infinity : performance.now() + o.waitMs;
  let lease: Lease;
  for (;;) {
    let r;
    try {
      r = await store.acquire(id, owner, o.leaseMs);
    } catch (e) {
      throw storeError(e, id, 'taking the lease');
    }
    if ('lease' in r) {
      lease = r.lease;
      break;
    }
    const left = deadline - performance.now();
    if (left <= 0) throw new SessionError('busy', `session ${id} is held by another writer (${r.held.owner}) for ${r.held.remainingMs} ms more unless it renews; pass { wait: true } to wait for it`, id);
    await sleep(Math.max(5, Math.min(r.held.remainingMs + 1, left, 250)));
  }
  const s = new DurableSession(model, store, id, lease, o);
  try {
    await s.load(resolved, { seed: options?.seed !== undefined, validUtf8: options?.validUtf8 !== undefined });
  } catch (e) {
    s.stopTimers();
    await store.release(lease).catch(() => undefined);
    throw e;
  }
  return s;
}

export class DurableSession {
  readonly model: Model;
  readonly store: SessionStore;
  readonly id: string;
  private lease: Lease;
  private readonly every: number;
  /** checkpointEvery defaulted: token-count checkpoints keep to CHECKPOINT_BUDGET */
  private readonly budgeted: boolean;
  private readonly everyMs: number;
  private readonly leaseMs: number;
  private inner!: Session;
  /** the last journal seq (durable, and applied to `inner`) */
  private seq = 0;
  private gen: Generation | null = null;
  /** mirror of the model session's pending UTF-8 bytes (what a generation's first text piece continues) */
  private readonly utf8 = new Utf8Pieces();
  // checkpoint cadence: position and time of the last checkpoint taken
  private savedPosition = 0;
  private savedSeq = 0;
  private savedAt = 0;
  private inflight: Promise<void> | null = null;
  /** a background failure (checkpoint write, lease renewal) surfaced at the next durability point */
  private failure: SessionError | null = null;
  private fenced: SessionError | null = null;
  private renewTimer: ReturnType<typeof setInterval> | null = null;
  private busy: string | null = null;
  private closed = false;
  /**
   * The last checkpoint taken: its bytes, the ms it took on the token path (snapshot and framing), and
   * the ms its store write took off the path (NaN until it lands). For monitoring and benchmarks.
   */
  lastCheckpoint: { readonly bytes: number; readonly snapshotMs: number; writeMs: number } | null = null;
  /**
   * The JS arithmetic (Math.exp/log, see arithmetic.ts) of this runtime and of the checkpoint the session
   * was loaded from (null: none, or one that predates the record). When they differ (a session moved between
   * engines, e.g. Node and a browser), tokens derived again after that checkpoint may differ from those the
   * other runtime produced: `exact` is false.
   */
  readonly arithmetic: { here: string; saved: string | null; exact: boolean } = { here: arithmeticFingerprint(), saved: null, exact: true };

  /** Use openSession(model, store, id, options). */
  constructor(model: Model, store: SessionStore, id: string, lease: Lease, o: { every: number; ms: number; leaseMs: number; budgeted?: boolean }) {
    this.model = model;
    this.store = store;
    this.id = id;
    this.lease = lease;
    this.every = o.every;
    this.budgeted = o.budgeted ?? false;
    this.everyMs = o.ms;
    this.leaseMs = o.leaseMs;
    this.renewTimer = setInterval(() => void this.renew(), Math.max(10, Math.floor(o.leaseMs / 3)));
    (this.renewTimer as { unref?: () => void }).unref?.();
  }

  /** Tokens consumed so far (prompts, fed and generated tokens). */
  get position(): number {
    return this.inner.position;
  }

  /** Bytes of the model session's state (decoder states and the last logits): about what a checkpoint's snapshot holds. */
  get stateBytes(): number {
    return this.inner.stateBytes;
  }

  /** The sampling options in force. */
  get sampling(): Required<SamplerOptions> {
    return this.inner.sampling;
  }

  /** The fencing token of this writer's lease. */
  get leaseToken(): number {
    return this.lease.token;
  }

  private async renew(): Promise<void> {
    if (this.closed || this.fenced !== null) return;
    try {
      this.lease = await this.store.renew(this.lease, this.leaseMs);
    } catch (e) {
      const err = storeError(e, this.id, 'renewing the lease');
      if (err.code === 'fenced') this.fenced = err;
      else this.failure ??= err;
    }
  }

  /** @internal stop the renewal timer */
  stopTimers(): void {
    if (this.renewTimer !== null) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading: checkpoint, then the journal after it, applied as the live calls applied it.

  /** @internal */
  async load(sampling: Required<SamplerOptions>, given: { seed: boolean; validUtf8: boolean }): Promise<void> {
    let stored;
    try {
      stored = await this.store.load(this.id);
    } catch (e) {
      throw storeError(e, this.id, 'loading');
    }
    const fp = hex(this.model.fingerprint);
    let journal = stored?.journal ?? [];
    if (stored === null || (stored.checkpoint === null && journal.length === 0)) {
      this.inner = this.model.session(sampling);
      await this.append({ kind: 'create', fingerprint: fp, ...sampling });
      this.savedAt = performance.now();
      return;
    }
    if (stored.checkpoint !== null) {
      const c = decodeCheckpoint(stored.checkpoint.bytes, this.id, stored.checkpoint.through);
      const saved = c.header.arithmetic ?? null;
      Object.assign(this.arithmetic, { saved, exact: saved === null || saved === this.arithmetic.here });
      try {
        this.inner = this.model.restore(c.snapshot);
      } catch (e) {
        if (e instanceof ModelError && e.code === 'wrong-model') throw e;
        throw new SessionError('damaged', `session ${this.id}: checkpoint: its model session snapshot is refused: ${(e as Error).message}`, this.id, 'checkpoint', { cause: e });
      }
      if (this.inner.position !== c.header.position) throw new SessionError('damaged', `session ${this.id}: checkpoint: header position ${c.header.position} but the snapshot is at ${this.inner.position}`, this.id, 'checkpoint');
      this.seq = c.header.through;
      const g = c.header.gen;
      if (g !== null) {
        const gen = this.newGeneration(g.seq, g.start, g.maxTokens, g.stop, Uint8Array.from(g.utf8Start), false);
        gen.tokens = c.tokens.slice();
        gen.count = c.tokens.length;
        // the stop tail, from the texts the tokens made
        const texts = this.texts(gen);
        gen.count = 0;
        for (let i = 0; i < texts.length; i++) this.pushToken(gen, c.tokens[i]!, texts[i]!);
        if (gen.done && !g.done) throw new SessionError('damaged', `session ${this.id}: checkpoint: its generation ended by itself after ${gen.count} tokens but is marked running`, this.id, 'checkpoint');
        gen.done = g.done;
        this.gen = gen;
      }
      // the mirror of the model session's pending UTF-8 bytes
      if (!this.utf8.restore(Uint8Array.from(c.header.utf8))) throw new SessionError('damaged', `session ${this.id}: checkpoint: pending UTF-8 bytes [${c.header.utf8.join(', ')}] are not the start of a character`, this.id, 'checkpoint');
    } else {
      const first = journal[0]!;
      if (first.seq !== 1) throw new SessionError('damaged', `session ${this.id}: journal record 1 is missing (the journal starts at ${first.seq} and there is no checkpoint)`, this.id, 'journal record 1');
      const create = decodeJournal(first.bytes, this.id, 1);
      if (create.kind !== 'create') throw new SessionError('damaged', `session ${this.id}: journal record 1: expected the create record, got ${create.kind}`, this.id, 'journal record 1');
      if (create.fingerprint !== fp) throw new ModelError('wrong-model', `session ${this.id} was created with another model (fingerprint ${create.fingerprint.slice(0, 16)}…, this model's is ${fp.slice(0, 16)}…)`);
      this.inner = this.model.session({ seed: create.seed, temperature: create.temperature, topK: create.topK, topP: create.topP, validUtf8: create.validUtf8 });
      this.seq = 1;
      journal = journal.slice(1);
    }
    // sampling options are creation options; temperature/topK/topP may have changed since (setOptions),
    // but the seed and validUtf8 never do: a different one is a mistake worth stopping
    if (given.seed && this.inner.sampling.seed !== sampling.seed) {
      throw new ConfigError(`session ${this.id} exists with seed ${this.inner.sampling.seed}, not ${sampling.seed}; open it without a seed (sampling options apply when a session is created)`);
    }
    if (given.validUtf8 && this.inner.sampling.validUtf8 !== sampling.validUtf8) {
      throw new ConfigError(`session ${this.id} exists with validUtf8 ${this.inner.sampling.validUtf8}, not ${sampling.validUtf8}; open it without validUtf8 (sampling options apply when a session is created)`);
    }
    // decode all records first: damage anywhere is refused before any work
    const inputs: JournalInput[] = [];
    for (const e of journal) {
      if (e.seq !== this.seq + inputs.length + 1) {
        const want = this.seq + inputs.length + 1;
        throw new SessionError('damaged', `session ${this.id}: journal record ${want} is missing (the next one held is ${e.seq})`, this.id, `journal record ${want}`);
      }
      const input = decodeJournal(e.bytes, this.id, e.seq);
      if (input.kind === 'create') throw new SessionError('damaged', `session ${this.id}: journal record ${e.seq}: a second create record`, this.id, `journal record ${e.seq}`);
      inputs.push(input);
    }
    this.savedPosition = this.inner.position;
    this.savedSeq = this.seq;
    this.savedAt = performance.now();
    for (const input of inputs) {
      await this.apply(input, this.seq + 1);
      this.seq++;
    }
  }

  /** Apply one journaled input to the model session (the live calls and replay share this). */
  private async apply(input: JournalInput, seq: number): Promise<void> {
    const record = `journal record ${seq}`;
    const damaged = (m: string): never => {
      throw new SessionError('damaged', `session ${this.id}: ${record}: ${m}`, this.id, record);
    };
    if (input.kind === 'end') {
      const g = this.gen;
      if (g === null || g.seq !== input.gen || g.done || input.count < g.count || input.count > g.maxTokens) damaged(`an end of generation ${input.gen} at ${input.count} tokens does not match the open generation`);
      for await (const _ of this.drive(g!, input.count, undefined)) {
        // derived again, not yielded
      }
      if (g!.count !== input.count) damaged(`generation ${input.gen} ended by itself after ${g!.count} tokens, before the recorded ${input.count}`);
      g!.done = true;
      return;
    }
    await this.finishPending();
    this.gen = null;
    try {
      switch (input.kind) {
        case 'feed':
          this.inner.feed(input.tokens, { lastOnly: true });
          break;
        case 'options':
          this.inner.setSampling({ temperature: input.temperature, topK: input.topK, topP: input.topP });
          break;
        case 'generate': {
          // the prompt: fed (and the UTF-8 pieces reset) exactly as model Session.generate does
          for await (const _ of this.inner.generate(input.prompt, { maxTokens: 0 })) {
            // no tokens
          }
          if (input.prompt.length > 0) this.utf8.reset();
          this.gen = this.newGeneration(seq, this.inner.position, input.maxTokens, input.stop, this.utf8.pendingBytes(), input.maxTokens === 0);
          break;
        }
        case 'create':
          damaged('a second create record');
      }
    } catch (e) {
      if (e instanceof SessionError) throw e;
      return damaged(`the recorded input is refused by the model: ${(e as Error).message}`);
    }
  }

  private newGeneration(seq: number, start: number, maxTokens: number, stop: string[], utf8Start: Uint8Array, done: boolean): Generation {
    return {
      seq, start, maxTokens, stop, utf8Start, done, count: 0, tail: '',
      longest: stop.reduce((m, s) => Math.max(m, s.length), 0),
      tokens: new Uint8Array(Math.min(Math.max(maxTokens, 1), 1024)),
    };
  }

  /** Record a token of `g` and its text piece; `g.done` when its limit or a stop string is reached. */
  private pushToken(g: Generation, token: number, text: string): void {
    if (g.count === g.tokens.length) {
      const grown = new Uint8Array(Math.min(Math.max(g.tokens.length * 2, 64), Math.max(g.maxTokens, 1)));
      grown.set(g.tokens);
      g.tokens = grown;
    }
    g.tokens[g.count++] = token;
    if (g.longest > 0 && text.length > 0) {
      // as model Session.generate matches stop strings: over the pieces, a stop string may span them
      g.tail += text;
      if (g.stop.some((x) => g.tail.includes(x))) g.done = true;
      else g.tail = g.longest > 1 ? g.tail.slice(-(g.longest - 1)) : '';
    }
    if (g.count === g.maxTokens) g.done = true;
  }

  /**
   * Generate tokens of `g` until it has `upTo` tokens or ends by itself (limit, stop string), yielding
   * each new token (callers that replay ignore them). Checkpoints are taken between tokens.
   */
  private async *drive(g: Generation, upTo: number, signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    if (g.done || g.count >= upTo) return;
    const it = this.inner.generate('', { maxTokens: Math.min(upTo, g.maxTokens) - g.count });
    try {
      for await (const t of it) {
        this.pushToken(g, t.token, t.text);
        this.utf8.push(t.token);
        this.maybeCheckpoint();
        yield t;
        if (g.done || g.count >= upTo) return;
        this.surface();
        signal?.throwIfAborted();
      }
    } finally {
      await it.return(undefined);
    }
  }

  /** The text pieces of `g`'s tokens, derived again from the UTF-8 bytes pending before its first token. */
  private texts(g: Generation): string[] {
    const u = new Utf8Pieces();
    u.restore(g.utf8Start);
    const out: string[] = new Array(g.count);
    for (let i = 0; i < g.count; i++) out[i] = u.push(g.tokens[i]!);
    return out;
  }

  /** A pending generation (a crash or a store failure interrupted it) runs to its end, silently. */
  private async finishPending(): Promise<void> {
    const g = this.gen;
    if (g === null || g.done) return;
    for await (const _ of this.drive(g, g.maxTokens, undefined)) {
      // derived, not yielded: the journal asked for the whole generation
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Durability

  private check(what: string): void {
    if (this.closed) throw new SessionError('closed', `session ${this.id} is closed`, this.id);
    if (this.fenced !== null) throw this.fenced;
    if (this.busy !== null) throw new StateError(`${what} is not allowed while ${this.busy} is running on session ${this.id}; finish or break out of it first`);
  }

  /** Throw a background failure (checkpoint write, lease renewal) at this durability point. */
  private surface(): void {
    if (this.fenced !== null) throw this.fenced;
    const f = this.failure;
    if (f !== null) {
      this.failure = null;
      throw f;
    }
  }

  private async append(input: JournalInput): Promise<number> {
    if (this.closed) throw new SessionError('closed', `session ${this.id} is closed`, this.id);
    this.surface();
    const seq = this.seq + 1;
    try {
      await this.store.append(this.lease, seq, encodeJournal(this.id, seq, input));
    } catch (e) {
      const err = storeError(e, this.id, `writing journal record ${seq}`);
      if (err.code === 'fenced') this.fenced = err;
      throw err;
    }
    this.seq = seq;
    return seq;
  }

  /** Start a checkpoint when the cadence says so and none is in flight (never awaited on the token path). */
  private maybeCheckpoint(): void {
    if (this.inflight !== null) return;
    const tokens = this.inner.position - this.savedPosition;
    if (tokens === 0) return;
    const since = performance.now() - this.savedAt;
    if (since >= this.everyMs || (tokens >= this.every && (!this.budgeted || since >= CHECKPOINT_BUDGET * (this.lastCheckpoint?.snapshotMs ?? 0)))) this.startCheckpoint();
  }

  private startCheckpoint(): Promise<void> {
    const t0 = performance.now();
    const g = this.gen;
    const gen: GenerationHeader | null = g === null ? null : { seq: g.seq, start: g.start, maxTokens: g.maxTokens, stop: g.stop, utf8Start: Array.from(g.utf8Start), count: g.count, done: g.done };
    const position = this.inner.position;
    const through = this.seq;
    const utf8 = Array.from(this.utf8.pendingBytes());
    const bytes = encodeCheckpoint({ id: this.id, through, position, utf8, gen, arithmetic: this.arithmetic.here }, g === null ? new Uint8Array(0) : g.tokens.subarray(0, g.count), this.inner.snapshot());
    const t1 = performance.now();
    this.savedPosition = position;
    this.savedAt = t1;
    const stat = { bytes: bytes.length, snapshotMs: t1 - t0, writeMs: NaN };
    this.lastCheckpoint = stat;
    const p = this.store.checkpoint(this.lease, bytes, through).then(
      () => {
        this.savedSeq = through;
        stat.writeMs = performance.now() - t1;
      },
      (e: unknown) => {
        const err = storeError(e, this.id, 'writing a checkpoint');
        if (err.code === 'fenced') this.fenced = err;
        else this.failure ??= err;
        this.savedPosition = -Infinity; // try again at the next token
      },
    );
    this.inflight = p.finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  // ---------------------------------------------------------------------------------------------
  // The session API

  /**
   * Consume tokens (a prompt, forced tokens). Resolves once they are durable and fed, with their logits
   * [L, vocab] (or [vocab] with lastOnly) as model Session.feed returns them. A pending generation is
   * first run to its end (the journal asked for all of it).
   */
  async feed(tokens: ArrayLike<number>, options: Pick<FeedOptions, 'lastOnly'> = {}): Promise<Float64Array> {
    this.check('feed()');
    checkTokens(tokens, this.model.config.vocab);
    const copy = Uint8Array.from(tokens);
    this.busy = 'feed()';
    try {
      await this.finishPending();
      await this.append({ kind: 'feed', tokens: copy });
      this.gen = null;
      const out = this.inner.feed(copy, { lastOnly: options.lastOnly ?? false });
      this.maybeCheckpoint();
      return out;
    } finally {
      this.busy = null;
    }
  }

  /** Change temperature / topK / topP from the next token on (durable when it resolves). */
  async setOptions(options: { temperature?: number; topK?: number; topP?: number }): Promise<void> {
    this.check('setOptions()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`setOptions takes { temperature?, topK?, topP? }, got ${describe(options)}`);
    for (const k of Object.keys(options)) if (k !== 'temperature' && k !== 'topK' && k !== 'topP') throw new ConfigError(`setOptions takes temperature, topK and topP only (the seed is fixed per session), got ${JSON.stringify(k)}`);
    const now = this.inner.sampling;
    const r = checkSamplerOptions({ seed: now.seed, temperature: options.temperature ?? now.temperature, topK: options.topK ?? now.topK, topP: options.topP ?? now.topP });
    this.busy = 'setOptions()';
    try {
      await this.finishPending();
      await this.append({ kind: 'options', temperature: r.temperature, topK: r.topK, topP: r.topP });
      this.gen = null;
      this.inner.setSampling({ temperature: r.temperature, topK: r.topK, topP: r.topP });
    } finally {
      this.busy = null;
    }
  }

  /**
   * Generate up to maxTokens tokens after `prompt`, as model Session.generate does. The prompt and the
   * limits are durable before the first token is yielded. Breaking out (or an abort) journals the early
   * end; a store failure stops it with SessionError 'store' at the next durability point, leaving the
   * generation pending (resume() continues it once the store is back).
   */
  generate(prompt: string | ArrayLike<number>, options: DurableGenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
    this.check('generate()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`generate options must be an object { maxTokens, stop?, signal? }, got ${describe(options)}`);
    const { maxTokens, signal } = options;
    if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 0) throw new ConfigError(`maxTokens must be an integer >= 0, got ${describe(maxTokens)}`);
    const stop = options.stop === undefined ? [] : typeof options.stop === 'string' ? [options.stop] : Array.from(options.stop);
    for (const s of stop) if (typeof s !== 'string' || s.length === 0) throw new ConfigError(`stop must be a non-empty string or an array of them, got ${describe(s)}`);
    const tokens = Uint8Array.from(typeof prompt === 'string' ? new TextEncoder().encode(prompt) : (checkTokens(prompt, this.model.config.vocab, 'prompt'), prompt));
    if (tokens.length === 0 && this.inner.position === 0) throw new StateError('generate() needs a non-empty prompt on a session fed nothing yet (there is no start token to continue from)');
    signal?.throwIfAborted();
    return this.runGenerate(tokens, maxTokens, stop, signal);
  }

  private async *runGenerate(prompt: Uint8Array, maxTokens: number, stop: string[], signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    this.check('generate()');
    this.busy = 'generate()';
    let g: Generation | null = null;
    let storeFailed = false;
    try {
      await this.finishPending();
      const seq = await this.append({ kind: 'generate', prompt, maxTokens, stop });
      await this.apply({ kind: 'generate', prompt, maxTokens, stop }, seq);
      g = this.gen!;
      this.maybeCheckpoint();
      yield* this.drive(g, g.maxTokens, signal);
    } catch (e) {
      if (e instanceof SessionError) storeFailed = true;
      throw e;
    } finally {
      try {
        // a client's early end (break, abort, its own error) is an input: journal it
        if (g !== null && !g.done && !storeFailed && this.fenced === null && !this.closed) {
          await this.append({ kind: 'end', gen: g.seq, count: g.count });
          g.done = true;
        }
      } finally {
        this.busy = null;
      }
    }
  }

  /** The interrupted generation, if any: positions from..to of its tokens (to: where its limit ends it). */
  pending(): PendingGeneration | null {
    const g = this.gen;
    if (g === null || g.done) return null;
    return { from: g.start + 1, to: g.start + g.maxTokens };
  }

  /**
   * The latest generation's tokens at positions >= from, exactly as the uninterrupted run yields them:
   * first those already derived (kept in the checkpoint, so also those a client never received), then,
   * when it was interrupted, on to its end. Nothing to resume (no generation since the last input) is a
   * StateError; a `from` outside the generation is a ConfigError.
   */
  resume(options: ResumeOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
    this.check('resume()');
    if (options === null || typeof options !== 'object') throw new ConfigError(`resume options must be an object { from?, signal? }, got ${describe(options)}`);
    const g = this.gen;
    if (g === null) throw new StateError(`session ${this.id} has no generation to resume (an input came after the last one, or there was none)`);
    const from = options.from ?? g.start + 1;
    if (typeof from !== 'number' || !Number.isInteger(from) || from < g.start + 1 || from > g.start + g.maxTokens + 1) {
      throw new ConfigError(`from must be an integer position in [${g.start + 1}, ${g.start + g.maxTokens + 1}] (the generation's tokens), got ${describe(from)}`);
    }
    options.signal?.throwIfAborted();
    return this.runResume(g, from, options.signal);
  }

  private async *runResume(g: Generation, from: number, signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    this.check('resume()');
    if (this.gen !== g) throw new StateError(`session ${this.id}: the generation to resume was replaced by a later input`);
    this.busy = 'resume()';
    let storeFailed = false;
    try {
      // a store failure may have left the lease unrenewed: make sure it is still ours before going on
      if (!g.done) {
        this.failure = null;
        try {
          this.lease = await this.store.renew(this.lease, this.leaseMs);
        } catch (e) {
          const err = storeError(e, this.id, 'renewing the lease');
          if (err.code === 'fenced') this.fenced = err;
          throw err;
        }
      }
      const known = g.count;
      if (from <= g.start + known) {
        const texts = this.texts(g);
        for (let i = from - g.start - 1; i < known; i++) {
          signal?.throwIfAborted();
          yield { token: g.tokens[i]!, text: texts[i]!, position: g.start + i + 1 };
        }
      }
      for await (const t of this.drive(g, g.maxTokens, signal)) if (t.position >= from) yield t;
    } catch (e) {
      if (e instanceof SessionError) storeFailed = true;
      throw e;
    } finally {
      try {
        if (!g.done && !storeFailed && this.fenced === null && !this.closed) {
          await this.append({ kind: 'end', gen: g.seq, count: g.count });
          g.done = true;
        }
      } finally {
        this.busy = null;
      }
    }
  }

  /** The model session's snapshot bytes (model.restore continues it exactly). */
  snapshot(): Uint8Array {
    return this.inner.snapshot();
  }

  /** Write a checkpoint now and wait for it (e.g. before a planned shutdown). */
  async checkpoint(): Promise<void> {
    this.check('checkpoint()');
    if (this.inflight !== null) await this.inflight;
    this.surface();
    await this.startCheckpoint();
    this.surface();
  }

  /** Final checkpoint (when anything changed since the last one), then the lease is released. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.fenced !== null) {
      // another writer has the session: nothing of ours to save or release
      this.stopTimers();
      this.closed = true;
      return;
    }
    this.check('close()');
    this.stopTimers();
    try {
      if (this.inflight !== null) await this.inflight;
      this.surface();
      if (this.inner.position !== this.savedPosition || this.seq !== this.savedSeq) {
        await this.startCheckpoint();
        this.surface();
      }
      await this.store.release(this.lease).catch((e: unknown) => {
        throw storeError(e, this.id, 'releasing the lease');
      });
    } finally {
      this.closed = true;
    }
  }

  /**
   * Drop this handle as a crash would: no final checkpoint, the lease is not released (another writer
   * takes over once it runs out). For tests and for handing a session over without waiting.
   */
  abandon(): void {
    this.stopTimers();
    this.closed = true;
  }
}
