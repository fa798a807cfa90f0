// DurableSession's creation options that live in the model session (validUtf8), importSession from the sessions
// layer, and the stateBytes getter.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import type { GeneratedToken } from '../../src/model/index.js';
import { MemoryStore, importSession, openSession, prepareImport, SessionError, writeImport } from '../../src/sessions/index.js';
import { tinyModel } from '../model/tiny.js';

const model = tinyModel(2);

async function collect(it: AsyncIterable<GeneratedToken>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of it) out.push(t.token);
  return out;
}

/** Ends at the first error thrown; what it threw (null if nothing). */
async function caught(f: () => Promise<unknown>): Promise<unknown> {
  return f().then(
    () => null,
    (e: unknown) => e,
  );
}

const isValidUtf8 = (bytes: number[]): boolean => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
};

describe('validUtf8 is a durable session option', () => {
  it('off: the tokens are the unmasked model session\'s, through a crash replayed from the journal and from a checkpoint', async () => {
    const opts = { seed: 5, temperature: 1.5 };
    const unmasked = await collect(model.session({ ...opts, validUtf8: false }).generate('ab', { maxTokens: 120 }));
    const masked = await collect(model.session(opts).generate('ab', { maxTokens: 120 }));
    // the premise: on this tiny random model the mask changes what is drawn, so the option is observable
    expect(isValidUtf8(masked)).toBe(true);
    expect(isValidUtf8(unmasked)).toBe(false);
    for (const checkpointEvery of [1000, 40]) {
      const store = new MemoryStore();
      const s = await openSession(model, store, 'u', { ...opts, validUtf8: false, checkpointEvery, leaseMs: 200 });
      expect(s.sampling.validUtf8).toBe(false);
      const got: number[] = [];
      for await (const t of s.generate('ab', { maxTokens: 120 })) {
        got.push(t.token);
        if (got.length === 70) break; // then crash: the rest is derived again on reopen
      }
      s.abandon();
      store.now = () => Date.now() + 10_000; // the lease ran out
      const r = await openSession(model, store, 'u');
      expect(r.sampling.validUtf8).toBe(false);
      const rest = await collect(r.generate('', { maxTokens: 50 }));
      expect([...got, ...rest]).toEqual(unmasked);
      await r.close();
    }
  });

  it('is fixed at creation: reopening with another value is a ConfigError, with the same value or none it opens', async () => {
    const store = new MemoryStore();
    const s = await openSession(model, store, 'f', { seed: 1, validUtf8: false });
    await s.feed([104, 105]);
    await s.close();
    const e = await caught(() => openSession(model, store, 'f', { validUtf8: true }));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/exists with validUtf8 false, not true/);
    const same = await openSession(model, store, 'f', { validUtf8: false });
    expect(same.position).toBe(2);
    await same.close();
    const bad = await caught(() => openSession(model, store, 'g', { validUtf8: 'yes' as unknown as boolean }));
    expect(bad).toBeInstanceOf(ConfigError);
    expect((bad as Error).message).toMatch(/validUtf8 must be a boolean, got/);
  });
});

describe('importSession (toeplitz-attention/sessions)', () => {
  it('continues exactly where the file stood; a second import under the id is a conflict; nothing written for a bad file', async () => {
    const plain = model.session({ seed: 9 });
    plain.feed([72, 105, 32]);
    const file = plain.snapshot();
    const expected = await collect(model.restore(file).generate('', { maxTokens: 30 }));
    const store = new MemoryStore();
    const s = await importSession(model, store, 'imp', file, { checkpointEvery: 8 });
    expect(s.position).toBe(3);
    expect(s.stateBytes).toBe(model.restore(file).stateBytes);
    expect(s.stateBytes).toBeGreaterThan(0);
    expect(await collect(s.generate('', { maxTokens: 30 }))).toEqual(expected);
    await s.close();
    const again = await caught(() => importSession(model, store, 'imp', file));
    expect(again).toBeInstanceOf(SessionError);
    expect((again as SessionError).code).toBe('conflict');
    const damaged = file.slice();
    damaged[damaged.length - 3]! ^= 0x40;
    const other = tinyModel(3);
    for (const [bytes, m] of [[damaged, model], [file, other]] as const) {
      expect(() => prepareImport(m, bytes)).toThrow();
      expect(await caught(() => importSession(m, store, 'never', bytes))).not.toBeNull();
    }
    expect((await store.list()).map((i) => i.id).sort()).toEqual(['imp']);
  });

  it('writeImport with replace swaps a stored session for the file; without it, the stored one stays', async () => {
    const store = new MemoryStore();
    const s = await openSession(model, store, 'x', { seed: 2 });
    await s.feed([1, 2, 3, 4, 5]);
    await s.close();
    const plain = model.session({ seed: 4 });
    plain.feed([10, 11]);
    const prepared = prepareImport(model, plain.snapshot());
    expect(await caught(() => writeImport(store, 'x', prepared))).toBeInstanceOf(SessionError);
    expect((await openSession(model, store, 'x').then(async (o) => [o.position, await o.close()]))[0]).toBe(5);
    await writeImport(store, 'x', prepared, { replace: true });
    const o = await openSession(model, store, 'x');
    expect(o.position).toBe(2);
    expect(o.sampling.seed).toBe(4);
    await o.close();
  });
});
