// attend / attendGrouped / attendChunks: outputs equal whole-sequence attention(), cold vs shared sources,
// and the failure semantics (typed error, message intact, decoder state before the bad token).
import { describe, expect, it } from 'vitest';
import { firstValueFrom, from, lastValueFrom, toArray, concat, throwError } from 'rxjs';
import ndarray from 'ndarray';
import { ConfigError, Decoder, ShapeError } from '../../src/index.js';
import { attend, attendChunks, attendGrouped, type Attended, type AttendedChunk } from '../../src/stream/index.js';
import { badToken, chunksOf, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows, HEADS, DV } from './streamHelpers.js';

const collect = <T>(o: import('rxjs').Observable<T>): Promise<T[]> => lastValueFrom(o.pipe(toArray()));

describe('attend', () => {
  const config = smallConfig();
  const seq = randomSequence(23, 3);
  const want = wholeRows(config, seq);

  it('one output per token, in order, equal to attention() of the whole sequence', async () => {
    const out = await collect(from(tokensOf(seq)).pipe(attend(config)));
    expectRowsClose(out, want);
  });

  it('grouped by count through decoder.chunk: same outputs, one per token', async () => {
    for (const count of [2, 5, 50]) {
      const out = await collect(from(tokensOf(seq)).pipe(attend(config, { group: { count } })));
      expectRowsClose(out, want);
    }
    const out = await collect(from(tokensOf(seq)).pipe(attendGrouped(config, { group: { count: 4, timeMs: 5 } })));
    expectRowsClose(out, want);
  });

  it('attendChunks: outputs equal attention() rows, positions of first tokens', async () => {
    const sizes = [1, 4, 7, 2, 9];
    const out: AttendedChunk[] = await collect(from(chunksOf(seq, sizes)).pipe(attendChunks(config)));
    expect(out.map((c) => c.position)).toEqual([0, 1, 5, 12, 14]);
    const flat: Attended[] = [];
    for (const c of out) {
      const L = c.z.shape[1]!;
      for (let i = 0; i < L; i++) {
        const z = new Float64Array(HEADS * DV);
        for (let h = 0; h < HEADS; h++) for (let d = 0; d < DV; d++) z[h * DV + d] = c.z.get(h, i, d);
        flat.push({ position: c.position + i, z: ndarray(z, [HEADS, DV]) });
      }
    }
    expectRowsClose(flat, want);
  });

  it('a config source is cold: each subscription gets a fresh decoder', async () => {
    const stream = from(tokensOf(seq)).pipe(attend(config));
    const a = await collect(stream);
    const b = await collect(stream);
    expectRowsClose(a, want);
    expectRowsClose(b, want);
  });

  it('a Decoder source is shared: positions continue across subscriptions', async () => {
    const dec = new Decoder(config);
    const tokens = tokensOf(seq);
    const first = await collect(from(tokens.slice(0, 10)).pipe(attend(dec)));
    const rest = await collect(from(tokens.slice(10)).pipe(attend(dec)));
    expectRowsClose(first, want.slice(0, 10));
    expectRowsClose(rest, want.slice(10), 10);
    expect(dec.position).toBe(23);
  });

  it('an invalid config errors the stream with ConfigError', async () => {
    const err = await firstValueFrom(from(tokensOf(seq)).pipe(attend({ ...config, heads: 0 }))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(() => attend(config, { group: {} })).toThrow(ConfigError);
  });

  it('an invalid token errors with the typed error; the shared decoder keeps the state before it, so nothing is lost', async () => {
    for (const options of [{}, { group: { count: 4 } }, { group: { count: 50 } }]) {
      const dec = new Decoder(config);
      const tokens = tokensOf(seq);
      const withBad = [...tokens.slice(0, 9), badToken(), ...tokens.slice(9)];
      const got: Attended[] = [];
      const err = await new Promise<unknown>((resolve) => {
        from(withBad)
          .pipe(attend(dec, options))
          .subscribe({ next: (a) => got.push(a), error: resolve, complete: () => resolve(null) });
      });
      expect(err).toBeInstanceOf(ShapeError);
      expect((err as Error).message).toMatch(/q must hold finite numbers, got NaN/);
      expectRowsClose(got, want.slice(0, 9));
      expect(dec.position).toBe(9);
      // continue on the same decoder: identical to a clean run
      const rest = await collect(from(tokens.slice(9)).pipe(attend(dec, options)));
      expectRowsClose(rest, want.slice(9), 9);
    }
  });

  it('grouping handles strided views (transposed tokens) and refuses views outside their data with the ShapeError', async () => {
    const transposed = tokensOf(seq).map((t) => {
      const tr = (x: import('ndarray').NdArray) => {
        const [h, d] = x.shape as [number, number];
        const data = new Float64Array(h * d);
        const store = ndarray(data, [d, h]);
        for (let i = 0; i < h; i++) for (let c = 0; c < d; c++) store.set(c, i, x.get(i, c));
        return store.transpose(1, 0);
      };
      return { q: tr(t.q), k: tr(t.k), v: tr(t.v) };
    });
    expectRowsClose(await collect(from(transposed).pipe(attend(config, { group: { count: 6 } }))), want);
    const tokens = tokensOf(seq);
    const outside = { ...tokens[3]!, k: ndarray(new Float64Array(HEADS * 3), [HEADS, 3], [3, 1], 2) };
    const dec = new Decoder(config);
    const got: Attended[] = [];
    const err = await new Promise<unknown>((resolve) => from([...tokens.slice(0, 3), outside, ...tokens.slice(4)]).pipe(attend(dec, { group: { count: 8 } })).subscribe({ next: (a) => got.push(a), error: resolve }));
    expect(err).toBeInstanceOf(ShapeError);
    expect((err as Error).message).toMatch(/^k has a view/);
    expectRowsClose(got, want.slice(0, 3));
    expect(dec.position).toBe(3);
  });

  it('a source error is forwarded; the decoder is not touched after it', async () => {
    const dec = new Decoder(config);
    const tokens = tokensOf(seq);
    const boom = new Error('upstream');
    const err = await collect(concat(from(tokens.slice(0, 3)), throwError(() => boom)).pipe(attend(dec, { group: { count: 2 } }))).catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(dec.position).toBe(2); // the buffered third token was dropped with the error
  });
});
