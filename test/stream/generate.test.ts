// fromGeneration at its edges (issue 22, findings 5 and 11): an async consumer that unsubscribes a microtask
// after a token leaves the session holding exactly the tokens emitted; the session is free for feed() as soon
// as the observable has finalized (right after lastValueFrom resolves); bad options are a ConfigError at the call.
import { describe, expect, it } from 'vitest';
import { lastValueFrom, take, toArray } from 'rxjs';
import { ConfigError } from '../../src/index.js';
import { fromGeneration } from '../../src/stream/index.js';
import type { GeneratedToken } from '../../src/model/index.js';
import { tinyModel } from '../model/tiny.js';

const model = tinyModel(13);
const PROMPT = 'Stubb'; // 5 tokens

async function direct(n: number, seed = 1): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const g of model.session({ seed }).generate(PROMPT, { maxTokens: n })) out.push(g);
  return out;
}

/** Subscribe, and unsubscribe through `later` once `n` tokens have arrived; resolves with what arrived. */
function unsubscribeLater(s: ReturnType<typeof model.session>, n: number, later: (f: () => void) => void): Promise<GeneratedToken[]> {
  return new Promise((resolve) => {
    const got: GeneratedToken[] = [];
    const sub = fromGeneration(s, PROMPT, { maxTokens: 1000 }).subscribe({
      next: (g) => {
        got.push(g);
        if (got.length === n) {
          later(() => {
            sub.unsubscribe();
            resolve(got);
          });
        }
      },
    });
  });
}

describe('fromGeneration: unsubscribing', () => {
  for (const [name, later] of [
    ['a microtask', (f: () => void) => queueMicrotask(f)],
    ['a promise chain (an async consumer awaiting twice)', (f: () => void) => void Promise.resolve().then(() => undefined).then(f)],
  ] as const) {
    it(`from ${name} after the 5th token: the session holds exactly the 5 tokens emitted`, async () => {
      const s = model.session({ seed: 1 });
      const got = await unsubscribeLater(s, 5, later);
      expect(got).toHaveLength(5);
      await new Promise((r) => setTimeout(r, 20)); // anything still running has finished by now
      expect(s.position).toBe(PROMPT.length + 5);
      const rest: GeneratedToken[] = [];
      for await (const g of s.generate('', { maxTokens: 3 })) rest.push(g);
      expect([...got, ...rest]).toEqual(await direct(8));
    });
  }

  it('the session is free as soon as lastValueFrom(... take(3)) resolves: feed() works at once', async () => {
    const s = model.session({ seed: 1 });
    const got = await lastValueFrom(fromGeneration(s, PROMPT, { maxTokens: 1000 }).pipe(take(3), toArray()));
    expect(got).toHaveLength(3);
    const logits = s.feed([32]); // no StateError: the observable has finalized
    expect(logits).toHaveLength(256);
    expect(s.position).toBe(PROMPT.length + 3 + 1);
    // and equals the same tokens fed by hand, the way generate feeds them (the prompt, then one by one)
    const ref = model.session({ seed: 1 });
    ref.feed(new TextEncoder().encode(PROMPT));
    for (const g of got) ref.feed([g.token]);
    expect(Array.from(logits)).toEqual(Array.from(ref.feed([32])));
  });

  it('a new generation may start right after take(n) resolves, and continues exactly', async () => {
    const s = model.session({ seed: 1 });
    const a = await lastValueFrom(fromGeneration(s, PROMPT, { maxTokens: 1000 }).pipe(take(2), toArray()));
    const b = await lastValueFrom(fromGeneration(s, '', { maxTokens: 4 }).pipe(toArray()));
    expect([...a, ...b]).toEqual(await direct(6));
  });
});

describe('fromGeneration: bad arguments', () => {
  const s = model.session();
  it('options null, not an object, or a signal that is not an AbortSignal: ConfigError at the call', () => {
    for (const bad of [null, 5, 'x']) expect(() => fromGeneration(s, 'a', bad as never)).toThrow(ConfigError);
    expect(() => fromGeneration(s, 'a', null as never)).toThrow(/options must be an object \{ maxTokens, stop\?, signal\? \}, got null/);
    expect(() => fromGeneration(s, 'a', { maxTokens: 2, signal: {} as never })).toThrow(/signal must be an AbortSignal, got an object/);
    expect(() => fromGeneration(null as never, 'a', { maxTokens: 2 })).toThrow(/session must have a generate\(prompt, options\) method, got null/);
  });
});
