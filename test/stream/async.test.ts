// attendAsync: the pull-based path equals attend, fails the same way, pulls lazily and waits for sinks.
import { describe, expect, it } from 'vitest';
import { from, lastValueFrom, toArray } from 'rxjs';
import { Decoder, ShapeError } from '../../src/index.js';
import { attend, attendAsync, type Attended, type Token } from '../../src/stream/index.js';
import { badToken, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows } from './streamHelpers.js';

async function* slowly(tokens: Token[], pulled?: { n: number }): AsyncGenerator<Token> {
  for (const t of tokens) {
    await Promise.resolve();
    if (pulled) pulled.n++;
    yield t;
  }
}

async function all(it: AsyncIterable<Attended>): Promise<Attended[]> {
  const out: Attended[] = [];
  for await (const a of it) out.push(a);
  return out;
}

describe('attendAsync', () => {
  const config = smallConfig();
  const seq = randomSequence(19, 21);
  const tokens = tokensOf(seq);
  const want = wholeRows(config, seq);

  it('equals attend (bit for bit) and attention()', async () => {
    const viaRx = await lastValueFrom(from(tokens).pipe(attend(config), toArray()));
    const viaAsync = await all(attendAsync(config, slowly(tokens)));
    expectRowsClose(viaAsync, want);
    viaAsync.forEach((a, i) => expect(Array.from(a.z.data)).toEqual(Array.from(viaRx[i]!.z.data)));
    const grouped = await all(attendAsync(config, slowly(tokens), { group: { count: 4 } }));
    expectRowsClose(grouped, want);
  });

  it('refuses options it cannot honour (time grouping, triggers) with a ConfigError', async () => {
    await expect(all(attendAsync(config, slowly(tokens), { group: { timeMs: 5 } }))).rejects.toThrow(/groups by count only/);
  });

  it('is pull-based: reads a token only when the consumer asks', async () => {
    const pulled = { n: 0 };
    const gen = attendAsync(config, slowly(tokens, pulled));
    await gen.next();
    await gen.next();
    expect(pulled.n).toBe(2);
    await gen.return(undefined);
  });

  it('an invalid token: outputs before it, then the typed error; the shared decoder keeps the state before it', async () => {
    for (const group of [undefined, { count: 5 }]) {
      const dec = new Decoder(config);
      const got: Attended[] = [];
      let error: unknown = null;
      try {
        for await (const a of attendAsync(dec, slowly([...tokens.slice(0, 7), badToken(), ...tokens.slice(7)]), group ? { group } : {})) got.push(a);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ShapeError);
      expectRowsClose(got, want.slice(0, 7));
      expect(dec.position).toBe(7);
    }
  });

  it('waits for an async checkpoint sink before pulling more; sink errors are thrown', async () => {
    const log: string[] = [];
    const pulled = { n: 0 };
    const sink = async (_b: Uint8Array, p: number): Promise<void> => {
      await new Promise((r) => setTimeout(r, 2));
      log.push(`cp${p}@pulled${pulled.n}`);
    };
    const out = await all(attendAsync(config, slowly(tokens, pulled), { checkpoint: { every: 6, sink } }));
    expectRowsClose(out, want);
    expect(log).toEqual(['cp6@pulled6', 'cp12@pulled12', 'cp18@pulled18']);
    const boom = new Error('sink down');
    await expect(all(attendAsync(config, slowly(tokens), { checkpoint: { every: 6, sink: () => Promise.reject(boom) } }))).rejects.toBe(boom);
  });
});
