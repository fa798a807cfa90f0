// Early unsubscribe (take(n), unsubscribe(), breaking out of attendAsync) with a shared decoder. The rule
// (src/stream/README.md): a group is consumed whole when it runs; a group still open is never fed; tokens
// after the teardown are never fed; and no checkpoint sink is called after the teardown.
import { describe, expect, it } from 'vitest';
import { Subject, concat, from, map, take, throwError } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Decoder } from '../../src/index.js';
import { attend, attendAsync, attendChunks, type Attended, type Token } from '../../src/stream/index.js';
import { chunksOf, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows } from './streamHelpers.js';

const config = smallConfig();
const seq = randomSequence(12, 17);
const tokens = tokensOf(seq);
const want = wholeRows(config, seq);
const values: Record<string, Token> = { a: tokens[0]!, b: tokens[1]!, c: tokens[2]!, d: tokens[3]!, e: tokens[4]!, f: tokens[5]! };
const pos = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5 } as const;

function scheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

/** A sink that records positions; each call returns a promise the test resolves. */
function heldSink(): { sink: (b: Uint8Array, p: number) => Promise<void>; calls: number[]; release: () => void } {
  const calls: number[] = [];
  const pending: (() => void)[] = [];
  return {
    calls,
    sink: (_b, p) => {
      calls.push(p);
      return new Promise<void>((resolve) => pending.push(resolve));
    },
    release: () => pending.splice(0).forEach((r) => r()),
  };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('early unsubscribe (marbles)', () => {
  it('take(1) in the middle of a group: that group was consumed whole, nothing after it is fed, no sink runs', () => {
    const dec = new Decoder(config);
    const calls: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b-c-d-e|', values).pipe(attend(dec, { group: { count: 2 }, checkpoint: { every: 1, sink: (_b, p) => void calls.push(p) } }), take(1), map((o) => o.position));
      expectObservable(out).toBe('--(0|)', pos);
    });
    expect(dec.position).toBe(2);
    expect(calls).toEqual([]);
  });

  it('take(3): the checkpoint of the first group (delivered) runs, the one of the group cut short does not', () => {
    const dec = new Decoder(config);
    const calls: number[] = [];
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b-c-d-e-f|', values).pipe(attend(dec, { group: { count: 2 }, checkpoint: { every: 2, sink: (_b, p) => void calls.push(p) } }), take(3), map((o) => o.position));
      expectObservable(out).toBe('--(01)(2|)', pos);
    });
    expect(dec.position).toBe(4);
    expect(calls).toEqual([2]);
  });

  it('unsubscribing while a group is open: its tokens are never fed', () => {
    const dec = new Decoder(config);
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold('a-b-c-d-e|', values).pipe(attend(dec, { group: { count: 2 } }), map((o) => o.position));
      expectObservable(out, '^-----!').toBe('--(01)', pos);
    });
    expect(dec.position).toBe(2); // c arrived at frame 4 and was dropped with its open group
  });

  it('without grouping, take(n) consumes exactly n tokens', () => {
    const dec = new Decoder(config);
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('abcdef|', values).pipe(attend(dec), take(2), map((o) => o.position))).toBe('0(1|)', pos);
    });
    expect(dec.position).toBe(2);
  });
});

describe('early unsubscribe (synchronous sources and subjects)', () => {
  it('take(1) on a synchronous source: the rest of the source never reaches the decoder', () => {
    for (const group of [undefined, { count: 2 }, { count: 5 }]) {
      const dec = new Decoder(config);
      const calls: number[] = [];
      const out: Attended[] = [];
      from(tokens)
        .pipe(attend(dec, { ...(group ? { group } : {}), checkpoint: { every: 1, sink: (_b, p) => void calls.push(p) } }), take(1))
        .subscribe((a) => out.push(a));
      expectRowsClose(out, want.slice(0, 1));
      expect(dec.position).toBe(group?.count ?? 1);
      expect(calls).toEqual([]);
    }
  });

  it('attendChunks: take(1) stops at the first chunk', () => {
    const dec = new Decoder(config);
    const got: number[] = [];
    from(chunksOf(seq, [3, 4, 5])).pipe(attendChunks(dec), take(1)).subscribe((c) => got.push(c.position));
    expect(got).toEqual([0]);
    expect(dec.position).toBe(3);
  });

  it('a subscriber that feeds tokens and then unsubscribes: the queued tokens are never fed', () => {
    const dec = new Decoder(config);
    const input = new Subject<Token>();
    const got: number[] = [];
    const sub = input.pipe(attend(dec, { group: { count: 2 } })).subscribe((a) => {
      got.push(a.position);
      input.next(tokens[2]!);
      input.next(tokens[3]!);
      sub.unsubscribe();
    });
    input.next(tokens[0]!);
    input.next(tokens[1]!);
    expect(got).toEqual([0]);
    expect(dec.position).toBe(2);
    expect(input.observed).toBe(false);
  });

  it('no sink call after unsubscribe: an async write in flight finishes, the queued ones are dropped', async () => {
    const dec = new Decoder(config);
    const held = heldSink();
    const input = new Subject<Token>();
    const sub = input.pipe(attend(dec, { checkpoint: { every: 2, sink: held.sink } })).subscribe();
    tokens.slice(0, 6).forEach((t) => input.next(t));
    expect(held.calls).toEqual([2]); // 4 and 6 wait behind the write in flight
    sub.unsubscribe();
    held.release();
    await tick();
    held.release();
    await tick();
    expect(held.calls).toEqual([2]);
    expect(dec.position).toBe(6);
  });

  it('no sink call after an error (from the source or a token)', async () => {
    for (const tail of [throwError(() => new Error('upstream')), from([{ q: null } as unknown as Token])]) {
      const held = heldSink();
      let error: unknown = null;
      concat(from(tokens.slice(0, 6)), tail)
        .pipe(attend(config, { checkpoint: { every: 2, sink: held.sink } }))
        .subscribe({ error: (e: unknown) => (error = e) });
      expect(error).toBeInstanceOf(Error);
      held.release();
      await tick();
      held.release();
      await tick();
      expect(held.calls).toEqual([2]);
    }
  });

  it('a time-grouped stream unsubscribed before its timer fires: nothing fed, no timer left', async () => {
    const dec = new Decoder(config);
    const input = new Subject<Token>();
    const sub = input.pipe(attend(dec, { group: { timeMs: 5 } })).subscribe();
    input.next(tokens[0]!);
    sub.unsubscribe();
    await new Promise((r) => setTimeout(r, 15));
    expect(dec.position).toBe(0);
  });
});

describe('early exit from attendAsync', () => {
  it('break in the middle of a group: that group was consumed, nothing more is pulled, no checkpoint after', async () => {
    const dec = new Decoder(config);
    const calls: number[] = [];
    let pulled = 0;
    const source = (function* () {
      for (const t of tokens) {
        pulled++;
        yield t;
      }
    })();
    const got: Attended[] = [];
    for await (const a of attendAsync(dec, source, { group: { count: 3 }, checkpoint: { every: 1, sink: (_b, p) => void calls.push(p) } })) {
      got.push(a);
      if (a.position === 4) break;
    }
    expectRowsClose(got, want.slice(0, 5));
    expect(dec.position).toBe(6);
    expect(pulled).toBe(6);
    expect(calls).toEqual([3]); // after the first group (delivered); none for the group cut short
  });
});
