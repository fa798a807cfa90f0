// indexeddb: in Node under fake-indexeddb: the store contract, with the lease record alone (Node has no Web
// Locks) and with a Web Locks stand-in shared by all handles (what tabs of one origin share); a holder whose
// context went away (lock released, lease record still live) is taken over at once with locks, not without.
// The real IndexedDB and Web Locks of Chromium: test/browser-sessions.test.ts.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { openStore, openSession, SessionError } from '../../src/sessions/index.js';
import { openIndexedDbStore, type IndexedDbEnv } from '../../src/sessions/indexeddb.js';
import { tinyModel } from '../model/tiny.js';
import { storeContract, storeTtlContract } from './storeContract.js';

let n = 0;
const fresh = (): string => `tzs-idb-${process.pid}-${n++}`;

/** The Web Locks API's exclusive, ifAvailable subset, one instance per "origin". */
function locksStandIn(): NonNullable<IndexedDbEnv['locks']> & { heldNames: () => string[] } {
  const held = new Set<string>();
  return {
    heldNames: () => [...held],
    async request(name, _options, callback) {
      if (held.has(name)) return callback(null);
      held.add(name);
      try {
        return await callback({ name, mode: 'exclusive' });
      } finally {
        held.delete(name);
      }
    },
  };
}

storeContract('indexeddb: (fake-indexeddb, lease record only)', async () => openStore(`indexeddb:${fresh()}`), { reopen: async (first) => openStore(first.url) });
storeTtlContract('indexeddb: (fake-indexeddb)', async (ttlMs) => openStore(`indexeddb:${fresh()}`, { ttlMs }));

const origin = locksStandIn();
storeContract('indexeddb: (fake-indexeddb, with Web Locks)', async () => openIndexedDbStore(fresh(), { ttlMs: null }, { locks: origin }), {
  reopen: async (first) => openIndexedDbStore(first.url.slice('indexeddb:'.length), { ttlMs: null }, { locks: origin }),
});

describe('indexeddb: one writer', () => {
  it('with Web Locks, a holder whose context went away (lock released, lease record live) is taken over at once', async () => {
    const locks = locksStandIn();
    const name = fresh();
    const a = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    const b = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    const ra = await a.acquire('s', 'A', 60_000);
    if (!('lease' in ra)) throw new Error('A was not granted');
    await a.append(ra.lease, 1, Uint8Array.of(1));
    expect(locks.heldNames()).toEqual([`toeplitz-attention indexeddb:${name} s`]);
    const busy = await b.acquire('s', 'B', 60_000);
    expect('held' in busy && busy.held.owner).toBe('A');
    // A's tab closes without releasing its lease: the browser drops its locks (close() does the same here)
    await a.close();
    expect(locks.heldNames()).toEqual([]);
    const rb = await b.acquire('s', 'B', 60_000);
    if (!('lease' in rb)) throw new Error(`B was not granted: ${JSON.stringify(rb)}`);
    expect(rb.lease.token).toBeGreaterThan(ra.lease.token);
    // A's handle (say, a frozen tab waking up with another store object) can never write again
    const a2 = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    await expect(a2.append(ra.lease, 2, Uint8Array.of(2))).rejects.toMatchObject({ code: 'fenced' });
    await expect(a2.checkpoint(ra.lease, Uint8Array.of(9), 1)).rejects.toMatchObject({ code: 'fenced' });
    await expect(a2.renew(ra.lease, 1000)).rejects.toMatchObject({ code: 'fenced' });
    await b.append(rb.lease, 2, Uint8Array.of(3));
    expect((await a2.load('s'))!.journal.map((e) => [e.seq, ...e.bytes])).toEqual([[1, 1], [2, 3]]);
    await a2.close();
    await b.close();
  });

  it('without Web Locks, the live lease record alone holds the session until it runs out', async () => {
    const name = fresh();
    const a = await openIndexedDbStore(name, { ttlMs: null }, { locks: null });
    const b = await openIndexedDbStore(name, { ttlMs: null }, { locks: null });
    const ra = await a.acquire('s', 'A', 80);
    if (!('lease' in ra)) throw new Error('A was not granted');
    await a.close();
    const held = await b.acquire('s', 'B', 1000);
    expect('held' in held && held.held.owner).toBe('A');
    await new Promise((r) => setTimeout(r, 120));
    expect('lease' in (await b.acquire('s', 'B', 1000))).toBe(true);
    await b.close();
  });

  it('a lease that runs out unrenewed gives its Web Lock up, so an abandoned handle in a live tab is taken over', async () => {
    const locks = locksStandIn();
    const name = fresh();
    const a = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    const ra = await a.acquire('s', 'A', 60);
    if (!('lease' in ra)) throw new Error('A was not granted');
    const early = await a.acquire('s', 'B', 1000);
    expect('held' in early).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(locks.heldNames()).toEqual([]);
    const rb = await a.acquire('s', 'B', 1000);
    expect('lease' in rb).toBe(true);
    await expect(a.renew(ra.lease, 1000)).rejects.toMatchObject({ code: 'fenced' });
    await a.close();
  });

  it('durable sessions: a second writer is busy, then continues exactly after the first closes', async () => {
    const model = tinyModel(2);
    const locks = locksStandIn();
    const name = fresh();
    const s1 = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    const s2 = await openIndexedDbStore(name, { ttlMs: null }, { locks });
    const ref: number[] = [];
    for await (const t of model.session({ seed: 5 }).generate('hello', { maxTokens: 60 })) ref.push(t.token);
    const w1 = await openSession(model, s1, 'chat', { seed: 5, checkpointEvery: 16 });
    const got: number[] = [];
    const it1 = w1.generate('hello', { maxTokens: 60 })[Symbol.asyncIterator]();
    for (let i = 0; i < 25; i++) got.push((await it1.next()).value!.token);
    const e = await openSession(model, s2, 'chat').then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(SessionError);
    expect((e as SessionError).code).toBe('busy');
    w1.abandon(); // a crash mid-generation: the lease is not released
    await s1.close(); // ... and its tab goes away: the Web Lock with it
    const w2 = await openSession(model, s2, 'chat');
    expect(w2.pending()).toEqual({ from: 6, to: 65 });
    for await (const t of w2.resume({ from: 5 + 26 })) got.push(t.token);
    expect(got).toEqual(ref);
    await w2.close();
    await s2.close();
  });

  it('bad input: no IndexedDB is a store error; a bad URL or record is a ConfigError', async () => {
    const g = globalThis as { indexedDB?: IDBFactory };
    const saved = g.indexedDB;
    g.indexedDB = undefined;
    try {
      await expect(openStore('indexeddb:y')).rejects.toMatchObject({ name: 'SessionError', code: 'store' });
    } finally {
      g.indexedDB = saved;
    }
    await expect(openStore('indexeddb:')).rejects.toMatchObject({ name: 'ConfigError' });
    const s = await openStore(`indexeddb:${fresh()}`);
    const r = await s.acquire('a', 'w', 1000);
    if (!('lease' in r)) throw new Error('not granted');
    await expect(s.append(r.lease, 0, Uint8Array.of(1))).rejects.toMatchObject({ name: 'ConfigError' });
    await expect(s.append(r.lease, 1, [1] as never)).rejects.toMatchObject({ name: 'ConfigError' });
    await s.close();
  });
});
