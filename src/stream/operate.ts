// The one Observable wrapper the rx operators share (attendAsync uses AttendCore directly).
//
// Everything that reaches the decoder (source values, completion and errors, group timers, checkpoint
// triggers) runs as a task on one serial queue per subscription. A task that starts while another runs (a
// subscriber feeding tokens back into the source from inside `next`, as a generation loop does) waits for
// it, so outputs always leave in position order and a checkpoint always follows the outputs it covers.
// Unsubscribing is immediate: queued tasks and the open group are dropped, and no sink is called again.
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { AttendCore } from './attendCore.js';
import { checkOptions, resolveSource } from './options.js';
import type { AttendOptions, AttendSource } from './types.js';

/** What an operator does with each input. */
export interface OperatorHooks<I> {
  next(value: I): void;
  /** before completing (e.g. run a partial group); may emit or throw */
  flush?(): void;
  /** unsubscribe / error / completion: release timers and buffers */
  teardown?(): void;
}

export interface OperatorContext<O> {
  core: AttendCore;
  /** deliver one output (dropped after teardown) */
  emit(out: O): void;
  /** run `task` on this subscription's serial queue (timers go through it); a throw errors the stream */
  serial(task: () => void): void;
}

/**
 * Build an operator around an AttendCore created per subscription (a shared Decoder stays shared). Errors
 * thrown by hooks (the decoder's typed errors) error the stream, and no further input reaches the decoder;
 * completion waits for pending checkpoint writes; a sink error errors the stream.
 */
export function operate<I, O>(source: AttendSource, options: AttendOptions | undefined, setup: (ctx: OperatorContext<O>) => OperatorHooks<I>): OperatorFunction<I, O> {
  const opts = checkOptions(options);
  return (input: Observable<I>) =>
    new Observable<O>((subscriber) => {
      let core: AttendCore;
      try {
        core = new AttendCore(resolveSource(source), opts);
      } catch (error) {
        subscriber.error(error);
        return;
      }
      let stopped = false;
      let hooks: OperatorHooks<I> | null = null;
      const tasks: (() => void)[] = [];
      let running = false;
      const stop = (): void => {
        if (stopped) return;
        stopped = true;
        tasks.length = 0;
        hooks?.teardown?.();
        core.dispose();
      };
      const fail = (error: unknown): void => {
        if (stopped) return;
        stop();
        subscriber.error(error);
      };
      const serial = (task: () => void): void => {
        if (stopped) return;
        tasks.push(task);
        if (running) return;
        running = true;
        try {
          while (!stopped) {
            const next = tasks.shift();
            if (next === undefined) break;
            try {
              next();
            } catch (error) {
              fail(error);
            }
          }
        } finally {
          running = false;
        }
      };
      const emit = (out: O): void => {
        if (!stopped) subscriber.next(out);
      };
      core.checkpoints.onError = fail;
      hooks = setup({ core, emit, serial });
      const h = hooks;

      // registered before subscribing upstream, so an unsubscribe during a synchronous source stops at once
      let triggerSub: Subscription | undefined;
      let inputSub: Subscription | undefined;
      subscriber.add(() => {
        stop();
        triggerSub?.unsubscribe();
        inputSub?.unsubscribe();
      });
      triggerSub = opts.checkpoint?.trigger?.subscribe({
        next: () => serial(() => core.checkpoints.now()),
        error: (error: unknown) => serial(() => fail(error)),
      });
      inputSub = input.subscribe({
        next: (value) => serial(() => h.next(value)),
        error: (error: unknown) => serial(() => fail(error)),
        complete: () =>
          serial(() => {
            h.flush?.();
            if (stopped) return;
            h.teardown?.();
            core.checkpoints.whenIdle(() => {
              if (stopped) return;
              const failed = core.checkpoints.failed;
              stop();
              if (failed !== null) subscriber.error(failed.error);
              else subscriber.complete();
            });
          }),
      });
      if (stopped) {
        triggerSub?.unsubscribe();
        inputSub.unsubscribe();
      }
    });
}
