// attend(source, options?): OperatorFunction<Token, Attended>, one output per token, in order.
import type { OperatorFunction, SchedulerLike } from 'rxjs';
import { operate } from './operate.js';
import { attendGrouped } from './attendGrouped.js';
import type { AttendOptions, AttendSource, Attended, Token } from './types.js';

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
 * the one before that token. Outputs already emitted are never retracted. Tokens fed back into the source
 * from inside `next` are processed after the current one: outputs always arrive in position order.
 */
export function attend(source: AttendSource, options?: AttendStreamOptions): OperatorFunction<Token, Attended> {
  if (options?.group !== undefined) return attendGrouped(source, options);
  return operate<Token, Attended>(source, options, ({ core, emit }) => ({
    next: (token) => {
      core.step(token, emit);
      core.checkpoints.ifDue();
    },
  }));
}
