// Marble tests (TestScheduler, virtual time): ordering, grouping by count and by time, completion flush,
// errors, and unsubscribe tearing down timers and buffers.
import { describe, expect, it } from 'vitest';
import { map, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Decoder, ShapeError } from '../../src/index.js';
import { attend, attendGrouped, type Token } from '../../src/stream/index.js';
import { badToken, randomSequence, smallConfig, tokensOf } from './streamHelpers.js';

const config = smallConfig();
const toks = tokensOf(randomSequence(8, 5));
const values: Record<string, Token> = { a: toks[0]!, b: toks[1]!, c: toks[2]!, d: toks[3]!, e: toks[4]!, f: toks[5]!, x: badToken() };
const pos = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5 } as const;

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A scheduler that counts its live (scheduled, not yet run or cancelled) actions. */
function counting(inner: SchedulerLike): SchedulerLike & { live: number } {
  const s = {
    live: 0,
    now: () => inner.now(),
    schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
      s.live++;
      let done = false;
      const release = (): void => {
        if (!done) {
          done = true;
          s.live--;
        }
      };
      const sub = inner.schedule<T>(function (this: SchedulerAction<T>, st?: T) {
        release();
        work.call(this, st);
      }, delay, state);
      sub.add(release);
      return sub;
    },
  };
  return s;
}

describe('attend marbles', () => {
  it('one output per token, in order, same frames; completion passes through', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b--c-d|', values).pipe(attend(config), map((o) => o.position));
      expectObservable(out).toBe('0-1--2-3|', pos);
    });
  });

  it('groups by count: a group is emitted when its count-th token arrives, one output per token', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b----c-d---e|', values).pipe(attend(config, { group: { count: 2 } }), map((o) => o.position));
      // (a group in a marble diagram spans its own width in frames: (01) at 2, (23) at 9, 4 flushed on completion at 14)
      expectObservable(out).toBe('--(01)---(23)-(4|)', pos);
    });
  });

  it('groups by time: a group closes timeMs after its first token (or at count, whichever first)', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('ab 7ms c 20ms d|', values).pipe(attendGrouped(config, { group: { timeMs: 5 } }), map((o) => o.position));
      // a@0 b@1 -> flushed at 5; c@9 -> 14; d@30, completion at 31 flushes it
      expectObservable(out).toBe('5ms (01) 5ms 2 16ms (3|)', pos);
    });
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('abc 10ms d|', values).pipe(attendGrouped(config, { group: { timeMs: 5, count: 2 } }), map((o) => o.position));
      // count closes (a,b) at 1; c@2 waits for its timer (7); d@13 flushed on completion at 14
      expectObservable(out).toBe('-(01) 2ms 2 6ms (3|)', pos);
    });
  });

  it('an invalid token errors the stream with the ShapeError when it arrives; grouped tokens before it are emitted first', () => {
    const dec = new Decoder(config);
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b-x-c|', values).pipe(attend(dec, { group: { count: 4 } }), map((o) => o.position));
      // x is refused on arrival (frame 4): the open group (a, b) runs first, c never reaches the decoder
      expectObservable(out).toBe('----(01#)', pos, new ShapeError('q must hold finite numbers, got NaN at index [0, 0]'));
    });
    expect(dec.position).toBe(2);
  });

  it('unsubscribe tears down the group timer and drops the buffer (the decoder never sees it)', () => {
    const ts = scheduler();
    const sched = counting(ts);
    const dec = new Decoder(config);
    ts.run(({ cold, expectObservable }) => {
      const out = cold('a-b 20ms c|', values).pipe(attendGrouped(dec, { group: { timeMs: 10 }, scheduler: sched }), map((o) => o.position));
      expectObservable(out, '^--!').toBe('---', pos);
    });
    expect(sched.live).toBe(0);
    expect(dec.position).toBe(0);
  });

  it('no timer is left behind after completion or error', () => {
    const ts = scheduler();
    const sched = counting(ts);
    ts.run(({ cold, expectObservable }) => {
      expectObservable(cold('ab|', values).pipe(attendGrouped(config, { group: { timeMs: 10 }, scheduler: sched }), map((o) => o.position))).toBe('--(01|)', pos);
      expectObservable(cold('a-#', values).pipe(attendGrouped(config, { group: { timeMs: 10 }, scheduler: sched }), map((o) => o.position))).toBe('--#', pos);
    });
    expect(sched.live).toBe(0);
  });
});
