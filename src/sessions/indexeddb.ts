// indexeddb:NAME: the browser store. One IndexedDB database NAME (version 1) with five object stores:
//   checkpoints  id -> { bytes, through }              at most one per session
//   journal      [id, seq] -> { bytes }                 input records, ascending by seq within an id
//   leases       id -> { token, owner, until, at }      the lease record: fencing token, holder, expiry, grant time
//   sessions     id -> { updatedAt, bytes, through }    bookkeeping for list()/TTL, present while data exists
//   meta         'lastToken' -> number                  tokens grow across the database, never reused
// Every write is one readwrite transaction that first reads the lease record and compares its token with the
// writer's: the fencing check and the write commit or abort together (IndexedDB serializes readwrite
// transactions over the same object stores, across tabs and workers). A checkpoint replaces the previous one
// and deletes the journal records it includes in the same transaction.
//
// One writer across tabs: where the Web Locks API exists (navigator.locks: every browser tab and worker of a
// secure origin), a lease is granted only to a context that holds the session's Web Lock, and the lock is
// kept while the lease lives. The browser releases a lock when its tab or worker goes away, so a tab that was
// closed or crashed is taken over at once instead of when its lease record runs out; a lock still held means
// a live holder ('busy'). A lease that runs out without renewal gives its lock up (a timer), so an abandoned
// handle in a live tab is taken over like a dead one. The lease record and its token remain the authority: a
// tab that lost its lock can never write after another took over. Without Web Locks (Node under
// fake-indexeddb, insecure origins) the lease record alone gives one writer.
//
// Never imports a Node built-in: this file is what browser bundles of ./sessions open.
import { ConfigError, describe, SessionError } from '../core/errors.js';
import { checkMs, checkSeq, checkSessionId, type JournalEntry, type Lease, type LeaseHeld, type SessionInfo, type SessionStore, type StoredSession } from './store.js';

const VERSION = 1;
const STORES = ['checkpoints', 'journal', 'leases', 'sessions', 'meta'] as const;
type StoreName = (typeof STORES)[number];

interface LeaseRecord {
  token: number;
  owner: string;
  /** ms since the epoch when the lease runs out unless renewed (0: released) */
  until: number;
  /** ms since the epoch of the grant (TTL of a session with a lease and no data yet) */
  at: number;
}
interface SessionRecord {
  updatedAt: number;
  /** checkpoint bytes + journal record bytes held */
  bytes: number;
  /** the checkpoint's `through` (0 without one) */
  through: number;
}
interface CheckpointRecord {
  bytes: Uint8Array;
  through: number;
}

/** The Web Locks API as far as this store uses it (lib.dom's LockManager, made optional at run time). */
interface Locks {
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void> | undefined): Promise<unknown>;
}

/** What the store runs on; tests may pass their own (fake-indexeddb, a Web Locks stand-in). */
export interface IndexedDbEnv {
  indexedDB?: IDBFactory;
  /** the Web Locks API; null: none (lease records only); default navigator.locks where it exists */
  locks?: Locks | null;
}

/** A Web Lock this store holds for a lease: released on release(), on expiry without renewal, on close(). */
interface HeldLock {
  owner: string;
  token: number;
  release: () => void;
  timer: ReturnType<typeof setTimeout> | null;
}

const req = <T>(r: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });

function defaultLocks(): Locks | null {
  const nav = (globalThis as { navigator?: { locks?: Locks } }).navigator;
  return nav?.locks !== undefined && typeof nav.locks.request === 'function' ? nav.locks : null;
}

export class IndexedDbStore implements SessionStore {
  readonly url: string;
  private readonly db: IDBDatabase;
  private readonly ttlMs: number | null;
  private readonly locks: Locks | null;
  private readonly held = new Map<string, HeldLock>();
  private readonly keyRange: typeof IDBKeyRange;
  private closed = false;
  /** the clock (ms since the epoch, shared by all tabs on the machine); tests may replace it */
  now: () => number = Date.now;

  /** Use openStore('indexeddb:NAME') or openIndexedDbStore. */
  constructor(name: string, db: IDBDatabase, keyRange: typeof IDBKeyRange, ttlMs: number | null, locks: Locks | null) {
    this.url = `indexeddb:${name}`;
    this.keyRange = keyRange;
    this.db = db;
    this.ttlMs = ttlMs;
    this.locks = locks;
    // another context upgrading the database: let it (our later calls fail as 'store')
    db.onversionchange = () => db.close();
  }

  private open(): void {
    if (this.closed) throw new SessionError('closed', `the ${this.url} store was closed`);
  }

  /** journal keys [id, lo..hi] */
  private journalRange(id: string, lo = 0, hi = Number.MAX_SAFE_INTEGER): IDBKeyRange {
    return this.keyRange.bound([id, lo], [id, hi]);
  }

  private lockName(id: string): string {
    return `toeplitz-attention ${this.url} ${id}`;
  }

  /**
   * Run `body` in one transaction over `stores`; resolves with its result once the transaction committed
   * (durably for writes: 'strict'). A throw in `body` aborts the transaction, so nothing of it is kept.
   */
  private async tx<T>(mode: IDBTransactionMode, stores: readonly StoreName[], what: string, body: (t: IDBTransaction) => Promise<T>): Promise<T> {
    this.open();
    let t: IDBTransaction;
    try {
      t = this.db.transaction(stores as StoreName[], mode, mode === 'readwrite' ? { durability: 'strict' } : undefined);
    } catch (e) {
      throw new SessionError('store', `${this.url}: ${what}: cannot start a transaction: ${(e as Error)?.message ?? String(e)}`, undefined, undefined, { cause: e });
    }
    const done = new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error ?? new Error('transaction aborted'));
    });
    let result: T;
    try {
      result = await body(t);
    } catch (e) {
      try {
        t.abort();
      } catch {
        // already finished
      }
      await done.catch(() => undefined);
      if (e instanceof SessionError || e instanceof ConfigError) throw e;
      throw new SessionError('store', `${this.url}: ${what} failed: ${(e as Error)?.message ?? String(e)}`, undefined, undefined, { cause: e });
    }
    try {
      await done;
    } catch (e) {
      throw new SessionError('store', `${this.url}: ${what} failed to commit: ${(e as Error)?.message ?? String(e)}`, undefined, undefined, { cause: e });
    }
    return result;
  }

  /** Whether the session's data (or lease-only record) ran out its TTL. */
  private expired(info: SessionRecord | undefined, lease: LeaseRecord | undefined, now: number): boolean {
    if (this.ttlMs === null) return false;
    const at = info?.updatedAt ?? lease?.at;
    return at !== undefined && at + this.ttlMs <= now;
  }

  /** Delete everything of `id` inside transaction `t` (over all stores but meta). */
  private async purge(t: IDBTransaction, id: string): Promise<void> {
    await Promise.all([
      req(t.objectStore('checkpoints').delete(id)),
      req(t.objectStore('journal').delete(this.journalRange(id))),
      req(t.objectStore('leases').delete(id)),
      req(t.objectStore('sessions').delete(id)),
    ]);
  }

  /**
   * Inside a write transaction: the session's bookkeeping when `lease` is still current, else 'fenced'
   * (an expired session is purged first, as the other stores drop it when touched).
   */
  private async fence(t: IDBTransaction, lease: Lease): Promise<SessionRecord | undefined> {
    const [rec, info] = await Promise.all([req(t.objectStore('leases').get(lease.id)) as Promise<LeaseRecord | undefined>, req(t.objectStore('sessions').get(lease.id)) as Promise<SessionRecord | undefined>]);
    let gone = rec === undefined;
    if (!gone && this.expired(info, rec, this.now())) {
      await this.purge(t, lease.id);
      gone = true;
    }
    if (gone || rec!.token !== lease.token) {
      throw new SessionError('fenced', `session ${lease.id}: the lease with token ${lease.token} is no longer current (${gone ? 'the session was deleted' : `token ${rec!.token} was granted since`})`, lease.id);
    }
    return info;
  }

  // ---------------------------------------------------------------------------------------------
  // Web Locks

  /** Try to take the session's Web Lock without waiting; the lock is held until the returned release runs. */
  private tryLock(id: string): Promise<(() => void) | null> {
    const locks = this.locks!;
    return new Promise((resolve, reject) => {
      let release!: () => void;
      const hold = new Promise<void>((r) => (release = r));
      locks
        .request(this.lockName(id), { ifAvailable: true }, (lock) => {
          if (lock === null) {
            resolve(null);
            return undefined;
          }
          resolve(release);
          return hold;
        })
        .catch((e: unknown) => reject(new SessionError('store', `${this.url}: session ${id}: the Web Lock request failed: ${(e as Error)?.message ?? String(e)}`, id, undefined, { cause: e })));
    });
  }

  /** Give up the Web Lock held for `id` (if any). */
  private unlock(id: string): void {
    const h = this.held.get(id);
    if (h === undefined) return;
    this.held.delete(id);
    if (h.timer !== null) clearTimeout(h.timer);
    h.release();
  }

  /** Keep the Web Lock for a lease; it is given up when the lease runs out unrenewed. */
  private keepLock(id: string, owner: string, token: number, release: () => void, until: number): void {
    const h: HeldLock = { owner, token, release, timer: null };
    this.held.set(id, h);
    this.armExpiry(id, h, until);
  }

  private armExpiry(id: string, h: HeldLock, until: number): void {
    if (h.timer !== null) clearTimeout(h.timer);
    h.timer = setTimeout(() => {
      if (this.held.get(id) === h) this.unlock(id);
    }, Math.max(0, until - this.now()));
    (h.timer as { unref?: () => void }).unref?.();
  }

  // ---------------------------------------------------------------------------------------------
  // The contract

  async acquire(id: string, owner: string, ttlMs: number): Promise<{ lease: Lease } | { held: LeaseHeld }> {
    this.open();
    checkSessionId(id);
    checkMs('ttlMs', ttlMs);
    if (typeof owner !== 'string' || owner.length === 0) throw new ConfigError(`a lease owner must be a non-empty string, got ${describe(owner)}`);
    // With Web Locks: the grant needs the lock (already ours when this handle renews under a new token).
    let release: (() => void) | null = null;
    const mine = this.held.get(id);
    if (this.locks !== null && !(mine !== undefined && mine.owner === owner)) {
      release = await this.tryLock(id);
      if (release === null) {
        // another live context holds it: report its lease as its record says
        const rec = await this.tx('readonly', ['leases'], `reading session ${id}'s lease`, async (t) => (await req(t.objectStore('leases').get(id))) as LeaseRecord | undefined);
        const now = this.now();
        const live = rec !== undefined && rec.until > now;
        return { held: { owner: live ? rec.owner : '(another tab or worker holding its Web Lock)', remainingMs: live ? rec.until - now : 0 } };
      }
    }
    const withLock = this.locks !== null;
    let r: { lease: Lease } | { held: LeaseHeld };
    try {
      r = await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions', 'meta'], `granting session ${id}'s lease`, async (t) => {
        const now = this.now();
        let [rec, info] = await Promise.all([req(t.objectStore('leases').get(id)) as Promise<LeaseRecord | undefined>, req(t.objectStore('sessions').get(id)) as Promise<SessionRecord | undefined>]);
        if (this.expired(info, rec, now)) {
          await this.purge(t, id);
          rec = undefined;
          info = undefined;
        }
        // a live lease of another owner holds, unless we hold the Web Lock: then its context lost the lock
        // (closed, crashed, or its lease ran out unrenewed and its timer gave the lock up)
        if (!withLock && rec !== undefined && rec.owner !== owner && rec.until > now) return { held: { owner: rec.owner, remainingMs: rec.until - now } };
        const last = ((await req(t.objectStore('meta').get('lastToken'))) as number | undefined) ?? 0;
        const token = last + 1;
        const until = now + ttlMs;
        await Promise.all([req(t.objectStore('meta').put(token, 'lastToken')), req(t.objectStore('leases').put({ token, owner, until, at: now } satisfies LeaseRecord, id))]);
        return { lease: { id, owner, token, expiresAt: until } };
      });
    } catch (e) {
      release?.();
      throw e;
    }
    if ('lease' in r) {
      if (release !== null) this.keepLock(id, owner, r.lease.token, release, r.lease.expiresAt);
      else if (mine !== undefined) {
        mine.token = r.lease.token;
        this.armExpiry(id, mine, r.lease.expiresAt);
      }
    } else release?.();
    return r;
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    this.open();
    checkMs('ttlMs', ttlMs);
    // with Web Locks, a lease renewed must hold its lock: retake it if its expiry timer gave it up
    let release: (() => void) | null = null;
    const h = this.held.get(lease.id);
    if (this.locks !== null && !(h !== undefined && h.token === lease.token)) {
      release = await this.tryLock(lease.id);
      if (release === null) throw new SessionError('fenced', `session ${lease.id}: the lease with token ${lease.token} ran out and another tab or worker holds the session's Web Lock`, lease.id);
    }
    let until: number;
    try {
      until = await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions'], `renewing session ${lease.id}'s lease`, async (t) => {
        await this.fence(t, lease);
        const now = this.now();
        const rec = (await req(t.objectStore('leases').get(lease.id))) as LeaseRecord;
        rec.until = now + ttlMs;
        await req(t.objectStore('leases').put(rec, lease.id));
        return rec.until;
      });
    } catch (e) {
      release?.();
      if (e instanceof SessionError && e.code === 'fenced') this.unlockIfToken(lease);
      throw e;
    }
    if (release !== null) this.keepLock(lease.id, lease.owner, lease.token, release, until);
    else if (h !== undefined) this.armExpiry(lease.id, h, until);
    return { ...lease, expiresAt: until };
  }

  private unlockIfToken(lease: Lease): void {
    const h = this.held.get(lease.id);
    if (h !== undefined && h.token === lease.token) this.unlock(lease.id);
  }

  async release(lease: Lease): Promise<void> {
    this.open();
    try {
      await this.tx('readwrite', ['leases'], `releasing session ${lease.id}'s lease`, async (t) => {
        const rec = (await req(t.objectStore('leases').get(lease.id))) as LeaseRecord | undefined;
        if (rec !== undefined && rec.token === lease.token) {
          rec.until = 0;
          await req(t.objectStore('leases').put(rec, lease.id));
        }
      });
    } finally {
      this.unlockIfToken(lease);
    }
  }

  async load(id: string): Promise<StoredSession | null> {
    this.open();
    checkSessionId(id);
    const got = await this.tx('readonly', ['checkpoints', 'journal', 'leases', 'sessions'], `loading session ${id}`, async (t) => {
      const [info, rec] = await Promise.all([req(t.objectStore('sessions').get(id)) as Promise<SessionRecord | undefined>, req(t.objectStore('leases').get(id)) as Promise<LeaseRecord | undefined>]);
      if (info === undefined) return null;
      if (this.expired(info, rec, this.now())) return 'expired' as const;
      const [cp, journal] = await Promise.all([
        req(t.objectStore('checkpoints').get(id)) as Promise<CheckpointRecord | undefined>,
        req(t.objectStore('journal').getAll(this.journalRange(id, info.through + 1))) as Promise<{ seq: number; bytes: Uint8Array }[]>,
      ]);
      return { checkpoint: cp === undefined ? null : { bytes: cp.bytes, through: cp.through }, journal: journal.map((e): JournalEntry => ({ seq: e.seq, bytes: e.bytes })) };
    });
    if (got === 'expired') {
      await this.dropExpired(id);
      return null;
    }
    if (got !== null && got.checkpoint === null && got.journal.length === 0) return null;
    return got;
  }

  /** Purge `id` if it is (still) expired, in its own transaction. */
  private async dropExpired(id: string): Promise<void> {
    await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions'], `dropping expired session ${id}`, async (t) => {
      const [info, rec] = await Promise.all([req(t.objectStore('sessions').get(id)) as Promise<SessionRecord | undefined>, req(t.objectStore('leases').get(id)) as Promise<LeaseRecord | undefined>]);
      if (this.expired(info, rec, this.now())) await this.purge(t, id);
    });
  }

  async append(lease: Lease, seq: number, bytes: Uint8Array): Promise<void> {
    checkSeq(seq);
    if (!(bytes instanceof Uint8Array)) throw new ConfigError(`a journal record must be a Uint8Array, got ${describe(bytes)}`);
    const copy = bytes.slice(); // ours from now on: the caller may reuse its buffer while the write runs
    await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions'], `appending journal record ${seq} of session ${lease.id}`, async (t) => {
      const info = await this.fence(t, lease);
      const journal = t.objectStore('journal');
      const had = (await req(journal.get([lease.id, seq]))) as { seq: number; bytes: Uint8Array } | undefined;
      if (had !== undefined && sameBytes(had.bytes, bytes)) return; // a retried write whose reply was lost
      if (had !== undefined || seq <= (info?.through ?? 0)) throw new SessionError('conflict', `session ${lease.id}: journal record ${seq} exists already`, lease.id, `journal record ${seq}`);
      const next: SessionRecord = { updatedAt: this.now(), bytes: (info?.bytes ?? 0) + copy.length, through: info?.through ?? 0 };
      await Promise.all([req(journal.add({ seq, bytes: copy }, [lease.id, seq])), req(t.objectStore('sessions').put(next, lease.id))]);
    });
  }

  async checkpoint(lease: Lease, bytes: Uint8Array, through: number): Promise<void> {
    if (through !== 0) checkSeq(through);
    if (!(bytes instanceof Uint8Array)) throw new ConfigError(`a checkpoint must be a Uint8Array, got ${describe(bytes)}`);
    const copy = bytes.slice(); // ours from now on: the caller may reuse its buffer while the write runs
    await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions'], `writing session ${lease.id}'s checkpoint`, async (t) => {
      const info = await this.fence(t, lease);
      const before = info?.through ?? 0;
      if (through < before) throw new SessionError('conflict', `session ${lease.id}: a checkpoint through journal record ${through} would go back from ${before}`, lease.id, 'checkpoint');
      // the journal records it includes go with the old checkpoint, in this transaction; their bytes are
      // subtracted from the session's total (a cursor reads each small record once)
      let journalBytes = 0;
      await new Promise<void>((resolve, reject) => {
        const c = t.objectStore('journal').openCursor(this.journalRange(lease.id));
        c.onerror = () => reject(c.error);
        c.onsuccess = () => {
          const cur = c.result;
          if (cur === null) return resolve();
          const v = cur.value as { seq: number; bytes: Uint8Array };
          if (v.seq <= through) cur.delete();
          else journalBytes += v.bytes.length;
          cur.continue();
        };
      });
      const next: SessionRecord = { updatedAt: this.now(), bytes: copy.length + journalBytes, through };
      await Promise.all([req(t.objectStore('checkpoints').put({ bytes: copy, through } satisfies CheckpointRecord, lease.id)), req(t.objectStore('sessions').put(next, lease.id))]);
    });
  }

  async list(): Promise<SessionInfo[]> {
    this.open();
    const rows = await this.tx('readonly', ['sessions', 'leases'], 'listing sessions', async (t) => {
      const [keys, infos] = await Promise.all([req(t.objectStore('sessions').getAllKeys()), req(t.objectStore('sessions').getAll()) as Promise<SessionRecord[]>]);
      const leases = await Promise.all(keys.map((k) => req(t.objectStore('leases').get(k)) as Promise<LeaseRecord | undefined>));
      return keys.map((k, i) => ({ id: String(k), info: infos[i]!, lease: leases[i] }));
    });
    const now = this.now();
    const out: SessionInfo[] = [];
    for (const r of rows) {
      if (this.expired(r.info, r.lease, now)) {
        await this.dropExpired(r.id);
        continue;
      }
      out.push({ id: r.id, bytes: r.info.bytes, updatedAt: r.info.updatedAt, expiresAt: this.ttlMs === null ? null : r.info.updatedAt + this.ttlMs });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async delete(id: string): Promise<void> {
    this.open();
    checkSessionId(id);
    await this.tx('readwrite', ['checkpoints', 'journal', 'leases', 'sessions'], `deleting session ${id}`, (t) => this.purge(t, id));
    this.unlock(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.held.keys()]) this.unlock(id);
    this.db.close();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Open (creating or upgrading) the database NAME. */
export async function openIndexedDbStore(name: string, options: { ttlMs: number | null }, env: IndexedDbEnv = {}): Promise<SessionStore> {
  const factory = env.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  const range = (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange;
  if (factory === undefined || range === undefined) throw new SessionError('store', `indexeddb:${name}: IndexedDB is not available in this runtime (in Node, use file:DIR, or install an IndexedDB such as fake-indexeddb)`);
  let db: IDBDatabase;
  try {
    db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = factory.open(name, VERSION);
      r.onupgradeneeded = () => {
        const d = r.result;
        for (const s of STORES) if (!d.objectStoreNames.contains(s)) d.createObjectStore(s);
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.onblocked = () => reject(new Error('another connection of an older version is open and does not close'));
    });
  } catch (e) {
    throw new SessionError('store', `indexeddb:${name}: cannot open the database: ${(e as Error)?.message ?? String(e)}`, undefined, undefined, { cause: e });
  }
  return new IndexedDbStore(name, db, range, options.ttlMs, env.locks === undefined ? defaultLocks() : env.locks);
}
