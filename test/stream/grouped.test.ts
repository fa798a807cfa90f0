// The grouped path validates each token once, when it arrives: a bad token in the middle of a group gives
// exactly the error of the single-token path (class and message), the tokens before it are emitted, and the
// decoder's position and state are the ones before it. A group that reaches decoder.chunk is valid, so an
// error from chunk is a real error and propagates (no silent replay token by token).
import { describe, expect, it } from 'vitest';
import ndarray from 'ndarray';
import { Subject, from, lastValueFrom, toArray, type Observable } from 'rxjs';
import { Decoder } from '../../src/index.js';
import { attend, attendAsync, type Attended, type Token } from '../../src/stream/index.js';
import { badToken, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows, HEADS, D, DV } from './streamHelpers.js';

const config = smallConfig();
const seq = randomSequence(14, 9);
const tokens = tokensOf(seq);
const want = wholeRows(config, seq);
const GROUP = { count: 4 };
/** the bad token arrives 11th: groups [0..3] and [4..7] ran, 8 and 9 are open in the third group */
const AT = 10;

function run(o: Observable<Attended>): Promise<{ out: Attended[]; error: unknown }> {
  const out: Attended[] = [];
  return new Promise((resolve) => o.subscribe({ next: (a) => out.push(a), error: (error: unknown) => resolve({ out, error }), complete: () => resolve({ out, error: null }) }));
}

async function runAsync(dec: Decoder, input: Token[], group?: { count: number }): Promise<{ out: Attended[]; error: unknown }> {
  const out: Attended[] = [];
  try {
    for await (const a of attendAsync(dec, input, group ? { group } : {})) out.push(a);
  } catch (error) {
    return { out, error };
  }
  return { out, error: null };
}

const f64 = (n: number, x = 0.1) => new Float64Array(n).fill(x);
const good = tokens[AT]!;
const BAD: Record<string, () => unknown> = {
  'NaN in q': () => badToken(),
  'Infinity in v': () => ({ ...good, v: ndarray(f64(HEADS * DV).fill(Infinity, 3), [HEADS, DV]) }),
  'k of the wrong shape': () => ({ ...good, k: ndarray(f64(HEADS * (D + 1)), [HEADS, D + 1]) }),
  'q of rank 3': () => ({ ...good, q: ndarray(f64(HEADS * D), [HEADS, 1, D]) }),
  'v over an Int32Array': () => ({ ...good, v: ndarray(new Int32Array(HEADS * DV), [HEADS, DV]) }),
  'k viewing outside its data': () => ({ ...good, k: ndarray(f64(HEADS * D), [HEADS, D], [D, 1], 2) }),
  'missing v': () => ({ q: good.q, k: good.k }),
  'null token': () => null,
  'a number as token': () => 7,
};

describe('grouped path: validation on arrival', () => {
  it.each(Object.keys(BAD))('%s: same error as the single-token path, outputs before it, state as before it', async (name) => {
    const bad = BAD[name]!() as Token;
    const input = [...tokens.slice(0, AT), bad, ...tokens.slice(AT)];
    // the single-token path (and, for objects, Decoder.step itself) define the expected error
    const single = new Decoder(config);
    const ref = await run(from(input).pipe(attend(single)));
    expect(ref.error).toBeInstanceOf(Error);
    if (bad !== null && typeof bad === 'object') {
      let direct: unknown = null;
      try {
        new Decoder(config).step(bad.q, bad.k, bad.v);
      } catch (error) {
        direct = error;
      }
      expect((direct as Error).constructor).toBe((ref.error as Error).constructor);
      expect((direct as Error).message).toBe((ref.error as Error).message);
    }
    // the state a grouped run of the clean tokens before it reaches (same grouping: [0..3] [4..7] [8, 9])
    const clean = new Decoder(config);
    await lastValueFrom(from(tokens.slice(0, AT)).pipe(attend(clean, { group: GROUP }), toArray()));

    const rx = new Decoder(config);
    const got = await run(from(input).pipe(attend(rx, { group: GROUP })));
    const pulled = new Decoder(config);
    const gotAsync = await runAsync(pulled, input, GROUP);
    for (const [dec, r] of [[rx, got], [pulled, gotAsync]] as const) {
      expect((r.error as Error).constructor).toBe((ref.error as Error).constructor);
      expect((r.error as Error).name).toBe((ref.error as Error).name);
      expect((r.error as Error).message).toBe((ref.error as Error).message);
      expectRowsClose(r.out, want.slice(0, AT));
      expect(dec.position).toBe(AT);
      expect(Buffer.from(dec.snapshot()).equals(Buffer.from(clean.snapshot()))).toBe(true);
      // and it continues as if the bad token had never been sent
      const rest = await lastValueFrom(from(tokens.slice(AT)).pipe(attend(dec, { group: GROUP }), toArray()));
      expectRowsClose(rest, want.slice(AT), AT);
    }
  });

  it('the error is reported when the bad token arrives, not when its group would have closed', async () => {
    const dec = new Decoder(config);
    const seen: number[] = [];
    let error: unknown = null;
    let arrived = 0;
    const input = [...tokens.slice(0, 2), badToken(), ...tokens.slice(2)];
    from(input)
      .pipe(attend(dec, { group: { count: 50 } }))
      .subscribe({ next: (a) => seen.push(a.position), error: (e: unknown) => ((error = e), (arrived = seen.length)) });
    expect((error as Error).name).toBe('ShapeError');
    expect(arrived).toBe(2);
    expect(dec.position).toBe(2);
  });

  it('a token is read and validated once: fields are read on arrival only, even when a later token is bad', async () => {
    const reads = new Map<number, number>();
    const counted = tokens.slice(0, 6).map((t, i) => ({
      get q() {
        reads.set(i, (reads.get(i) ?? 0) + 1);
        return t.q;
      },
      k: t.k,
      v: t.v,
    }));
    const r = await run(from([...counted, badToken()]).pipe(attend(config, { group: { count: 4 } })));
    expect((r.error as Error).name).toBe('ShapeError');
    expect([...reads.values()]).toEqual([1, 1, 1, 1, 1, 1]);
    expectRowsClose(r.out, want.slice(0, 6));
  });

  it('a token is copied when it arrives: changing its arrays afterwards does not change its output', () => {
    const input = new Subject<Token>();
    const out: Attended[] = [];
    input.pipe(attend(config, { group: { count: 4 } })).subscribe((a) => out.push(a));
    tokensOf(seq)
      .slice(0, 4)
      .forEach((t, i) => {
        input.next(t);
        if (i < 3) (t.q.data as Float64Array).fill(Number.NaN); // the group is still open: the decoder never sees these NaNs
      });
    expectRowsClose(out, want.slice(0, 4));
  });

  it('an error thrown by decoder.chunk is a real error: it propagates as is, nothing is replayed', async () => {
    const dec = new Decoder(config);
    const boom = new Error('chunk failed');
    let steps = 0;
    const step = dec.step.bind(dec);
    dec.step = ((...args: Parameters<Decoder['step']>) => (steps++, step(...args))) as Decoder['step'];
    dec.chunk = () => {
      throw boom;
    };
    const r = await run(from(tokens).pipe(attend(dec, { group: { count: 3 } })));
    expect(r.error).toBe(boom);
    expect(r.out).toEqual([]);
    expect(steps).toBe(0);
    expect(dec.position).toBe(0);
  });

  it('decoder.chunk only ever sees whole valid groups', async () => {
    const dec = new Decoder(config);
    const sizes: number[] = [];
    const chunk = dec.chunk.bind(dec);
    dec.chunk = ((q, k, v) => (sizes.push(q.shape[1]!), chunk(q, k, v))) as Decoder['chunk'];
    const input = [...tokens.slice(0, 6), badToken()];
    const r = await run(from(input).pipe(attend(dec, { group: { count: 4 } })));
    expect((r.error as Error).name).toBe('ShapeError');
    expect(sizes).toEqual([4, 2]);
    expectRowsClose(r.out, want.slice(0, 6));
  });
});
