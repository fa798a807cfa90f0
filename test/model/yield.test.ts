// How generate() hands the event loop a turn: setImmediate in Node; a MessageChannel where there is no
// setImmediate (browsers: no 4 ms clamp); setTimeout(0) only where neither exists. Whatever the strategy, the
// tokens are the same, and a timer's abort gets through a long CPU-bound generation.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { GeneratedToken } from '../../src/model/index.js';
import { tinyModel } from './tiny.js';

const model = tinyModel(5);
const prompt = 'Call me Ishmael. ';
const realSetTimeout = globalThis.setTimeout;

/** Counts what generate() schedules through the globals it may use. */
interface Counts {
  setTimeout: number;
  setImmediate: number;
  posts: number;
}

/** Run with the given globals present; counts calls of each, made by anyone (the test's own timer too). */
function environment(have: { setImmediate: boolean; messageChannel: boolean }): Counts {
  const counts: Counts = { setTimeout: 0, setImmediate: 0, posts: 0 };
  const realImmediate = globalThis.setImmediate;
  vi.stubGlobal('setTimeout', ((fn: () => void, ms?: number) => {
    counts.setTimeout++;
    return realSetTimeout(fn, ms);
  }) as typeof setTimeout);
  vi.stubGlobal(
    'setImmediate',
    have.setImmediate
      ? (((fn: () => void) => {
          counts.setImmediate++;
          return realImmediate(fn);
        }) as typeof setImmediate)
      : undefined,
  );
  // A browser's MessageChannel: every message is a task of its own, so timers run between messages. (Node's
  // ports drain up to 1000 queued messages in one go, posts made meanwhile included, which would starve a timer
  // for 1000 turns: the reason Node uses setImmediate. The Chromium check runs the real thing.)
  class BrowserLikeChannel {
    readonly port1 = { onmessage: null as ((e: { data: unknown }) => void) | null, close: (): void => undefined };
    readonly port2 = {
      postMessage: (data: unknown): void => {
        counts.posts++;
        realImmediate(() => this.port1.onmessage?.({ data }));
      },
      close: (): void => undefined,
    };
  }
  vi.stubGlobal('MessageChannel', have.messageChannel ? BrowserLikeChannel : undefined);
  return counts;
}

/**
 * Generate until `done()` (the strategy under test was used a few times: one yield per 16 ms of work) or `ms` pass,
 * then stop. A deadline in wall time alone counted 2 yields in 120 ms on a loaded machine (the process got a
 * fraction of a core): the cadence is per time worked, so the test waits for the yields, not for the clock.
 */
async function generateFor(ms: number, seed: number, done: () => boolean = () => false): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  const t0 = performance.now();
  for await (const g of model.session({ seed }).generate(prompt, { maxTokens: 1_000_000 })) {
    out.push(g);
    if (done() || performance.now() - t0 > ms) break;
  }
  return out;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('generate() yields between tokens', () => {
  it('in Node: setImmediate, never setTimeout or a channel', async () => {
    const counts = environment({ setImmediate: true, messageChannel: true });
    const out = await generateFor(5000, 1, () => counts.setImmediate >= 3);
    expect(out.length).toBeGreaterThan(0);
    expect(counts.setImmediate).toBeGreaterThanOrEqual(3); // one turn per 16 ms of work
    expect(counts.setTimeout).toBe(0);
    expect(counts.posts).toBe(0);
  });

  it('without setImmediate (browsers): a MessageChannel, never setTimeout (no 4 ms clamp)', async () => {
    const counts = environment({ setImmediate: false, messageChannel: true });
    const out = await generateFor(5000, 1, () => counts.posts >= 3);
    expect(out.length).toBeGreaterThan(0);
    expect(counts.posts).toBeGreaterThanOrEqual(3);
    expect(counts.setTimeout).toBe(0);
    expect(counts.setImmediate).toBe(0);
  });

  it('with neither: setTimeout(0)', async () => {
    const counts = environment({ setImmediate: false, messageChannel: false });
    await generateFor(5000, 1, () => counts.setTimeout >= 3);
    expect(counts.setTimeout).toBeGreaterThanOrEqual(3);
    expect(counts.posts).toBe(0);
  });

  it('the tokens do not depend on the strategy', async () => {
    const run = async (): Promise<number[]> => {
      const out: number[] = [];
      // long enough to cross several yields (the tiny model does ~10-50k tokens/s here)
      for await (const g of model.session({ seed: 3, temperature: 0.9 }).generate(prompt, { maxTokens: 3000 })) out.push(g.token);
      return out;
    };
    const node = await run();
    environment({ setImmediate: false, messageChannel: true });
    const channel = await run();
    vi.unstubAllGlobals();
    environment({ setImmediate: false, messageChannel: false });
    const timeout = await run();
    expect(channel).toEqual(node);
    expect(timeout).toEqual(node);
  });

  for (const have of [
    { setImmediate: true, messageChannel: true },
    { setImmediate: false, messageChannel: true },
    { setImmediate: false, messageChannel: false },
  ]) {
    it(`an AbortSignal aborted from a setTimeout stops it (setImmediate ${have.setImmediate}, MessageChannel ${have.messageChannel})`, async () => {
      environment(have);
      const ac = new AbortController();
      const t0 = performance.now();
      setTimeout(() => ac.abort(new Error('timer abort')), 40);
      let count = 0;
      let err: Error | null = null;
      try {
        for await (const _ of model.session({ seed: 2 }).generate(prompt, { maxTokens: 10_000_000, signal: ac.signal })) count++;
      } catch (e) {
        err = e as Error;
      }
      const ms = performance.now() - t0;
      expect(err?.message).toBe('timer abort');
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(10_000_000);
      expect(ms).toBeLessThan(2000); // stopped within a few turns of the timer, not at the end
    });
  }
});
