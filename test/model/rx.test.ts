// Generation as RxJS (src/stream/generate.ts): the observable emits what session.generate yields,
// unsubscribing stops before another token is sampled, prompts queue with generateEach.
import { describe, expect, it } from 'vitest';
import { firstValueFrom, lastValueFrom, of, take, toArray } from 'rxjs';
import { fromGeneration, generateEach } from '../../src/stream/generate.js';
import type { GeneratedToken } from '../../src/model/index.js';
import { tinyModel } from './tiny.js';

const model = tinyModel(13);

async function direct(prompt: string, n: number, seed = 1): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const g of model.session({ seed }).generate(prompt, { maxTokens: n })) out.push(g);
  return out;
}

describe('fromGeneration / generateEach', () => {
  it('emits the tokens session.generate yields, then completes', async () => {
    const got = await lastValueFrom(fromGeneration(model.session({ seed: 1 }), 'Stubb', { maxTokens: 12 }).pipe(toArray()));
    expect(got).toEqual(await direct('Stubb', 12));
  });

  it('take(n) stops generation after exactly n tokens: the session holds what was emitted', async () => {
    const s = model.session({ seed: 1 });
    const got = await lastValueFrom(fromGeneration(s, 'Stubb', { maxTokens: 1000 }).pipe(take(4), toArray()));
    expect(got).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 10)); // the generator finalizes a few microtasks later
    expect(s.position).toBe(5 + 4);
    const rest: GeneratedToken[] = [];
    for await (const g of s.generate('', { maxTokens: 3 })) rest.push(g);
    expect([...got, ...rest]).toEqual(await direct('Stubb', 7));
  });

  it('generateEach runs prompts one after the other on the same session', async () => {
    const s = model.session({ seed: 2 });
    const got = await lastValueFrom(of('Flask. ', 'Pip.').pipe(generateEach(s, { maxTokens: 5 }), toArray()));
    expect(got).toHaveLength(10);
    expect(got[9]!.position).toBe(7 + 5 + 4 + 5);
  });

  it('errors propagate (an outer AbortSignal, a bad prompt)', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(firstValueFrom(fromGeneration(model.session(), 'a', { maxTokens: 3, signal: ac.signal }))).rejects.toThrow('stop now');
    await expect(firstValueFrom(fromGeneration(model.session(), '', { maxTokens: 3 }))).rejects.toThrow(/needs a non-empty prompt/);
  });
});
