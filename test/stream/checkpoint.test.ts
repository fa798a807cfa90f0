// Checkpoints: snapshots every N tokens to a function or a file (atomic, via the codec), outputs neither
// dropped nor reordered, resume from the latest checkpoint continues exactly, sink errors propagate.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subject, concat, from, lastValueFrom, toArray, type Observable } from 'rxjs';
import { Decoder } from '../../src/index.js';
import { loadSnapshot } from '../../src/codec/index.js';
import { attend, attendChunks, type Attended, type Token } from '../../src/stream/index.js';
import { badToken, chunksOf, expectRowsClose, randomSequence, smallConfig, tokensOf, wholeRows } from './streamHelpers.js';

const collect = <T>(o: Observable<T>): Promise<T[]> => lastValueFrom(o.pipe(toArray()));

/** Run to the end or the first error; returns outputs and the error. */
function run(o: Observable<Attended>): Promise<{ out: Attended[]; error: unknown }> {
  const out: Attended[] = [];
  return new Promise((resolve) => o.subscribe({ next: (a) => out.push(a), error: (error: unknown) => resolve({ out, error }), complete: () => resolve({ out, error: null }) }));
}

describe('checkpoints', () => {
  const config = smallConfig();
  const seq = randomSequence(30, 11);
  const tokens = tokensOf(seq);
  const want = wholeRows(config, seq);

  it('hands a snapshot to the sink every N tokens, at those positions; outputs unchanged', async () => {
    for (const group of [undefined, { count: 4 }]) {
      const seen: number[] = [];
      const out = await collect(from(tokens).pipe(attend(config, { checkpoint: { every: 7, sink: (_b, p) => void seen.push(p) }, ...(group ? { group } : {}) })));
      expectRowsClose(out, want);
      // grouped: the first group boundary at or past each multiple
      expect(seen).toEqual(group ? [8, 16, 24, 28] : [7, 14, 21, 28]);
    }
  });

  it('an async sink does not drop or reorder outputs; completion waits for the last write', async () => {
    const log: string[] = [];
    const sink = async (bytes: Uint8Array, p: number): Promise<void> => {
      await new Promise((r) => setTimeout(r, 2));
      expect(Decoder.restore(bytes).position).toBe(p);
      log.push(`cp${p}`);
    };
    const out = await new Promise<Attended[]>((resolve, reject) => {
      const acc: Attended[] = [];
      from(tokens)
        .pipe(attend(config, { checkpoint: { every: 10, sink } }))
        .subscribe({ next: (a) => acc.push(a), error: reject, complete: () => (log.push('complete'), resolve(acc)) });
    });
    expectRowsClose(out, want);
    expect(log).toEqual(['cp10', 'cp20', 'cp30', 'complete']);
  });

  it('error in the middle, then resume from the latest checkpoint: same outputs as a clean run', async () => {
    let latest: { bytes: Uint8Array; position: number } | null = null;
    const sink = (bytes: Uint8Array, position: number): void => void (latest = { bytes, position });
    // token 17 is invalid: the stream errors there
    const broken: Token[] = [...tokens.slice(0, 17), badToken(), ...tokens.slice(17)];
    const first = await run(from(broken).pipe(attend(config, { checkpoint: { every: 5, sink } })));
    expect((first.error as Error).name).toBe('ShapeError');
    expect(first.out.length).toBe(17);
    const cp = latest as { bytes: Uint8Array; position: number } | null;
    expect(cp?.position).toBe(15);
    // resume in a "new session" from the checkpoint bytes, replaying the tokens after it
    const resumed = await collect(from(tokens.slice(cp!.position)).pipe(attend({ restore: cp!.bytes })));
    const clean = await collect(from(tokens).pipe(attend(config)));
    const merged = [...first.out.slice(0, cp!.position), ...resumed];
    expect(merged.map((a) => a.position)).toEqual(clean.map((a) => a.position));
    merged.forEach((a, i) => expect(Array.from(a.z.data)).toEqual(Array.from(clean[i]!.z.data))); // bit-identical
    expectRowsClose(merged, want);
  });

  it('a file sink writes atomically via the codec; loadSnapshot resumes exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ta-stream-'));
    try {
      const path = join(dir, 'session.snap');
      const chunks = chunksOf(seq, [6, 6, 6, 6, 6]);
      const out = await collect(from(chunks.slice(0, 3)).pipe(attendChunks(config, { checkpoint: { every: 6, sink: path } })));
      expect(out.length).toBe(3);
      expect(existsSync(path)).toBe(true);
      const dec = loadSnapshot(path);
      expect(dec.position).toBe(18);
      const rest = await collect(from(chunks.slice(3)).pipe(attendChunks(dec)));
      const clean = await collect(from(chunks).pipe(attendChunks(config)));
      expect(Array.from(rest[1]!.z.data)).toEqual(Array.from(clean[4]!.z.data));
      expect(rest[0]!.position).toBe(18);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on demand: checkpoint.trigger takes a snapshot at the current boundary; unsubscribed at the end', async () => {
    const trigger = new Subject<void>();
    const input = new Subject<Token>();
    const seen: number[] = [];
    const out: Attended[] = [];
    let done = false;
    input.pipe(attend(config, { checkpoint: { every: 100, sink: (b, p) => void seen.push(p, Decoder.restore(b).position), trigger } })).subscribe({ next: (a) => out.push(a), complete: () => (done = true) });
    tokens.slice(0, 5).forEach((t) => input.next(t));
    trigger.next();
    tokens.slice(5, 9).forEach((t) => input.next(t));
    trigger.next();
    input.complete();
    expect(done).toBe(true);
    expect(seen).toEqual([5, 5, 9, 9]);
    expect(trigger.observed).toBe(false);
    expectRowsClose(out, want.slice(0, 9));
  });

  it('sink errors are forwarded as stream errors (sync throw and async rejection)', async () => {
    const boom = new Error('disk full');
    const a = await run(from(tokens).pipe(attend(config, { checkpoint: { every: 4, sink: () => { throw boom; } } })));
    expect(a.error).toBe(boom);
    expect(a.out.length).toBe(4); // the output before the failing checkpoint is delivered, then the error
    const b = await run(from(tokens).pipe(attend(config, { checkpoint: { every: 4, sink: async () => { throw boom; } } })));
    expect(b.error).toBe(boom);
    const c = await run(concat(from(tokens.slice(0, 8))).pipe(attend(config, { group: { count: 3 }, checkpoint: { every: 4, sink: () => Promise.reject(boom) } })));
    expect(c.error).toBe(boom);
    const dir = mkdtempSync(join(tmpdir(), 'ta-stream-'));
    try {
      const d = await run(from(tokens).pipe(attend(config, { checkpoint: { every: 4, sink: join(dir, 'missing', 'x.snap') } })));
      expect((d.error as NodeJS.ErrnoException).code).toBe('ENOENT');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
