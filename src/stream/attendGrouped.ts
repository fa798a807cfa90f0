// attendGrouped(source, { group: { count?, timeMs? } }): batch single tokens into decoder.chunk calls for
// throughput, still emitting one Attended per token, in order.
import { asyncScheduler, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { ConfigError } from '../core/errors.js';
import { coreOperator, type AttendOptions, type AttendSource, type Attended, type Token } from './attendInternals.js';

export interface AttendGroupedOptions extends AttendOptions {
  scheduler?: SchedulerLike;
}

/**
 * A group closes when it holds `group.count` tokens or `group.timeMs` after its first token arrived,
 * whichever comes first (like bufferCount / bufferTime, except that the timer starts with a group's first
 * token, so an idle stream schedules nothing), and when the source completes. A group of one token uses
 * decoder.step. The added latency is at most timeMs; outputs equal the ungrouped ones (up to rounding).
 *
 * If a group holds an invalid token, the tokens before it are processed and emitted, then the stream errors
 * with that token's typed error and the decoder state is the one before it.
 * Unsubscribing, or an error from the source, cancels the timer and drops the buffered (unprocessed) tokens.
 */
export function attendGrouped(source: AttendSource, options: AttendGroupedOptions): OperatorFunction<Token, Attended> {
  const group = options.group;
  if (group === undefined) throw new ConfigError('attendGrouped needs options.group { count?, timeMs? }');
  const count = group.count ?? Infinity;
  const timeMs = group.timeMs;
  const scheduler = options.scheduler ?? asyncScheduler;
  return coreOperator<Token, Attended>(source, options, (core, emit, fail) => {
    let buffer: Token[] = [];
    let timer: Subscription | null = null;
    const cancelTimer = (): void => {
      timer?.unsubscribe();
      timer = null;
    };
    const flush = (): void => {
      cancelTimer();
      const tokens = buffer;
      buffer = [];
      core.group(tokens, emit);
    };
    return {
      next: (token) => {
        buffer.push(token);
        if (buffer.length >= count) flush();
        else if (buffer.length === 1 && timeMs !== undefined) {
          timer = scheduler.schedule(() => {
            timer = null;
            try {
              flush();
            } catch (error) {
              fail(error);
            }
          }, timeMs);
        }
      },
      flush,
      teardown: () => {
        cancelTimer();
        buffer = [];
      },
    };
  });
}
