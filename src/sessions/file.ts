// file:DIR, the Node embedded store: a folder per session holding plain files, each written with the
// library's one atomic writer (codec writeFileAtomicAsync: temp file, fsync, rename or link, fsync the
// folder), off the event loop (libuv's pool). Chosen over SQLite because it needs no native add-on (a
// browser or a plain `npm install` never builds one) and a checkpoint is one large blob written whole,
// which a file does with no copy into a database page cache. Layout of DIR/<id>/:
//   c.<through, 16 digits>  a checkpoint: 16-byte header (magic "TZFC", version 1, through as float64) + the
//                       checkpoint bytes, published with link(2) (never replacing); the one with the largest
//                       `through` is the session's, older ones go once a newer one is published
//   j.<seq, 16 digits>  one journal record per file, published with link(2), which never replaces: two
//                       writers can never both publish the same sequence number
//   lease.<token>       the lease: JSON { owner, expiresAt }; the largest token is the current one; a new
//                       one (the largest + 1) is published with link(2) too, so of two racing acquirers
//                       exactly one wins
//   epoch               the clock (ms) when the folder was made: the first token is epoch + 1
// Fencing: every write checks, after its bytes are durable in the temp file and right before publishing
// them, that its lease is still the largest token and names its owner. Between that check and the link there is
// no lock (POSIX has no compare-and-link), so a writer stalled there for longer than its lease can still publish
// once, and the layout makes that harmless: a journal record's link(2) refuses a sequence number the new holder
// wrote (then the later writer gets 'conflict'), and a late checkpoint is a new file that never replaces the new
// holder's: readers take the largest `through`, so a stale checkpoint can neither hide records nor, through the
// journal pruning that follows a checkpoint, lose them (each writer prunes only below its own `through`, which the
// largest checkpoint covers). test/sessions/file.test.ts stalls a writer there to show it.
// No static Node imports: node:fs and node:path come from process.getBuiltinModule at call time, so a
// browser bundle that reaches openStore holds nothing Node-only.
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import { writeFileAtomicAsync } from '../codec/file.js';
import { ConfigError, describe, SessionError } from '../core/errors.js';
import { checkMs, checkSeq, checkSessionId, SESSION_ID, type JournalEntry, type Lease, type LeaseHeld, type SessionInfo, type SessionStore, type StoredSession } from './store.js';

const MAGIC = 0x4346_5a54; // "TZFC" little-endian
const HEADER = 16;
const DIGITS = 16;

function builtin<T>(id: string): T {
  const mod = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.(id);
  if (mod === undefined) throw new ConfigError(`the file: store needs Node.js >= 20.16 (process.getBuiltinModule('${id}')); in browsers use indexeddb:NAME`);
  return mod as T;
}

const code = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;
const pad = (n: number): string => String(n).padStart(DIGITS, '0');

/** Open (creating) the folder of a file: store. */
export async function openFileStore(url: string, o: { ttlMs: number | null }): Promise<SessionStore> {
  let dir = url.slice('file:'.length);
  if (dir.startsWith('//')) {
    const { fileURLToPath } = builtin<typeof import('node:url')>('node:url');
    dir = fileURLToPath(url);
  }
  const path = builtin<typeof Path>('node:path');
  const store = new FileStore(url, path.resolve(dir), o.ttlMs);
  await store.init();
  return store;
}

export class FileStore implements SessionStore {
  readonly url: string;
  readonly dir: string;
  private readonly ttlMs: number | null;
  private readonly fs = builtin<typeof Fs>('node:fs').promises;
  private readonly path = builtin<typeof Path>('node:path');
  private closed = false;

  constructor(url: string, dir: string, ttlMs: number | null) {
    this.url = url;
    this.dir = dir;
    this.ttlMs = ttlMs;
  }

  /** @internal */
  async init(): Promise<void> {
    try {
      await this.fs.mkdir(this.dir, { recursive: true });
      const st = await this.fs.stat(this.dir);
      if (!st.isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new SessionError('store', `file: store ${this.dir} cannot be used as a folder: ${(e as Error).message}`, undefined, undefined, { cause: e });
    }
  }

  private open(): void {
    if (this.closed) throw new SessionError('closed', `the file: store ${this.dir} was closed`);
  }

  private sessionDir(id: string): string {
    return this.path.join(this.dir, checkSessionId(id));
  }

  /** Run an fs operation, turning its failures into SessionError 'store' (SessionErrors pass through). */
  private async io<T>(id: string | undefined, what: string, f: () => Promise<T>): Promise<T> {
    this.open();
    try {
      return await f();
    } catch (e) {
      if (e instanceof SessionError || e instanceof ConfigError) throw e;
      throw new SessionError('store', `${id === undefined ? '' : `session ${id}: `}${what} in ${this.dir} failed: ${(e as Error).message}`, id, undefined, { cause: e });
    }
  }

  private async names(dir: string): Promise<string[] | null> {
    try {
      return await this.fs.readdir(dir);
    } catch (e) {
      if (code(e) === 'ENOENT') return null;
      throw e;
    }
  }

  /** The session's folder listing, or null when it does not exist (or expired: then it is removed). */
  private async live(id: string): Promise<string[] | null> {
    const d = this.sessionDir(id);
    const names = await this.names(d);
    if (names === null || this.ttlMs === null) return names;
    const updated = await this.updatedAt(d, names);
    if (updated !== null && updated + this.ttlMs <= Date.now()) {
      await this.fs.rm(d, { recursive: true, force: true });
      return null;
    }
    return names;
  }

  private async updatedAt(d: string, names: string[]): Promise<number | null> {
    let t: number | null = null;
    for (const n of names) {
      if (!n.startsWith('c.') && !n.startsWith('j.')) continue;
      try {
        const st = await this.fs.stat(this.path.join(d, n));
        t = Math.max(t ?? 0, st.mtimeMs);
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
      }
    }
    return t;
  }

  private static tokens(names: string[]): number[] {
    return names.filter((n) => n.startsWith('lease.')).map((n) => Number(n.slice(6))).filter((t) => Number.isSafeInteger(t)).sort((a, b) => a - b);
  }

  private async readLease(id: string, token: number): Promise<{ owner: string; expiresAt: number } | null> {
    try {
      const j = JSON.parse(await this.fs.readFile(this.path.join(this.sessionDir(id), `lease.${pad(token)}`), 'utf8')) as { owner: string; expiresAt: number };
      return typeof j.owner === 'string' && typeof j.expiresAt === 'number' ? j : null;
    } catch (e) {
      if (code(e) === 'ENOENT') return null;
      throw e;
    }
  }

  /** Throw 'fenced' unless `lease` is the session's current lease. */
  private async current(lease: Lease): Promise<void> {
    const names = await this.names(this.sessionDir(lease.id));
    const tokens = names === null ? [] : FileStore.tokens(names);
    const top = tokens.length === 0 ? null : tokens[tokens.length - 1]!;
    const held = top === lease.token ? await this.readLease(lease.id, top) : null;
    if (held === null || held.owner !== lease.owner) {
      throw new SessionError('fenced', `session ${lease.id}: the lease with token ${lease.token} is no longer current (${names === null ? 'the session was deleted' : `token ${top ?? 'none'} is current`})`, lease.id);
    }
  }

  /** The `through` of the session's checkpoint (the largest published; null without one), from the folder's names. */
  private static newest(names: string[] | null): number | null {
    let top: number | null = null;
    for (const n of names ?? []) {
      if (!n.startsWith('c.')) continue;
      const t = Number(n.slice(2));
      if (Number.isSafeInteger(t) && t >= 0 && (top === null || t > top)) top = t;
    }
    return top;
  }

  /** The record the session's checkpoint includes the journal through (0 without a checkpoint). */
  private async through(id: string): Promise<number> {
    return FileStore.newest(await this.names(this.sessionDir(id))) ?? 0;
  }

  private parseHeader(id: string, head: Uint8Array): number {
    const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
    if (head.length < HEADER || v.getUint32(0, true) !== MAGIC || v.getUint32(4, true) !== 1) {
      throw new SessionError('damaged', `session ${id}: checkpoint: the file's ${HEADER}-byte store header is ${head.length < HEADER ? `truncated (${head.length} bytes)` : 'not a file: store checkpoint header'}`, id, 'checkpoint');
    }
    const through = v.getFloat64(8, true);
    if (!Number.isSafeInteger(through) || through < 0) throw new SessionError('damaged', `session ${id}: checkpoint: through must be an integer >= 0, got ${describe(through)}`, id, 'checkpoint');
    return through;
  }

  async acquire(id: string, owner: string, ttlMs: number): Promise<{ lease: Lease } | { held: LeaseHeld }> {
    checkSessionId(id);
    checkMs('ttlMs', ttlMs);
    return this.io(id, 'taking the lease', async () => {
      const d = this.sessionDir(id);
      await this.live(id);
      await this.fs.mkdir(d, { recursive: true });
      for (let attempt = 0; ; attempt++) {
        const names = (await this.names(d)) ?? [];
        const tokens = FileStore.tokens(names);
        const top = tokens.length === 0 ? 0 : tokens[tokens.length - 1]!;
        const now = Date.now();
        if (top > 0) {
          const held = await this.readLease(id, top);
          if (held !== null && held.owner !== owner && held.expiresAt > now) return { held: { owner: held.owner, remainingMs: held.expiresAt - now } };
        }
        // racers with the same view pick the same name, and link(2) lets one of them have it
        const token = Math.max(top, await this.epoch(d)) + 1;
        const expiresAt = now + ttlMs;
        try {
          await writeFileAtomicAsync(this.path.join(d, `lease.${pad(token)}`), new TextEncoder().encode(JSON.stringify({ owner, expiresAt })), { noReplace: true });
        } catch (e) {
          if (code(e) === 'EEXIST' && attempt < 20) continue; // another acquirer won this token: look again
          throw e;
        }
        // a racer may have published a larger token meanwhile: the largest wins
        const after = FileStore.tokens((await this.names(d)) ?? []);
        const winner = after[after.length - 1];
        if (winner !== token) {
          const held = winner === undefined ? null : await this.readLease(id, winner);
          return { held: { owner: held?.owner ?? 'unknown', remainingMs: Math.max(0, (held?.expiresAt ?? now) - Date.now()) } };
        }
        // older leases and stale temp files of dead writers go
        for (const n of names) {
          if ((n.startsWith('lease.') && Number(n.slice(6)) < token) || (n.startsWith('.') && n.endsWith('.tmp'))) await this.fs.rm(this.path.join(d, n), { force: true });
        }
        return { lease: { id, owner, token, expiresAt } };
      }
    });
  }

  /**
   * The session folder's first token minus one: the clock (ms) when the folder was made, published once
   * with link(2) so that racers agree. Tokens thus keep growing across delete and re-create.
   */
  private async epoch(d: string): Promise<number> {
    const path = this.path.join(d, 'epoch');
    for (let attempt = 0; ; attempt++) {
      try {
        const n = Number(await this.fs.readFile(path, 'utf8'));
        if (Number.isSafeInteger(n) && n >= 0) return n;
        throw new SessionError('damaged', `the lease epoch file ${path} does not hold an integer`, this.path.basename(d), 'lease');
      } catch (e) {
        if (code(e) !== 'ENOENT' || attempt > 3) throw e;
      }
      try {
        await writeFileAtomicAsync(path, new TextEncoder().encode(String(Date.now())), { noReplace: true });
      } catch (e) {
        if (code(e) !== 'EEXIST') throw e;
      }
    }
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    checkMs('ttlMs', ttlMs);
    return this.io(lease.id, 'renewing the lease', async () => {
      const expiresAt = Date.now() + ttlMs;
      await writeFileAtomicAsync(this.path.join(this.sessionDir(lease.id), `lease.${pad(lease.token)}`), new TextEncoder().encode(JSON.stringify({ owner: lease.owner, expiresAt })), {
        beforePublish: () => this.current(lease),
      });
      return { ...lease, expiresAt };
    });
  }

  async release(lease: Lease): Promise<void> {
    return this.io(lease.id, 'releasing the lease', async () => {
      try {
        await writeFileAtomicAsync(this.path.join(this.sessionDir(lease.id), `lease.${pad(lease.token)}`), new TextEncoder().encode(JSON.stringify({ owner: lease.owner, expiresAt: 0 })), {
          beforePublish: () => this.current(lease),
        });
      } catch (e) {
        if (e instanceof SessionError && e.code === 'fenced') return; // not ours any more: nothing to give up
        if (code(e) === 'ENOENT') return;
        throw e;
      }
    });
  }

  async load(id: string): Promise<StoredSession | null> {
    checkSessionId(id);
    return this.io(id, 'loading', async () => {
      // a reader needs no lease, so a writer may checkpoint meanwhile (replacing the checkpoint and dropping
      // the records it includes): read until the checkpoint stayed the same around the journal read
      for (let attempt = 0; ; attempt++) {
        const got = await this.loadOnce(id);
        if (got !== 'moved') return got;
        if (attempt >= 20) throw new SessionError('store', `session ${id}: the checkpoint kept changing while it was loaded`, id);
      }
    });
  }

  private async loadOnce(id: string): Promise<StoredSession | null | 'moved'> {
    const before = await this.through(id);
    const names = await this.live(id);
    if (names === null) return null;
    const d = this.sessionDir(id);
    const newest = FileStore.newest(names);
    if ((newest ?? 0) !== before) return 'moved';
    let checkpoint: StoredSession['checkpoint'] = null;
    if (newest !== null) {
      let all: Uint8Array;
      try {
        all = new Uint8Array(await this.fs.readFile(this.path.join(d, `c.${pad(newest)}`)));
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
        return 'moved'; // replaced by a newer one meanwhile
      }
      const through = this.parseHeader(id, all.subarray(0, HEADER));
      if (through !== newest) throw new SessionError('damaged', `session ${id}: checkpoint: the file c.${pad(newest)} says it is through journal record ${through}`, id, 'checkpoint');
      checkpoint = { bytes: all.subarray(HEADER), through };
    }
    const through = checkpoint?.through ?? 0;
    const seqs = names.filter((n) => n.startsWith('j.')).map((n) => Number(n.slice(2))).filter((q) => Number.isSafeInteger(q) && q > through).sort((a, b) => a - b);
    const journal: JournalEntry[] = [];
    for (const seq of seqs) {
      try {
        journal.push({ seq, bytes: new Uint8Array(await this.fs.readFile(this.path.join(d, `j.${pad(seq)}`))) });
      } catch (e) {
        if (code(e) !== 'ENOENT') throw e;
        return 'moved'; // dropped by a checkpoint meanwhile
      }
    }
    if ((await this.through(id)) !== through) return 'moved';
    if (checkpoint === null && journal.length === 0) return null;
    return { checkpoint, journal };
  }

  async append(lease: Lease, seq: number, bytes: Uint8Array): Promise<void> {
    checkSeq(seq);
    return this.io(lease.id, `writing journal record ${seq}`, async () => {
      const conflict = (): SessionError => new SessionError('conflict', `session ${lease.id}: journal record ${seq} exists already`, lease.id, `journal record ${seq}`);
      try {
        await writeFileAtomicAsync(this.path.join(this.sessionDir(lease.id), `j.${pad(seq)}`), bytes, {
          noReplace: true,
          beforePublish: async () => {
            await this.current(lease);
            if (seq <= (await this.through(lease.id))) throw conflict();
          },
        });
      } catch (e) {
        if (code(e) === 'EEXIST') {
          // a retried write whose earlier attempt landed (its caller saw an error): the same bytes are fine
          const had = await this.fs.readFile(this.path.join(this.sessionDir(lease.id), `j.${pad(seq)}`)).catch(() => null);
          if (had !== null && had.length === bytes.length && Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(had)) return;
          throw conflict();
        }
        if (code(e) === 'ENOENT') await this.current(lease); // the folder went: deleted -> fenced
        throw e;
      }
    });
  }

  async checkpoint(lease: Lease, bytes: Uint8Array, through: number): Promise<void> {
    if (through !== 0) checkSeq(through);
    // the header and the bytes in one buffer (one copy, taken now: the caller may reuse its buffer)
    const all = new Uint8Array(HEADER + bytes.length);
    const v = new DataView(all.buffer);
    v.setUint32(0, MAGIC, true);
    v.setUint32(4, 1, true);
    v.setFloat64(8, through, true);
    all.set(bytes, HEADER);
    return this.io(lease.id, 'writing the checkpoint', async () => {
      const d = this.sessionDir(lease.id);
      try {
        await writeFileAtomicAsync(this.path.join(d, `c.${pad(through)}`), all, {
          noReplace: true,
          beforePublish: async () => {
            await this.current(lease);
            const before = await this.through(lease.id);
            if (through < before) throw new SessionError('conflict', `session ${lease.id}: a checkpoint through journal record ${through} would go back from ${before}`, lease.id, 'checkpoint');
          },
        });
      } catch (e) {
        if (code(e) === 'ENOENT') await this.current(lease);
        // a checkpoint through the same record exists (a retry whose first attempt landed): the same inputs made it
        if (code(e) !== 'EEXIST') throw e;
      }
      // what it includes goes: older checkpoints and the journal through `through` (a crash before this leaves
      // files load() skips; a newer checkpoint published meanwhile covers all of them too)
      for (const n of (await this.names(d)) ?? []) {
        const isOld = (n.startsWith('j.') && Number(n.slice(2)) <= through) || (n.startsWith('c.') && Number(n.slice(2)) < through);
        if (isOld) await this.fs.rm(this.path.join(d, n), { force: true });
      }
    });
  }

  async list(): Promise<SessionInfo[]> {
    return this.io(undefined, 'listing', async () => {
      const out: SessionInfo[] = [];
      for (const id of ((await this.names(this.dir)) ?? []).filter((n) => SESSION_ID.test(n)).sort()) {
        const names = await this.live(id);
        if (names === null) continue;
        const d = this.sessionDir(id);
        let bytes = 0;
        let updatedAt: number | null = null;
        for (const n of names) {
          if (!n.startsWith('c.') && !n.startsWith('j.')) continue;
          try {
            const st = await this.fs.stat(this.path.join(d, n));
            bytes += st.size - (n.startsWith('c.') ? HEADER : 0);
            updatedAt = Math.max(updatedAt ?? 0, st.mtimeMs);
          } catch (e) {
            if (code(e) !== 'ENOENT') throw e;
          }
        }
        if (updatedAt === null) continue;
        out.push({ id, bytes, updatedAt, expiresAt: this.ttlMs === null ? null : updatedAt + this.ttlMs });
      }
      return out;
    });
  }

  async delete(id: string): Promise<void> {
    const d = this.sessionDir(id);
    return this.io(id, 'deleting', async () => {
      await this.fs.rm(d, { recursive: true, force: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
