// memory: a store in this process's memory, for tests and ephemeral sessions. Each openStore('memory:')
// is a new, empty store; pass the store object around to share it. Bytes are copied in and out, so a
// caller mutating its buffers never changes what is stored. "Durable" here means: until close().
import { SessionError } from '../core/errors.js';
import { checkMs, checkSeq, checkSessionId, type JournalEntry, type Lease, type LeaseHeld, type SessionInfo, type SessionStore, type StoredSession } from './store.js';

interface Entry {
  checkpoint: { bytes: Uint8Array; through: number } | null;
  journal: Map<number, Uint8Array>;
  /** the current fencing token (0: never granted) and its holder; kept even after the lease runs out */
  token: number;
  owner: string;
  leaseUntil: number;
  updatedAt: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class MemoryStore implements SessionStore {
  readonly url = 'memory:';
  private readonly sessions = new Map<string, Entry>();
  /** tokens grow across the whole store, so a deleted and re-created session never reuses one */
  private lastToken = 0;
  private closed = false;
  private readonly ttlMs: number | null;
  /** the clock (ms); tests may replace it */
  now: () => number = Date.now;

  constructor(ttlMs: number | null = null) {
    this.ttlMs = ttlMs;
  }

  private open(): void {
    if (this.closed) throw new SessionError('closed', 'the memory: store was closed');
  }

  /** The entry, dropping it first when its TTL ran out. */
  private entry(id: string): Entry | undefined {
    const e = this.sessions.get(id);
    if (e !== undefined && this.ttlMs !== null && e.updatedAt + this.ttlMs <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return e;
  }

  private entryFor(id: string): Entry {
    let e = this.entry(id);
    if (e === undefined) {
      e = { checkpoint: null, journal: new Map(), token: 0, owner: '', leaseUntil: 0, updatedAt: this.now() };
      this.sessions.set(id, e);
    }
    return e;
  }

  /** The entry a write under `lease` may change, or a 'fenced' error. */
  private fenced(lease: Lease): Entry {
    this.open();
    const e = this.entry(lease.id);
    if (e === undefined || e.token !== lease.token) {
      throw new SessionError('fenced', `session ${lease.id}: the lease with token ${lease.token} is no longer current (${e === undefined ? 'the session was deleted' : `token ${e.token} was granted since`})`, lease.id);
    }
    return e;
  }

  async acquire(id: string, owner: string, ttlMs: number): Promise<{ lease: Lease } | { held: LeaseHeld }> {
    this.open();
    checkSessionId(id);
    checkMs('ttlMs', ttlMs);
    const e = this.entryFor(id);
    const now = this.now();
    if (e.token !== 0 && e.owner !== owner && e.leaseUntil > now) return { held: { owner: e.owner, remainingMs: e.leaseUntil - now } };
    e.token = ++this.lastToken;
    e.owner = owner;
    e.leaseUntil = now + ttlMs;
    return { lease: { id, owner, token: e.token, expiresAt: e.leaseUntil } };
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    checkMs('ttlMs', ttlMs);
    const e = this.fenced(lease);
    e.leaseUntil = this.now() + ttlMs;
    return { ...lease, expiresAt: e.leaseUntil };
  }

  async release(lease: Lease): Promise<void> {
    this.open();
    const e = this.entry(lease.id);
    if (e !== undefined && e.token === lease.token) e.leaseUntil = 0;
  }

  async load(id: string): Promise<StoredSession | null> {
    this.open();
    checkSessionId(id);
    const e = this.entry(id);
    if (e === undefined || (e.checkpoint === null && e.journal.size === 0)) return null;
    const through = e.checkpoint?.through ?? 0;
    const journal: JournalEntry[] = [];
    for (const [seq, bytes] of e.journal) if (seq > through) journal.push({ seq, bytes: bytes.slice() });
    journal.sort((a, b) => a.seq - b.seq);
    return { checkpoint: e.checkpoint === null ? null : { bytes: e.checkpoint.bytes.slice(), through }, journal };
  }

  async append(lease: Lease, seq: number, bytes: Uint8Array): Promise<void> {
    checkSeq(seq);
    const e = this.fenced(lease);
    const had = e.journal.get(seq);
    if (had !== undefined && sameBytes(had, bytes)) return; // a retried write whose reply was lost
    if (had !== undefined || seq <= (e.checkpoint?.through ?? 0)) throw new SessionError('conflict', `session ${lease.id}: journal record ${seq} exists already`, lease.id, `journal record ${seq}`);
    e.journal.set(seq, bytes.slice());
    e.updatedAt = this.now();
  }

  async checkpoint(lease: Lease, bytes: Uint8Array, through: number): Promise<void> {
    if (through !== 0) checkSeq(through);
    const e = this.fenced(lease);
    const before = e.checkpoint?.through ?? 0;
    if (through < before) throw new SessionError('conflict', `session ${lease.id}: a checkpoint through journal record ${through} would go back from ${before}`, lease.id, 'checkpoint');
    e.checkpoint = { bytes: bytes.slice(), through };
    for (const seq of [...e.journal.keys()]) if (seq <= through) e.journal.delete(seq);
    e.updatedAt = this.now();
  }

  async list(): Promise<SessionInfo[]> {
    this.open();
    const out: SessionInfo[] = [];
    for (const id of [...this.sessions.keys()].sort()) {
      const e = this.entry(id);
      if (e === undefined || (e.checkpoint === null && e.journal.size === 0)) continue;
      let bytes = e.checkpoint?.bytes.length ?? 0;
      for (const b of e.journal.values()) bytes += b.length;
      out.push({ id, bytes, updatedAt: e.updatedAt, expiresAt: this.ttlMs === null ? null : e.updatedAt + this.ttlMs });
    }
    return out;
  }

  async delete(id: string): Promise<void> {
    this.open();
    checkSessionId(id);
    this.sessions.delete(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sessions.clear();
  }
}
