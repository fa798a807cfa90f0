// Text generation as RxJS: fromGeneration(session, prompt, options) is an Observable of generated tokens
// (subscribing starts generation, unsubscribing stops it between two tokens), and generateEach(session,
// options) maps a stream of prompts to their generations, one after the other on the same session.
// Typed structurally (any object with a `generate` like toeplitz-attention/model's Session), so this folder
// does not import the model: rxjs stays here, the model stays free of rxjs.
import { Observable, concatMap, type OperatorFunction } from 'rxjs';

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

/**
 * An Observable of the tokens `session.generate(prompt, options)` yields. Cold: each subscription runs a
 * generation. Unsubscribing (take, takeUntil, ...) stops before the next token is sampled: the session
 * holds exactly the tokens emitted, and is free again once the observable has finalized.
 */
export function fromGeneration<T>(session: GeneratingSession<T>, prompt: string | ArrayLike<number>, options: GenerationOptions): Observable<T> {
  return new Observable<T>((subscriber) => {
    const stop = new AbortController();
    const outer = options.signal;
    const forward = (): void => stop.abort(outer!.reason);
    outer?.addEventListener('abort', forward, { once: true });
    if (outer?.aborted) forward();
    (async () => {
      try {
        for await (const token of session.generate(prompt, { maxTokens: options.maxTokens, ...(options.stop === undefined ? {} : { stop: options.stop }), signal: stop.signal })) {
          subscriber.next(token);
          if (subscriber.closed) break; // unsubscribed inside next: sample no further token
        }
        subscriber.complete();
      } catch (e) {
        // after an unsubscribe nobody listens; an outer abort or a failure is the subscriber's error
        if (!subscriber.closed) subscriber.error(e);
      } finally {
        outer?.removeEventListener('abort', forward);
      }
    })();
    return () => stop.abort(new Error('unsubscribed'));
  });
}

/** Each prompt of the source generates in turn on `session` (concatMap: prompts queue while one runs). */
export function generateEach<T>(session: GeneratingSession<T>, options: GenerationOptions): OperatorFunction<string | ArrayLike<number>, T> {
  return concatMap((prompt) => fromGeneration(session, prompt, options));
}
