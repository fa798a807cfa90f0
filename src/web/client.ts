// The engine as the page sees it: a model in a worker (or in this thread), durable sessions mirrored over
// messages. A WebSession has DurableSession's API; what DurableSession answers synchronously (position,
// pending(), sampling) comes from the state sent with every reply; the rest returns promises.
import { ConfigError, StateError, describe, SessionError } from '../core/errors.js';
import type { ModelConfig } from '../model/config.js';
import type { GeneratedToken } from '../model/session.js';
import type { SamplerOptions } from '../model/sampler.js';
import type { DurableGenerateOptions, DurableSessionOptions, PendingGeneration, ResumeOptions } from '../sessions/session.js';
import type { SessionInfo } from '../sessions/store.js';
import type { ModelSource, Opened, Ready, Reply, Request, SessionState, TokenWire } from './protocol.js';
import { fromWire } from './wire.js';

export interface EngineOptions {
  /** the model: a URL of a safetensors file (relative URLs resolve against the page), or its bytes (copied) */
  model: string | URL | Uint8Array | ArrayBuffer;
  /** run the model in a worker (default true); false: in this thread, same code, same messages */
  worker?: boolean;
  /** the store: 'indexeddb:NAME' (the browser default: indexeddb:toeplitz-attention), 'memory:', and in Node 'file:DIR' or 'redis://host:port' */
  store?: string;
  /** where the worker script is (browsers; default: worker.js next to this module) */
  workerUrl?: string | URL;
}

/** What stats() reports. */
export interface SessionStats {
  /** tokens per second of the latest generation, first token to last (0 before its second token) */
  tokensPerSecond: number;
  /** tokens of the latest generation so far */
  tokens: number;
  position: number;
  /** bytes of state carried from token to token (decoder states and the last logits) */
  stateBytes: number;
}

export interface EngineStats extends SessionStats {
  backend: 'js' | 'wasm';
  /** true when the model runs in a worker */
  worker: boolean;
  store: string;
  /** sessions open in this engine */
  sessions: number;
  /** the session the other figures are of (the one that generated last), or null */
  session: string | null;
}

/** The transport under an engine: a worker, or one end of a MessageChannel. */
export interface Port {
  post(message: Request, transfer: Transferable[]): void;
  onMessage(handler: (reply: Reply) => void): void;
  /** the worker died (an uncaught error, or it could not start) */
  onError(handler: (error: Error) => void): void;
  terminate(): void;
}

type Call = { resolve: (r: Extract<Reply, { ok: true }>) => void; reject: (e: Error) => void };
type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export class Engine {
  readonly backend: 'js' | 'wasm';
  readonly config: ModelConfig;
  /** the store's URL */
  readonly store: string;
  readonly worker: boolean;
  private readonly port: Port;
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private dead: Error | null = null;
  private readonly open = new Set<WebSession>();
  /** the session that generated last (stats) */
  last: WebSession | null = null;

  /** Use createEngine(options). */
  constructor(port: Port, worker: boolean, ready: Ready, calls: Map<number, Call>, nextId: number) {
    this.port = port;
    this.worker = worker;
    this.backend = ready.backend;
    this.config = ready.config;
    this.store = ready.store;
    this.calls = calls;
    this.nextId = nextId;
  }

  /** @internal one request, one reply */
  call(body: Body<Request>, transfer: Transferable[] = []): Promise<Extract<Reply, { ok: true }>> {
    if (this.dead !== null) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      try {
        this.port.post({ ...body, id } as Request, transfer);
      } catch (e) {
        this.calls.delete(id);
        throw e;
      }
    });
  }

  /** @internal */
  fail(e: Error): void {
    this.dead ??= e;
    for (const c of this.calls.values()) c.reject(e);
    this.calls.clear();
  }

  /** @internal */
  forget(s: WebSession): void {
    this.open.delete(s);
    if (this.last === s) this.last = null;
  }

  /**
   * Open the durable session `id` (create it when new, else resume it from the store), as openSession of
   * toeplitz-attention/sessions does: options { seed, temperature, topK, topP, checkpointEvery,
   * checkpointMs, leaseMs, wait }. Another live writer (another tab, say) -> SessionError 'busy'.
   */
  async openSession(id: string, options?: DurableSessionOptions): Promise<WebSession> {
    const r = await this.call({ op: 'open', session: id, options });
    return this.adopt(r);
  }

  /**
   * Import a session file (session.snapshot() bytes, `generate --save`) as the new durable session `id`:
   * it continues exactly where the file stood. The bytes are copied. A session `id` that exists already is
   * SessionError 'conflict'; a file of another model ModelError 'wrong-model'.
   */
  async importSession(id: string, bytes: Uint8Array, options?: DurableSessionOptions): Promise<WebSession> {
    if (!(bytes instanceof Uint8Array)) throw new ConfigError(`a session file must be a Uint8Array, got ${describe(bytes)}`);
    const r = await this.call({ op: 'import', session: id, bytes, options });
    return this.adopt(r);
  }

  private adopt(r: Extract<Reply, { ok: true }>): WebSession {
    const o = r.value as Opened;
    const s = new WebSession(this, o.id, o.handle, r.state!);
    this.open.add(s);
    return s;
  }

  /** The sessions in the store. */
  async listSessions(): Promise<SessionInfo[]> {
    return (await this.call({ op: 'list' })).value as SessionInfo[];
  }

  /** Delete a session from the store (it must not be open in this engine). */
  async deleteSession(id: string): Promise<void> {
    await this.call({ op: 'delete', session: id });
  }

  /** Backend, store, and the figures of the session that generated last. */
  stats(): EngineStats {
    const s = this.last;
    const z: SessionStats = s?.stats() ?? { tokensPerSecond: 0, tokens: 0, position: 0, stateBytes: 0 };
    return { ...z, backend: this.backend, worker: this.worker, store: this.store, sessions: this.open.size, session: s?.id ?? null };
  }

  /** Close every session (final checkpoints, leases released), the store, then the worker. */
  async close(): Promise<void> {
    if (this.dead !== null) return;
    try {
      await this.call({ op: 'dispose' });
    } finally {
      this.terminate();
    }
  }

  /** Stop at once, as a closed tab does: no final checkpoint (leases run out by themselves). */
  terminate(): void {
    this.fail(new SessionError('closed', 'the engine was terminated'));
    this.port.terminate();
  }
}

export class WebSession {
  readonly engine: Engine;
  readonly id: string;
  private readonly handle: number;
  private state: SessionState;
  private closed = false;
  private reading = false;
  // the latest generation's pace (ms, performance.now())
  private tokens = 0;
  private firstAt = 0;
  private lastAt = 0;

  /** Use engine.openSession(id, options). */
  constructor(engine: Engine, id: string, handle: number, state: SessionState) {
    this.engine = engine;
    this.id = id;
    this.handle = handle;
    this.state = state;
  }

  /** Tokens consumed so far (prompts, fed and generated tokens). */
  get position(): number {
    return this.state.position;
  }

  /** The sampling options in force. */
  get sampling(): Required<SamplerOptions> {
    return this.state.sampling;
  }

  /** Bytes of state carried from token to token. */
  get stateBytes(): number {
    return this.state.stateBytes;
  }

  /** The interrupted generation, if any (positions from..to). */
  pending(): PendingGeneration | null {
    return this.state.pending;
  }

  stats(): SessionStats {
    const span = this.lastAt - this.firstAt;
    return { tokensPerSecond: this.tokens > 1 && span > 0 ? ((this.tokens - 1) * 1000) / span : 0, tokens: this.tokens, position: this.state.position, stateBytes: this.state.stateBytes };
  }

  private async call(body: Body<Request>, transfer?: Transferable[]): Promise<unknown> {
    if (this.closed) throw new SessionError('closed', `session ${this.id} is closed`, this.id);
    try {
      const r = await this.engine.call(body, transfer);
      if (r.state !== undefined) this.state = r.state;
      return r.value;
    } catch (e) {
      const st = (e as { state?: SessionState }).state;
      if (st !== undefined) this.state = st;
      throw e;
    }
  }

  /** Consume tokens; resolves once they are durable, with their logits [L, vocab] (or [vocab] with lastOnly). */
  async feed(tokens: ArrayLike<number>, options: { lastOnly?: boolean } = {}): Promise<Float64Array> {
    return (await this.call({ op: 'feed', handle: this.handle, tokens: wireTokens(tokens), lastOnly: options.lastOnly ?? false })) as Float64Array;
  }

  /** Change temperature / topK / topP from the next token on (durable when it resolves). */
  async setOptions(options: { temperature?: number; topK?: number; topP?: number }): Promise<void> {
    await this.call({ op: 'setOptions', handle: this.handle, options });
  }

  /**
   * Generate up to maxTokens tokens after `prompt` (an empty prompt continues), as DurableSession.generate:
   * the prompt and limits are durable before the first token. The worker computes one token per token
   * read, so a break or an abort (AbortSignal) ends the generation exactly after the last token read, and
   * that end is durable before the loop exits. Bad options reject at the first read.
   */
  generate(prompt: string | ArrayLike<number>, options: DurableGenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
    this.checkFree('generate()');
    options?.signal?.throwIfAborted();
    const body = { op: 'generate' as const, handle: this.handle, prompt: typeof prompt === 'string' ? prompt : wireTokens(prompt), maxTokens: options?.maxTokens, stop: options?.stop === undefined ? undefined : typeof options.stop === 'string' ? options.stop : Array.from(options.stop) };
    return this.read(body, options?.signal);
  }

  /** The latest generation's tokens at positions >= from, exactly as the uninterrupted run yields them, then on to its end. */
  resume(options: ResumeOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
    this.checkFree('resume()');
    options.signal?.throwIfAborted();
    return this.read({ op: 'resume', handle: this.handle, from: options.from }, options.signal);
  }

  private checkFree(what: string): void {
    if (this.closed) throw new SessionError('closed', `session ${this.id} is closed`, this.id);
    if (this.reading) throw new StateError(`${what} is not allowed while generate() is running on session ${this.id}; finish or break out of it first`);
  }

  private async *read(start: Body<Request>, signal: AbortSignal | undefined): AsyncGenerator<GeneratedToken, void, undefined> {
    this.checkFree(start.op === 'generate' ? 'generate()' : 'resume()');
    this.reading = true;
    let open = false;
    let done = false;
    try {
      await this.call(start);
      open = true;
      this.engine.last = this;
      this.tokens = 0;
      for (;;) {
        const t = (await this.call({ op: 'next', handle: this.handle })) as TokenWire | null;
        if (t === null) {
          done = true;
          return;
        }
        const now = performance.now();
        if (this.tokens === 0) this.firstAt = now;
        this.lastAt = now;
        this.tokens++;
        yield t;
        // as DurableSession: an abort is seen after a token that did not end the generation; then the
        // early end is journaled (finally)
        if (this.state.pending !== null) signal?.throwIfAborted();
      }
    } catch (e) {
      // the worker's iteration ended with the error
      if (!(signal?.aborted && e === signal.reason)) done = true;
      throw e;
    } finally {
      try {
        if (open && !done) await this.call({ op: 'return', handle: this.handle });
      } finally {
        this.reading = false;
      }
    }
  }

  /** The session file: the model session's snapshot bytes (importSession or model.restore continue it). */
  async snapshot(): Promise<Uint8Array> {
    return (await this.call({ op: 'snapshot', handle: this.handle })) as Uint8Array;
  }

  /** Write a checkpoint now and wait for it. */
  async checkpoint(): Promise<void> {
    await this.call({ op: 'checkpoint', handle: this.handle });
  }

  /** Final checkpoint, then the lease is released. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call({ op: 'close', handle: this.handle });
    } finally {
      this.closed = true;
      this.engine.forget(this);
    }
  }
}

/**
 * Tokens as sent: a Uint8Array or an array as they are, other typed arrays as arrays; the worker checks them
 * (checkTokens), so a bad token is the same error as in-process, never silently wrapped into a byte.
 */
function wireTokens(tokens: ArrayLike<number>): Uint8Array | number[] {
  if (tokens instanceof Uint8Array || Array.isArray(tokens)) return tokens as Uint8Array | number[];
  if (ArrayBuffer.isView(tokens)) return Array.from(tokens as ArrayLike<number>);
  return tokens as unknown as number[];
}

/** Connect to a host over `port`: send init, wait for the model and store, give the engine. */
export async function connect(port: Port, worker: boolean, options: EngineOptions): Promise<Engine> {
  if (options === null || typeof options !== 'object') throw new ConfigError(`createEngine takes { model, worker?, store?, workerUrl? }, got ${describe(options)}`);
  const calls = new Map<number, Call>();
  let engine: Engine | null = null;
  let early: Error | null = null;
  port.onMessage((r) => {
    const c = calls.get(r.id);
    if (c === undefined) return;
    calls.delete(r.id);
    if (r.ok) c.resolve(r);
    else {
      const e = fromWire(r.error);
      if (r.state !== undefined) Object.defineProperty(e, 'state', { value: r.state, enumerable: false });
      c.reject(e);
    }
  });
  port.onError((e) => {
    if (engine !== null) engine.fail(e);
    else {
      early = e;
      for (const c of calls.values()) c.reject(e);
      calls.clear();
    }
  });
  const source = modelSource(options.model);
  const transfer = 'bytes' in source ? [source.bytes.buffer as ArrayBuffer] : [];
  const init = new Promise<Extract<Reply, { ok: true }>>((resolve, reject) => {
    if (early !== null) return reject(early);
    calls.set(0, { resolve, reject });
    port.post({ id: 0, op: 'init', model: source, store: options.store ?? null }, transfer);
  });
  let ready: Ready;
  try {
    ready = (await init).value as Ready;
  } catch (e) {
    port.terminate();
    throw e;
  }
  engine = new Engine(port, worker, ready, calls, 1);
  return engine;
}

/** The model option as the host takes it: bytes (a copy of the caller's, moved to the host) or an absolute URL. */
export function modelSource(model: EngineOptions['model']): ModelSource {
  if (model instanceof Uint8Array) return { bytes: model.slice() };
  if (model instanceof ArrayBuffer) return { bytes: new Uint8Array(model.slice(0)) };
  if (typeof model === 'string' || model instanceof URL) {
    const base = (globalThis as { location?: { href: string } }).location?.href;
    return { url: base === undefined ? String(model) : new URL(String(model), base).href };
  }
  throw new ConfigError(`model must be a URL (string or URL) or the bytes of a safetensors file (Uint8Array, ArrayBuffer), got ${describe(model)}`);
}
