// A session host: one model, one store connection, and the live durable sessions pinned to it (an LRU
// bounded by maxLive; idle ones are closed so their lease is free for other replicas). It runs inside a
// worker thread (worker.ts), or in the main thread with workers: 0. It speaks the plain-data protocol of
// protocol.ts: requests in, replies out through `post`.
//
// Scheduling: every generation is a Run that takes one token per event-loop turn (setImmediate between
// tokens), so all generations of a host advance round-robin and none starves behind a long one. A Run
// feeds its listeners (the HTTP streams); when the last one leaves, it stops at the next token and pauses
// (no CPU) for pauseMs, so a client that reconnects continues it; then it is ended where it stopped.
import { randomBytes } from 'node:crypto';
import { loadModel, type Model, type GeneratedToken } from '../model/index.js';
import { loadModelFile } from '../model/file.js';
import { openSession, openStore, prepareImport, SessionError, writeImport, type DurableSession, type SessionStore } from '../sessions/index.js';
import { errorBody, HttpError, type ErrorBody } from './errors.js';
import { newHistogram, observe } from './metrics.js';
import type { HostConfig, HostStats, Reply, Request, SamplingBody, Usage } from './protocol.js';

type Post = (reply: Reply) => void;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Listener {
  from: number;
  post: Post;
  /** its socket is full: the generation waits (without the pause timeout) until it drains */
  held?: boolean;
}

interface Live {
  id: string;
  s: DurableSession;
  run: Run | null;
  openedAt: number;
  usedAt: number;
  /** the checkpoint whose store write we wait to observe */
  writing: { writeMs: number } | null;
  seen: object | null;
}

/** One generation being streamed: its tokens so far, its listeners, and the loop that pulls its tokens. */
class Run {
  /** the generation's tokens so far, oldest first */
  readonly buf: GeneratedToken[] = [];
  readonly listeners = new Map<number, Listener>();
  private stopAsked = false;
  private abortBody: ErrorBody | null = null;
  private wake: (() => void) | null = null;
  finished: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: SessionHost,
    private readonly it: AsyncGenerator<GeneratedToken, void, undefined>,
    private readonly promptTokens: number,
    /** where the generation's limit ends it (maxTokens), when known */
    private readonly lastPosition: number | null,
    private readonly pauseMs: number,
    private readonly live: Live | null,
  ) {}

  /** Pull the first token (the input is durable once it arrives), then go on in the background. */
  async begin(): Promise<void> {
    const first = await this.it.next();
    this.finished = this.pump(first);
  }

  add(rid: number, l: Listener): void {
    l.post({ rid, kind: 'start', from: l.from });
    for (const t of this.buf) if (t.position >= l.from) l.post({ rid, kind: 'token', token: t.token, text: t.text, position: t.position });
    this.listeners.set(rid, l);
    this.wake?.();
  }

  remove(rid: number): void {
    this.listeners.delete(rid);
    if (this.listeners.size === 0 || !this.heldBack()) this.wake?.();
  }

  hold(rid: number, held: boolean): void {
    const l = this.listeners.get(rid);
    if (l === undefined) return;
    l.held = held;
    if (!held) this.wake?.();
  }

  /** Some listener can take tokens now (none held), or there is none at all. */
  private heldBack(): boolean {
    if (this.listeners.size === 0) return false;
    for (const l of this.listeners.values()) if (!l.held) return false;
    return true;
  }

  /** Wait until a held listener drains, leaves, or a stop is asked. */
  private drained(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = null;
        resolve();
      };
    });
  }

  /** End it where it stands (journaled as an early end) and wait for that. */
  async stop(): Promise<void> {
    this.stopAsked = true;
    this.wake?.();
    await this.finished;
  }

  /** Stop feeding its listeners with an error (the session was deleted); the generator is dropped. */
  abort(body: ErrorBody): void {
    this.abortBody = body;
    this.stopAsked = true;
    this.wake?.();
  }

  private emit(t: GeneratedToken): void {
    this.buf.push(t);
    this.host.tokens++;
    for (const [rid, l] of this.listeners) if (t.position >= l.from) l.post({ rid, kind: 'token', token: t.token, text: t.text, position: t.position });
  }

  /** Wait for a listener; false when none came within pauseMs (or a stop was asked). */
  private paused(): Promise<boolean> {
    if (this.pauseMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, this.pauseMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(!this.stopAsked);
      };
    });
  }

  private async pump(first: IteratorResult<GeneratedToken, void>): Promise<void> {
    let r = first;
    let ended = false;
    let failure: ErrorBody | null = null;
    try {
      while (!r.done) {
        this.emit(r.value);
        if (this.live !== null) this.host.observeCheckpoint(this.live);
        // one token per turn: every other generation of this host (and its messages) gets its turn
        await turn();
        // nobody listening: pause (ended after pauseMs); every listener's socket full: wait for one to drain
        while (!this.stopAsked) {
          if (this.listeners.size === 0) {
            if (!(await this.paused())) this.stopAsked = true;
          } else if (this.heldBack()) await this.drained();
          else break;
        }
        if (this.stopAsked) {
          if (this.abortBody === null) await this.it.return(undefined);
          ended = true;
          break;
        }
        r = await this.it.next();
      }
    } catch (e) {
      failure = errorBody(e);
      if (failure.status >= 500) this.host.log(e);
    }
    if (this.live !== null && this.live.run === this) {
      this.live.run = null;
      this.live.usedAt = Date.now();
    }
    const last = this.buf.length === 0 ? null : this.buf[this.buf.length - 1]!.position;
    const usage: Usage = {
      promptTokens: this.promptTokens,
      completionTokens: this.buf.length,
      position: last ?? 0,
      finishReason: ended ? 'ended' : this.lastPosition === null || last === this.lastPosition ? 'length' : 'stop',
    };
    if (this.live !== null) usage.position = this.live.s.position;
    const error = this.abortBody ?? failure;
    for (const [rid, l] of this.listeners) l.post(error !== null ? { rid, kind: 'error', error } : { rid, kind: 'done', usage });
    this.listeners.clear();
  }
}

function randomOwner(): string {
  return randomBytes(8).toString('hex');
}

export class SessionHost {
  private model!: Model;
  private store!: SessionStore;
  private readonly live = new Map<string, Live>();
  /** per session id: the tail of its chain of operations (create, open, close, delete, import) */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** streams of this host by request id */
  private readonly streams = new Map<number, Run>();
  private sweeper: ReturnType<typeof setInterval> | null = null;
  tokens = 0;
  private readonly snapshotHist = newHistogram();
  private readonly writeHist = newHistogram();
  log: (e: unknown) => void = (e) => console.error('toeplitz-attention serve:', e);

  constructor(private readonly config: HostConfig) {}

  async start(): Promise<void> {
    const m = this.config.model;
    this.model = typeof m === 'string' ? loadModelFile(m) : loadModel(m);
    this.store = await openStore(this.config.store);
    this.sweeper = setInterval(() => void this.sweep().catch(this.log), Math.max(50, Math.floor(this.config.idleMs / 2)));
    this.sweeper.unref();
  }

  /** Handle one request; replies go through `post` (one, or a stream of them). Never throws. */
  handle(req: Request, post: Post): void {
    void this.dispatch(req, post).catch((e: unknown) => {
      const error = errorBody(e);
      if (error.status >= 500) this.log(e);
      post({ rid: req.rid, kind: 'error', error });
    });
  }

  private async dispatch(req: Request, post: Post): Promise<void> {
    const ok = (value: unknown): void => post({ rid: req.rid, kind: 'ok', value });
    switch (req.op) {
      case 'create':
        return ok(await this.create(req.id, req.prompt, req.sampling));
      case 'info':
        return ok(await this.info(req.id));
      case 'delete':
        return ok(await this.remove(req.id));
      case 'snapshot':
        return ok(await this.snapshot(req.id));
      case 'import':
        return ok(await this.import(req.id, req.bytes));
      case 'stats':
        return ok(await this.stats(req.list));
      case 'close':
        await this.close();
        return ok(null);
      case 'generate':
        return this.generate(req, post);
      case 'resume':
        return this.resume(req, post);
      case 'complete':
        return this.complete(req, post);
      case 'cancel': {
        const run = this.streams.get(req.target);
        this.streams.delete(req.target);
        run?.remove(req.target);
        return;
      }
      case 'hold':
        this.streams.get(req.target)?.hold(req.target, req.held);
        return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Live sessions

  private lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }

  /** The live session `id`, opened from the store when needed (404 when the store has none). */
  private open(id: string, waitMs: number): Promise<Live> {
    return this.lock(id, async () => {
      const have = this.live.get(id);
      if (have !== undefined) {
        this.touch(have);
        return have;
      }
      if ((await this.store.load(id)) === null) throw new HttpError(404, 'not-found', `no session ${id}`);
      const s = await openSession(this.model, this.store, id, { checkpointEvery: this.config.checkpointEvery, leaseMs: this.config.leaseMs, wait: waitMs });
      return this.adopt(s);
    });
  }

  private adopt(s: DurableSession): Live {
    const now = Date.now();
    const live: Live = { id: s.id, s, run: null, openedAt: now, usedAt: now, writing: null, seen: s.lastCheckpoint };
    this.live.set(s.id, live);
    this.evict();
    return live;
  }

  private touch(live: Live): void {
    live.usedAt = Date.now();
    this.live.delete(live.id);
    this.live.set(live.id, live);
  }

  /** Close the least recently used sessions without a generation beyond maxLive. */
  private evict(): void {
    let over = this.live.size - this.config.maxLive;
    for (const live of this.live.values()) {
      if (over <= 0) break;
      if (live.run !== null) continue;
      over--;
      this.closeLive(live).catch(this.log);
    }
  }

  private closeLive(live: Live): Promise<void> {
    return this.lock(live.id, async () => {
      if (this.live.get(live.id) !== live || live.run !== null) return;
      this.live.delete(live.id);
      await live.s.close().catch((e: unknown) => {
        if (!(e instanceof SessionError && e.code === 'fenced')) this.log(e);
        live.s.abandon();
      });
    });
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const live of [...this.live.values()]) if (live.run === null && now - live.usedAt >= this.config.idleMs) await this.closeLive(live);
  }

  /** Record the latest checkpoint's on-path time, and its store write time once it landed. */
  observeCheckpoint(live: Live): void {
    const c = live.s.lastCheckpoint;
    if (live.writing !== null && Number.isFinite(live.writing.writeMs)) {
      observe(this.writeHist, live.writing.writeMs / 1000);
      live.writing = null;
    }
    if (c !== null && c !== live.seen) {
      live.seen = c;
      observe(this.snapshotHist, c.snapshotMs / 1000);
      live.writing = c;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Operations

  private async create(id: string, prompt: string | null, sampling: SamplingBody): Promise<{ id: string; position: number }> {
    return this.lock(id, async () => {
      if ((await this.store.load(id)) !== null) throw new HttpError(409, 'exists', `session ${id} exists already`);
      const s = await openSession(this.model, this.store, id, { ...sampling, checkpointEvery: this.config.checkpointEvery, leaseMs: this.config.leaseMs });
      try {
        if (prompt !== null && prompt.length > 0) await s.feed(new TextEncoder().encode(prompt), { lastOnly: true });
      } catch (e) {
        await s.close().catch(() => s.abandon());
        await this.store.delete(id).catch(() => undefined);
        throw e;
      }
      this.adopt(s);
      return { id, position: s.position };
    });
  }

  private async info(id: string): Promise<object> {
    const live = await this.open(id, 0);
    const s = live.s;
    return {
      id,
      position: s.position,
      stateBytes: s.snapshot().length,
      options: s.sampling,
      generating: live.run !== null && live.run.listeners.size > 0,
      pending: s.pending(),
      times: { openedAt: new Date(live.openedAt).toISOString(), lastUsedAt: new Date(live.usedAt).toISOString() },
    };
  }

  private async snapshot(id: string): Promise<Uint8Array> {
    return (await this.open(id, 0)).s.snapshot();
  }

  private async remove(id: string): Promise<{ id: string; deleted: true }> {
    return this.lock(id, async () => {
      const live = this.live.get(id);
      if (live !== undefined) {
        live.run?.abort({ status: 404, code: 'deleted', message: `session ${id} was deleted` });
        live.run = null;
        live.s.abandon();
        this.live.delete(id);
      } else if ((await this.store.load(id)) === null) {
        throw new HttpError(404, 'not-found', `no session ${id}`);
      }
      await this.store.delete(id);
      return { id, deleted: true as const };
    });
  }

  /** Replace (or create) session `id` with a model session snapshot, validated by model.restore first. */
  private async import(id: string, bytes: Uint8Array): Promise<{ id: string; position: number }> {
    const prepared = prepareImport(this.model, bytes); // a typed error (400) for anything malformed or foreign
    return this.lock(id, async () => {
      const live = this.live.get(id);
      if (live !== undefined) {
        if (live.run !== null && live.run.listeners.size > 0) throw new HttpError(409, 'busy', `session ${id} is generating; wait for its end or delete it first`);
        live.run?.abort({ status: 409, code: 'replaced', message: `session ${id} was replaced by an imported snapshot` });
        live.s.abandon();
        this.live.delete(id);
      }
      await writeImport(this.store, id, prepared, { replace: true, leaseMs: this.config.leaseMs });
      return { id, position: prepared.position };
    });
  }

  private async stats(list: boolean): Promise<HostStats> {
    return {
      tokens: this.tokens,
      live: this.live.size,
      running: new Set(this.streams.values()).size,
      stored: list ? (await this.store.list()).length : null,
      checkpointSnapshot: this.snapshotHist,
      checkpointWrite: this.writeHist,
    };
  }

  /** Start `run` as live.run; a session found fenced (taken over, deleted) or closed is dropped from memory. */
  private async begin(live: Live, run: Run): Promise<void> {
    live.run = run;
    try {
      await run.begin();
    } catch (e) {
      live.run = null;
      if (e instanceof SessionError && (e.code === 'fenced' || e.code === 'closed') && this.live.get(live.id) === live) {
        this.live.delete(live.id);
        live.s.abandon();
      }
      throw e;
    }
  }

  private listen(rid: number, run: Run, from: number, post: Post): void {
    this.streams.set(rid, run);
    run.add(rid, {
      from,
      post: (reply) => {
        if (reply.kind === 'done' || reply.kind === 'error') this.streams.delete(rid);
        post(reply);
      },
    });
  }

  private async generate(req: Request & { op: 'generate' }, post: Post): Promise<void> {
    const live = await this.open(req.id, 0);
    if (live.run !== null) {
      if (live.run.listeners.size > 0) throw new HttpError(409, 'busy', `session ${req.id} is generating for another request; reconnect to it with GET /v1/sessions/${req.id}/generate`);
      await live.run.stop();
    }
    if (live.run !== null) throw new HttpError(409, 'busy', `session ${req.id} is generating for another request`);
    const prompt = new TextEncoder().encode(req.prompt);
    const maxTokens = Math.min(req.maxTokens, this.config.maxTokens);
    const it = live.s.generate(prompt, { maxTokens, stop: req.stop });
    const end = live.s.position + prompt.length + maxTokens;
    const run = new Run(this, it, prompt.length, end, this.config.pauseMs, live);
    await this.begin(live, run);
    this.listen(req.rid, run, 0, post);
  }

  private async resume(req: Request & { op: 'resume' }, post: Post): Promise<void> {
    const live = await this.open(req.id, this.config.resumeWaitMs);
    let run = live.run;
    if (run === null) {
      const p = live.s.pending();
      const it = live.s.resume();
      run = new Run(this, it, 0, p === null ? null : p.to, this.config.pauseMs, live);
      await this.begin(live, run);
    }
    this.listen(req.rid, run, req.from, post);
  }

  private async complete(req: Request & { op: 'complete' }, post: Post): Promise<void> {
    const session = this.model.session(req.sampling);
    const prompt = new TextEncoder().encode(req.prompt);
    if (prompt.length === 0) throw new HttpError(400, 'invalid', 'prompt must be a non-empty string');
    const maxTokens = Math.min(req.maxTokens, this.config.maxTokens);
    const it = session.generate(prompt, { maxTokens, stop: req.stop });
    const run = new Run(this, it, prompt.length, prompt.length + maxTokens, 0, null);
    await run.begin();
    this.listen(req.rid, run, 0, post);
  }

  async close(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const live of [...this.live.values()]) {
      if (live.run !== null) {
        // a planned stop is not a client's early end: leave the generation pending for another replica
        live.run.abort({ status: 503, code: 'shutdown', message: 'the server is shutting down; reconnect to continue' });
        live.s.abandon();
        this.live.delete(live.id);
      } else {
        await this.closeLive(live);
      }
    }
    await this.store.close().catch(() => undefined);
  }
}
