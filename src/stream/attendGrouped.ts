// attendGrouped(source, { group: { count?, timeMs? } }): batch single tokens into decoder.chunk calls for
// throughput, still emitting one Attended per token, in order.
import { asyncScheduler, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import { ConfigError } from '../core/errors.js';
import { operate } from './operate.js';
import type { AttendOptions, AttendSource, Attended, Token } from './types.js';

export interface AttendGroupedOptions extends AttendOptions {
  scheduler?: SchedulerLike;
}

/**
 * A group closes when it holds `group.count` tokens or `group.timeMs` after its first token arrived,
 * whichever comes first (like bufferCount / bufferTime, except that the timer starts with a group's first
 * token, so an idle stream schedules nothing), and when the source completes. A group of one token uses
 * decoder.step. The added latency is at most timeMs; outputs equal the ungrouped ones (up to rounding).
 *
 * Each token is validated when it arrives (the checks decoder.step makes). An invalid token closes the
 * group early: the tokens before it run and are emitted, then the stream errors with that token's typed
 * error (class and message as on the single-token path) and the decoder state is the one before it.
 * Unsubscribing, or an error from the source, cancels the timer and drops the open group (never fed).
 */
export function attendGrouped(source: AttendSource, options: AttendGroupedOptions): OperatorFunction<Token, Attended> {
  const group = options.group;
  if (group === undefined) throw new ConfigError('attendGrouped needs options.group { count?, timeMs? }');
  const count = group.count ?? Infinity;
  const timeMs = group.timeMs;
  const scheduler = options.scheduler ?? asyncScheduler;
  return operate<Token, Attended>(source, options, ({ core, emit, serial }) => {
    let timer: Subscription | null = null;
    /** counts closed groups: a timer that fired for an earlier group does nothing */
    let closed = 0;
    const cancelTimer = (): void => {
      timer?.unsubscribe();
      timer = null;
    };
    const run = (): void => {
      cancelTimer();
      closed++;
      core.runGroup(emit);
      core.checkpoints.ifDue();
    };
    return {
      next: (token) => {
        let size: number;
        try {
          size = core.add(token);
        } catch (error) {
          run();
          throw error;
        }
        if (size >= count) run();
        else if (size === 1 && timeMs !== undefined) {
          const mine = closed;
          timer = scheduler.schedule(() => {
            timer = null;
            serial(() => {
              if (closed === mine) run();
            });
          }, timeMs);
        }
      },
      flush: run,
      teardown: () => {
        cancelTimer();
        core.dropGroup();
      },
    };
  });
}
