// Re-entrancy: a subscriber that feeds tokens back into the source from inside `next` (as a generation
// loop does) gets its outputs in position order, equal to attention() of the whole sequence, whatever the
// grouping; completion and checkpoint triggers sent from inside `next` wait their turn too.
import { describe, expect, it } from 'vitest';
import { Subject } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { Decoder } from '../../src/index.js';
import { attend, attendChunks, type Attended, type Token } from '../../src/stream/index.js';
import { chunksOf, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows } from './streamHelpers.js';

const config = smallConfig();
const seq = randomSequence(20, 13);
const tokens = tokensOf(seq);
const want = wholeRows(config, seq);

/** Feed `first` tokens, then `perOutput` more from inside each `next`, until all are fed; then complete. */
function feedback(options: Parameters<typeof attend>[1], first: number, perOutput: number, log?: string[]): { out: Attended[]; done: boolean } {
  const input = new Subject<Token>();
  const state = { out: [] as Attended[], done: false };
  let fed = 0;
  const feed = (n: number): void => {
    for (let i = 0; i < n && fed < tokens.length; i++) input.next(tokens[fed++]!);
    if (fed === tokens.length) input.complete();
  };
  input.pipe(attend(config, options)).subscribe({
    next: (a) => {
      state.out.push(a);
      log?.push(`out${a.position}`);
      feed(perOutput);
    },
    complete: () => (state.done = true),
  });
  feed(first);
  return state;
}

describe('re-entrant feedback', () => {
  it('group { count: 2 }, one token fed back per output (the reported 0, 2, 3, 1): position order', () => {
    const r = feedback({ group: { count: 2 } }, 2, 1);
    expect(r.out.map((a) => a.position)).toEqual(want.map((_, i) => i));
    expectRowsClose(r.out, want);
    expect(r.done).toBe(true);
  });

  it.each([
    [undefined, 1, 1],
    [{ count: 2 }, 2, 2],
    [{ count: 3 }, 3, 2],
    [{ count: 4 }, 4, 3],
    [{ count: 5 }, 7, 1],
  ])('group %o, %i first, %i per output: outputs in order and equal to attention()', (group, first, perOutput) => {
    const r = feedback(group ? { group } : {}, first, perOutput);
    expectRowsClose(r.out, want);
    expect(r.done).toBe(true);
  });

  it('checkpoints follow the outputs they cover, at their positions, with re-entrant feeding', () => {
    const log: string[] = [];
    const sink = (bytes: Uint8Array, p: number): void => {
      expect(Decoder.restore(bytes).position).toBe(p);
      log.push(`cp${p}`);
    };
    const r = feedback({ group: { count: 3 }, checkpoint: { every: 5, sink } }, 3, 2, log);
    expectRowsClose(r.out, want);
    const cps = log.filter((e) => e.startsWith('cp'));
    expect(cps).toEqual(['cp6', 'cp12', 'cp15', 'cp20']);
    // every output before a checkpoint's position was delivered before it
    for (const cp of cps) {
      const p = Number(cp.slice(2));
      expect(log.indexOf(`out${p - 1}`)).toBeLessThan(log.indexOf(cp));
      if (p < want.length) expect(log.indexOf(`out${p}`)).toBeGreaterThan(log.indexOf(cp));
    }
  });

  it('a trigger fired from inside next takes its checkpoint after the current group is delivered', () => {
    const trigger = new Subject<void>();
    const input = new Subject<Token>();
    const log: string[] = [];
    input.pipe(attend(config, { group: { count: 3 }, checkpoint: { every: 1000, sink: (_b, p) => void log.push(`cp${p}`), trigger } })).subscribe((a) => {
      log.push(`out${a.position}`);
      if (a.position === 0) trigger.next();
    });
    tokens.slice(0, 3).forEach((t) => input.next(t));
    expect(log).toEqual(['out0', 'out1', 'out2', 'cp3']);
  });

  it('time-grouped feedback under a TestScheduler: outputs in order', () => {
    const ts = new TestScheduler((a, b) => expect(a).toEqual(b));
    ts.run(({ flush }) => {
      const input = new Subject<Token>();
      const out: number[] = [];
      let fed = 0;
      input.pipe(attend(config, { group: { timeMs: 3, count: 4 }, scheduler: ts })).subscribe((a) => {
        out.push(a.position);
        if (fed < tokens.length) input.next(tokens[fed++]!);
      });
      input.next(tokens[fed++]!);
      input.next(tokens[fed++]!);
      flush();
      expect(out).toEqual(Array.from({ length: tokens.length }, (_, i) => i));
    });
  });

  it('attendChunks: a chunk fed back from inside next is attended after the current one', () => {
    const chunks = chunksOf(seq, [3, 5, 4, 8]);
    const input = new Subject<(typeof chunks)[number]>();
    const positions: number[] = [];
    let fed = 0;
    let depth = 0;
    let deepest = 0;
    input.pipe(attendChunks(config)).subscribe((c) => {
      deepest = Math.max(deepest, ++depth);
      if (fed < chunks.length) input.next(chunks[fed++]!);
      if (fed < chunks.length) input.next(chunks[fed++]!);
      positions.push(c.position); // recorded after feeding: a nested delivery would come out reversed
      depth--;
    });
    input.next(chunks[fed++]!);
    expect(positions).toEqual([0, 3, 8, 12]);
    expect(deepest).toBe(1); // next is never re-entered
  });
});
