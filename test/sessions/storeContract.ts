// The SessionStore contract (src/sessions/store.ts) as a test suite every store runs: memory:, file:,
// redis:// and indexeddb: call storeContract(name, open) from their own test file. `open` gives a fresh,
// empty store each call (two calls may share backing storage: then `shared` is true and the suite also
// checks that a second handle sees what the first wrote, as another process would).
import { describe, expect, it } from 'vitest';
import { SessionError } from '../../src/core/errors.js';
import type { Lease, SessionStore } from '../../src/sessions/store.js';

export interface ContractOptions {
  /** a second handle on the same backing storage (another process's view), if the store has one */
  reopen?: (first: SessionStore) => Promise<SessionStore>;
  /** ms to sleep so that a lease of ttl ms runs out (store clocks may be coarse) */
  slack?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<SessionError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SessionError);
    expect((e as SessionError).code).toBe(code);
    return e as SessionError;
  }
  throw new Error(`expected a SessionError '${code}', the call succeeded`);
}

async function grant(store: SessionStore, id: string, owner: string, ttl = 10_000): Promise<Lease> {
  const r = await store.acquire(id, owner, ttl);
  if (!('lease' in r)) throw new Error(`expected a lease for ${owner}, ${id} is held by ${r.held.owner}`);
  return r.lease;
}

export function storeContract(name: string, open: () => Promise<SessionStore>, options: ContractOptions = {}): void {
  const slack = options.slack ?? 30;
  describe(`SessionStore contract: ${name}`, () => {
    it('an unknown session loads as null; journal and checkpoint round-trip, records above through only', async () => {
      const s = await open();
      try {
        expect(await s.load('nobody')).toBeNull();
        const l = await grant(s, 'a', 'w1');
        await s.append(l, 1, bytes(1, 1));
        await s.append(l, 2, bytes(2));
        await s.append(l, 3, bytes(3, 3, 3));
        let got = await s.load('a');
        expect(got!.checkpoint).toBeNull();
        expect(got!.journal.map((e) => [e.seq, Array.from(e.bytes)])).toEqual([[1, [1, 1]], [2, [2]], [3, [3, 3, 3]]]);
        await s.checkpoint(l, bytes(9, 8, 7), 2);
        got = await s.load('a');
        expect(Array.from(got!.checkpoint!.bytes)).toEqual([9, 8, 7]);
        expect(got!.checkpoint!.through).toBe(2);
        expect(got!.journal.map((e) => e.seq)).toEqual([3]);
        await s.append(l, 4, bytes(4));
        await s.checkpoint(l, bytes(6), 4);
        got = await s.load('a');
        expect(Array.from(got!.checkpoint!.bytes)).toEqual([6]);
        expect(got!.journal).toEqual([]);
      } finally {
        await s.close();
      }
    });

    it('stored bytes are copies: mutating the caller buffer or a loaded one changes nothing', async () => {
      const s = await open();
      try {
        const l = await grant(s, 'c', 'w');
        const rec = bytes(5, 5);
        await s.append(l, 1, rec);
        rec[0] = 0;
        const got = await s.load('c');
        got!.journal[0]!.bytes[1] = 0;
        expect(Array.from((await s.load('c'))!.journal[0]!.bytes)).toEqual([5, 5]);
      } finally {
        await s.close();
      }
    });

    it('a taken sequence number, or one at or below the checkpoint, is a conflict and changes nothing', async () => {
      const s = await open();
      try {
        const l = await grant(s, 'q', 'w');
        await s.append(l, 1, bytes(1));
        await rejectsWith(s.append(l, 1, bytes(2)), 'conflict');
        await s.append(l, 1, bytes(1)); // the same bytes again: a retry whose first reply was lost
        expect((await s.load('q'))!.journal.map((e) => Array.from(e.bytes))).toEqual([[1]]);
        await s.append(l, 2, bytes(2));
        await s.checkpoint(l, bytes(0), 2);
        await rejectsWith(s.append(l, 2, bytes(3)), 'conflict');
        await rejectsWith(s.checkpoint(l, bytes(0), 1), 'conflict');
        const got = await s.load('q');
        expect(got!.checkpoint!.through).toBe(2);
        expect(got!.journal).toEqual([]);
      } finally {
        await s.close();
      }
    });

    it('one writer: a live lease is held against others, tokens grow, a stale token is fenced on every write', async () => {
      const s = await open();
      try {
        const a = await grant(s, 'x', 'A', 10_000);
        const r = await s.acquire('x', 'B', 10_000);
        expect('held' in r && r.held.owner).toBe('A');
        expect('held' in r && r.held.remainingMs > 0 && r.held.remainingMs <= 10_000).toBe(true);
        // A gives it up: B is granted a larger token; A's writes are refused from then on
        await s.release(a);
        const b = await grant(s, 'x', 'B', 10_000);
        expect(b.token).toBeGreaterThan(a.token);
        await rejectsWith(s.append(a, 1, bytes(1)), 'fenced');
        await rejectsWith(s.checkpoint(a, bytes(1), 0), 'fenced');
        await rejectsWith(s.renew(a, 1000), 'fenced');
        await s.append(b, 1, bytes(7));
        expect((await s.load('x'))!.journal.map((e) => Array.from(e.bytes))).toEqual([[7]]);
        // releasing a stale lease does not release the current one
        await s.release(a);
        const again = await s.acquire('x', 'C', 1000);
        expect('held' in again).toBe(true);
      } finally {
        await s.close();
      }
    });

    it('an expired lease: its holder may renew while nobody took it; once taken over it is fenced', async () => {
      const s = await open();
      try {
        const a = await grant(s, 'e', 'A', 40);
        await sleep(40 + slack);
        const a2 = await s.renew(a, 40); // nobody took it: still current
        expect(a2.token).toBe(a.token);
        await s.append(a2, 1, bytes(1));
        await sleep(40 + slack);
        const b = await grant(s, 'e', 'B', 10_000); // ran out: B takes over
        expect(b.token).toBeGreaterThan(a.token);
        await rejectsWith(s.append(a2, 2, bytes(2)), 'fenced');
        await rejectsWith(s.renew(a2, 1000), 'fenced');
        await s.append(b, 2, bytes(3));
        expect((await s.load('e'))!.journal.map((e) => e.seq)).toEqual([1, 2]);
      } finally {
        await s.close();
      }
    });

    it('list reports ids in order with bytes; delete drops everything and fences the old holder; tokens are not reused', async () => {
      const s = await open();
      try {
        const l1 = await grant(s, 's2', 'w');
        await s.append(l1, 1, bytes(1, 2, 3));
        await s.checkpoint(l1, new Uint8Array(10), 1);
        await s.append(l1, 2, bytes(4, 5));
        const l2 = await grant(s, 's1', 'w');
        await s.append(l2, 1, bytes(1));
        const list = await s.list();
        expect(list.map((i) => i.id)).toEqual(['s1', 's2']);
        expect(list.map((i) => i.bytes)).toEqual([1, 12]);
        for (const i of list) {
          expect(i.updatedAt).toBeGreaterThan(Date.now() - 60_000);
          expect(i.expiresAt).toBeNull();
        }
        await s.delete('s2');
        expect(await s.load('s2')).toBeNull();
        expect((await s.list()).map((i) => i.id)).toEqual(['s1']);
        await rejectsWith(s.append(l1, 3, bytes(1)), 'fenced');
        const l3 = await grant(s, 's2', 'w');
        expect(l3.token).toBeGreaterThan(l1.token);
        await rejectsWith(s.append(l1, 1, bytes(1)), 'fenced');
      } finally {
        await s.close();
      }
    });

    it('bad ids are ConfigErrors; calls after close are closed', async () => {
      const s = await open();
      for (const id of ['', '.hidden', 'a/b', 'a b', 'x'.repeat(129), '../up']) {
        await expect(s.load(id)).rejects.toMatchObject({ name: 'ConfigError' });
        await expect(s.acquire(id, 'w', 1000)).rejects.toMatchObject({ name: 'ConfigError' });
      }
      await s.close();
      await rejectsWith(s.load('a'), 'closed');
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('a second handle (another process) sees the writes and the lease', async () => {
        const s = await open();
        const t = await reopen(s);
        try {
          const l = await grant(s, 'shared', 'A');
          await s.append(l, 1, bytes(1));
          await s.checkpoint(l, bytes(2, 2), 1);
          await s.append(l, 2, bytes(3));
          const got = await t.load('shared');
          expect(Array.from(got!.checkpoint!.bytes)).toEqual([2, 2]);
          expect(got!.journal.map((e) => e.seq)).toEqual([2]);
          const r = await t.acquire('shared', 'B', 1000);
          expect('held' in r && r.held.owner).toBe('A');
        } finally {
          await t.close();
          await s.close();
        }
      });
    }
  });
}

/** TTL: a session untouched for ttlMs is gone from list and load. `open(ttl)` opens a fresh store with it. */
export function storeTtlContract(name: string, open: (ttlMs: number) => Promise<SessionStore>, waitMs = 120): void {
  it(`${name}: sessions expire ttlMs after their last write`, async () => {
    const s = await open(waitMs);
    try {
      const l = await grant(s, 'old', 'w');
      await s.append(l, 1, bytes(1));
      const info = (await s.list())[0]!;
      expect(info.expiresAt).not.toBeNull();
      expect(info.expiresAt! - info.updatedAt).toBe(waitMs);
      await sleep(waitMs + 60);
      expect(await s.load('old')).toBeNull();
      expect((await s.list()).map((i) => i.id)).toEqual([]);
    } finally {
      await s.close();
    }
  });
}
