// Text generation as RxJS: fromGeneration(session, prompt, options) is an Observable of generated tokens
// (subscribing starts generation, unsubscribing stops it between two tokens), and generateEach(session,
// options) maps a stream of prompts to their generations, one after the other on the same session.
// Typed structurally (any object with a `generate` like toeplitz-attention/model's Session), so this folder
// does not import the model: rxjs stays here, the model stays free of rxjs.
import { Observable, concatMap, type OperatorFunction } from 'rxjs';
import { ConfigError, describe } from '../core/errors.js';

/** What generation needs from a session (toeplitz-attention/model's Session has it). */
export interface GeneratingSession<T> {
  generate(prompt: string | ArrayLike<number>, options: { maxTokens: number; stop?: string | readonly string[]; signal?: AbortSignal }): AsyncIterable<T>;
}

export interface GenerationOptions {
  maxTokens: number;
  stop?: string | readonly string[];
  /** aborts like unsubscribing, but the observable errors with signal.reason */
  signal?: AbortSignal;
}

/** A turn of the event loop: every pending microtask (an async consumer's unsubscribe) runs before it ends. */
function nextTurn(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  if (typeof MessageChannel === 'function') {
    // browsers: not clamped to 4 ms like nested setTimeout
    return new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        resolve();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function checkArguments(session: unknown, options: unknown): void {
  if (session === null || typeof session !== 'object' || typeof (session as { generate?: unknown }).generate !== 'function') {
    throw new ConfigError(`session must have a generate(prompt, options) method, got ${describe(session)}`);
  }
  if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { maxTokens, stop?, signal? }, got ${describe(options)}`);
  const signal = (options as { signal?: unknown }).signal;
  if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof (signal as AbortSignal).addEventListener !== 'function' || typeof (signal as AbortSignal).aborted !== 'boolean')) {
    throw new ConfigError(`signal must be an AbortSignal, got ${describe(signal)}`);
  }
}

/**
 * An Observable of the tokens `session.generate(prompt, options)` yields. Cold: each subscription runs a
 * generation. Unsubscribing (take, takeUntil, or later: from a microtask or a promise chain) stops before the
 * next token is sampled: the session holds exactly the tokens emitted, and is free again once the observable
 * has finalized. Bad arguments are a ConfigError at the call; the session's own checks error the observable.
 */
export function fromGeneration<T>(session: GeneratingSession<T>, prompt: string | ArrayLike<number>, options: GenerationOptions): Observable<T> {
  checkArguments(session, options);
  return new Observable<T>((subscriber) => {
    const stop = new AbortController();
    const outer = options.signal;
    const forward = (): void => stop.abort(outer!.reason);
    outer?.addEventListener('abort', forward, { once: true });
    if (outer?.aborted) forward();
    (async () => {
      let it: AsyncIterator<T> | undefined;
      try {
        it = session.generate(prompt, { maxTokens: options.maxTokens, ...(options.stop === undefined ? {} : { stop: options.stop }), signal: stop.signal })[Symbol.asyncIterator]();
        for (;;) {
          const r = await it.next();
          if (r.done) {
            it = undefined;
            break;
          }
          subscriber.next(r.value);
          // an async consumer unsubscribes a microtask or more after next: give it a turn before another token is
          // sampled (and fed), else the session would run one token past what was emitted
          if (!subscriber.closed) await nextTurn();
          if (subscriber.closed) break;
        }
        subscriber.complete();
      } catch (e) {
        // after an unsubscribe nobody listens; an outer abort or a failure is the subscriber's error
        if (!subscriber.closed) subscriber.error(e);
        it = undefined; // a generator that threw has finished
      } finally {
        outer?.removeEventListener('abort', forward);
        // the session was freed by the abort already; this lets the generator finish
        await it?.return?.().catch(() => undefined);
      }
    })();
    return () => stop.abort(new Error('unsubscribed'));
  });
}

/** Each prompt of the source generates in turn on `session` (concatMap: prompts queue while one runs). */
export function generateEach<T>(session: GeneratingSession<T>, options: GenerationOptions): OperatorFunction<string | ArrayLike<number>, T> {
  return concatMap((prompt) => fromGeneration(session, prompt, options));
}
