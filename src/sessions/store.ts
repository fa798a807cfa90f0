// The storage contract under durable sessions: a small async interface that every store (memory:, file:,
// redis://, indexeddb:) implements the same way. A store keeps, per session id:
//   - at most one checkpoint: opaque bytes plus `through`, the sequence number of the last journal record
//     the checkpoint already includes;
//   - a journal: opaque records, each with a sequence number (an integer >= 1, strictly increasing);
//   - a lease: which writer may write the session now, and its fencing token.
// The store never parses the bytes it keeps (the sessions layer frames and checksums them); it only
// guarantees atomicity, durability and fencing, as stated on each method below.
//
// Fencing. acquire() hands out a token, an integer that grows with every grant in the store (never
// reused, not even after delete()). Every write names the lease it is made under; the store performs
// the write only if that token is still the session's current one, checked atomically with the write
// (or, for the file store, immediately before publishing it: see docs/sessions.md). A writer whose lease
// expired is still current as long as nobody acquired the session since, so it may renew() and go on.
//
// Errors: every method rejects with SessionError: 'busy' is never thrown by the store (acquire returns
// the holder instead); 'fenced' when the lease is no longer current; 'conflict' when a journal sequence
// number is taken; 'store' when the backing store fails (unreachable, I/O); 'closed' after close().
// Ids reaching a store are already checked by checkSessionId.
import { ConfigError, describe } from '../core/errors.js';

/** The right to write one session, granted by acquire(). */
export interface Lease {
  /** the session id */
  readonly id: string;
  /** who holds it (a random string per DurableSession) */
  readonly owner: string;
  /** the fencing token: every write under this lease is refused once another token was granted */
  readonly token: number;
  /** when the lease runs out unless renewed (ms since the epoch, by the store's clock where it has one) */
  readonly expiresAt: number;
}

/** acquire()'s answer when another owner's lease is live. */
export interface LeaseHeld {
  /** the holder's owner string */
  readonly owner: string;
  /** ms until that lease runs out unless its holder renews it (>= 0) */
  readonly remainingMs: number;
}

/** One journal record as stored. */
export interface JournalEntry {
  /** its sequence number (>= 1) */
  readonly seq: number;
  /** the bytes given to append() */
  readonly bytes: Uint8Array;
}

/** Everything a store keeps for one session, as load() returns it. */
export interface StoredSession {
  /** the latest checkpoint, or null before the first one */
  readonly checkpoint: { readonly bytes: Uint8Array; readonly through: number } | null;
  /** journal records with seq > checkpoint.through (all of them without a checkpoint), ascending by seq */
  readonly journal: readonly JournalEntry[];
}

/** One session as list() reports it. */
export interface SessionInfo {
  readonly id: string;
  /** bytes the store holds for it (checkpoint + journal records; lease bookkeeping not counted) */
  readonly bytes: number;
  /** ms since the epoch of the last write */
  readonly updatedAt: number;
  /** when the store will drop it (ms since the epoch), or null when the store has no TTL */
  readonly expiresAt: number | null;
}

/** Options of openStore(url, options). */
export interface StoreOptions {
  /**
   * Drop a session this long after its last write (ms; default: never). Redis expires keys itself; the
   * other stores drop expired sessions when they are listed, loaded or acquired.
   */
  ttlMs?: number;
}

/**
 * A session store. All methods are async and safe to call concurrently for different sessions; for one
 * session, the sessions layer issues writes one at a time (appends may overlap one checkpoint write).
 */
export interface SessionStore {
  /** the URL the store was opened with (no password) */
  readonly url: string;

  /**
   * Take the session's lease for `owner` for `ttlMs`, creating nothing else. Granted (a new token) when
   * nobody holds it or the holder's lease ran out; when `owner` itself holds a live lease it is renewed
   * under a new token. Otherwise returns the live holder (never throws 'busy': the caller decides whether
   * to wait).
   */
  acquire(id: string, owner: string, ttlMs: number): Promise<{ lease: Lease } | { held: LeaseHeld }>;

  /**
   * Extend a lease by `ttlMs` from now, keeping its token. Rejects with 'fenced' when another token was
   * granted since (or the session was deleted); an expired lease nobody took is renewed.
   */
  renew(lease: Lease, ttlMs: number): Promise<Lease>;

  /** Give the lease up (the next acquire is granted at once). No-op when it is no longer current. */
  release(lease: Lease): Promise<void>;

  /**
   * Everything kept for the session, or null when there is none. Reading needs no lease. Journal
   * records at or below the checkpoint's `through` are never returned.
   */
  load(id: string): Promise<StoredSession | null>;

  /**
   * Add a journal record. Resolves once the record is durable (it survives a crash of this process and
   * of the store process, to the store's durability setting). Rejects with 'fenced' (lease not current),
   * 'conflict' (`seq` exists with other bytes, or is at or below the checkpoint's `through`), 'store'.
   * Appending the very bytes `seq` holds succeeds (a retry of a write whose reply was lost). A rejected
   * append leaves nothing behind.
   */
  append(lease: Lease, seq: number, bytes: Uint8Array): Promise<void>;

  /**
   * Replace the checkpoint, atomically: a reader sees the old checkpoint or the new one, never a mix. The
   * journal records with seq <= `through` are dropped with it (as seen by load()). Resolves once durable.
   * Rejects with 'fenced' or 'store' and then leaves the previous checkpoint in place. `through` must
   * not go down.
   */
  checkpoint(lease: Lease, bytes: Uint8Array, through: number): Promise<void>;

  /** The sessions held, in id order (expired ones dropped first). */
  list(): Promise<SessionInfo[]>;

  /** Drop a session, its checkpoint, journal and lease (a live writer's next write is then 'fenced'). */
  delete(id: string): Promise<void>;

  /** Release what the store holds (connections, handles). Further calls reject with 'closed'. */
  close(): Promise<void>;
}

/** Session ids: 1-128 characters of [A-Za-z0-9._-], not starting with '.', safe as file names and keys. */
export const SESSION_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** Validate a session id (the one place). */
export function checkSessionId(id: unknown): string {
  if (typeof id !== 'string' || !SESSION_ID.test(id)) {
    throw new ConfigError(`a session id must be 1-128 characters of [A-Za-z0-9._-] not starting with '.', got ${describe(id)}`);
  }
  return id;
}

/** Validate a duration option in ms (finite, integer, >= min). */
export function checkMs(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31 - 1) {
    throw new ConfigError(`${name} must be an integer number of ms in [${min}, ${2 ** 31 - 1}], got ${describe(value)}`);
  }
  return value;
}

/** Validate openStore's options. */
export function checkStoreOptions(o: StoreOptions | undefined): { ttlMs: number | null } {
  if (o === undefined) return { ttlMs: null };
  if (o === null || typeof o !== 'object') throw new ConfigError(`store options must be an object { ttlMs? }, got ${describe(o)}`);
  return { ttlMs: o.ttlMs === undefined ? null : checkMs('ttlMs', o.ttlMs) };
}

/** Validate a journal sequence number. */
export function checkSeq(seq: unknown): number {
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1 || seq > Number.MAX_SAFE_INTEGER) {
    throw new ConfigError(`a journal sequence number must be an integer >= 1, got ${describe(seq)}`);
  }
  return seq;
}
