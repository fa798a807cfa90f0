// attend(source, options?): OperatorFunction<Token, Attended>, one output per token, in order.
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import { coreOperator, type AttendOptions, type AttendSource, type Attended, type Token } from './attendInternals.js';
import { attendGrouped } from './attendGrouped.js';

export interface AttendStreamOptions extends AttendOptions {
  /** scheduler for group.timeMs (default asyncScheduler; a TestScheduler in marble tests) */
  scheduler?: SchedulerLike;
}

/**
 * Attend a stream of single tokens. `source`: a config (a fresh Decoder per subscription: cold), a Decoder
 * (shared: the caller owns it and can snapshot it after an error), or `{ restore: bytes }` (a fresh Decoder
 * restored per subscription). With `options.group`, tokens are batched through decoder.chunk (see
 * attendGrouped); with `options.checkpoint`, a snapshot goes to the sink every `every` tokens.
 *
 * An invalid token errors the stream with the decoder's typed error (ShapeError, ...); the decoder state is
 * the one before that token. Outputs already emitted are never retracted.
 */
export function attend(source: AttendSource, options?: AttendStreamOptions): OperatorFunction<Token, Attended> {
  if (options?.group !== undefined) return attendGrouped(source, options);
  return coreOperator<Token, Attended>(source, options, (core, emit) => ({
    next: (token) => core.step(token, emit),
  }));
}
