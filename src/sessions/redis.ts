// redis://host:port[/db]: sessions shared by many processes or machines, through ioredis (an optional
// peer dependency, imported here only, and only when openStore opens a redis:// URL). Every write is one
// Lua script, so the fencing check and the write are one atomic step in Redis. Durability is Redis's own:
// run it with appendonly yes and appendfsync always for "durable when acknowledged" (tests do).
// Keys (prefix tzs:, the id in braces so that one session's keys share a cluster slot):
//   tzs:{id}:ckpt   the checkpoint bytes          tzs:{id}:meta   hash: through, updatedAt
//   tzs:{id}:j      hash: seq -> record bytes     tzs:{id}:fence  the current fencing token
//   tzs:{id}:lease  the holder's owner string, SET NX PX semantics (expires by itself)
//   tzs:tokens      the store-wide token counter (never reset)   tzs:ids  sorted set of session ids
import { SessionError } from '../core/errors.js';
import { checkMs, checkSeq, checkSessionId, type JournalEntry, type Lease, type LeaseHeld, type SessionInfo, type SessionStore, type StoredSession } from './store.js';

// KEYS: lease, fence, tokens; ARGV: owner, ttlMs
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, cur, redis.call('PTTL', KEYS[1])} end
local t = redis.call('INCR', KEYS[3])
redis.call('SET', KEYS[2], t)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, t, 0}`;

// KEYS: lease, fence; ARGV: token, owner, ttlMs
const RENEW = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

// KEYS: lease, fence; ARGV: token, owner
const RELEASE = `
if redis.call('GET', KEYS[2]) == ARGV[1] and redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1`;

// data keys get the TTL on every write (ARGV ttl 0: none)
const TOUCH = `
local function touch(ttl, id, now, keys)
  redis.call('ZADD', 'tzs:ids', now, id)
  if tonumber(ttl) > 0 then for _, k in ipairs(keys) do redis.call('PEXPIRE', k, ttl) end end
end`;

// KEYS: fence, j, meta, ckpt; ARGV: token, seq, bytes, now, ttl, id
const APPEND = `${TOUCH}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'fenced' end
local through = tonumber(redis.call('HGET', KEYS[3], 'through') or '0')
if tonumber(ARGV[2]) <= through then return 'conflict' end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then
  if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then return 'ok' end -- a resent write that landed
  return 'conflict'
end
redis.call('HSET', KEYS[3], 'updatedAt', ARGV[4])
touch(ARGV[5], ARGV[6], ARGV[4], {KEYS[1], KEYS[2], KEYS[3], KEYS[4]})
return 'ok'`;

// KEYS: fence, j, meta, ckpt; ARGV: token, bytes, through, now, ttl, id
const CHECKPOINT = `${TOUCH}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'fenced' end
local through = tonumber(ARGV[3])
if through < tonumber(redis.call('HGET', KEYS[3], 'through') or '0') then return 'conflict' end
redis.call('SET', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[3], 'through', ARGV[3], 'updatedAt', ARGV[4])
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
  if tonumber(f) <= through then redis.call('HDEL', KEYS[2], f) end
end
touch(ARGV[5], ARGV[6], ARGV[4], {KEYS[1], KEYS[2], KEYS[3], KEYS[4]})
return 'ok'`;

// KEYS: ckpt, meta, j -> {ckpt or false, through, seq1, bytes1, seq2, bytes2, ...}
const LOAD = `
local out = {redis.call('GET', KEYS[1]) or false, redis.call('HGET', KEYS[2], 'through') or '0'}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all do out[#out + 1] = all[i] end
return out`;

// KEYS: ckpt, meta, j -> {exists, bytes, updatedAt}
const INFO = `
if redis.call('EXISTS', KEYS[2]) == 0 then return {0, 0, '0'} end
local n = redis.call('STRLEN', KEYS[1])
for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do n = n + redis.call('HSTRLEN', KEYS[3], f) end
return {1, n, redis.call('HGET', KEYS[2], 'updatedAt') or '0'}`;

type Reply = unknown;
interface Client {
  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  del(...keys: string[]): Promise<number>;
  zrem(key: string, member: string): Promise<number>;
  zrange(key: string, start: number, stop: number): Promise<string[]>;
  on(event: string, f: (...a: unknown[]) => void): unknown;
  [command: string]: unknown;
}

const keys = (id: string) => ({
  ckpt: `tzs:{${id}}:ckpt`,
  meta: `tzs:{${id}}:meta`,
  j: `tzs:{${id}}:j`,
  fence: `tzs:{${id}}:fence`,
  lease: `tzs:{${id}}:lease`,
});

/** Open a Redis store: connects once (a failure is SessionError 'store'); commands fail fast while Redis is down. */
export async function openRedisStore(url: string, o: { ttlMs: number | null }): Promise<SessionStore> {
  let mod: { default: new (url: string, options: object) => Client };
  try {
    // a specifier bundlers cannot follow: a browser bundle reaching openStore must not pull ioredis in
    const specifier = ['io', 'redis'].join('');
    mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as typeof mod;
  } catch (e) {
    throw new SessionError('store', `redis:// stores need the optional peer dependency ioredis (npm install ioredis): ${(e as Error).message}`, undefined, undefined, { cause: e });
  }
  const client = new mod.default(url, {
    lazyConnect: true,
    // fail fast instead of queueing while Redis is down: the session reports 'store' at its next
    // durability point and nothing unacknowledged is kept
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: 5000,
    connectTimeout: 2000,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
  });
  client.on('error', () => undefined); // reported per command; without a listener ioredis logs each reconnect
  for (const [name, lua, n] of [['tzsAcquire', ACQUIRE, 3], ['tzsRenew', RENEW, 2], ['tzsRelease', RELEASE, 2], ['tzsAppend', APPEND, 4], ['tzsCheckpoint', CHECKPOINT, 4], ['tzsLoad', LOAD, 3], ['tzsInfo', INFO, 3]] as const) {
    client.defineCommand(name, { numberOfKeys: n, lua });
  }
  try {
    await client.connect();
  } catch (e) {
    client.disconnect();
    throw new SessionError('store', `cannot connect to ${redact(url)}: ${(e as Error).message}`, undefined, undefined, { cause: e });
  }
  return new RedisStore(redact(url), client, o.ttlMs);
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

export class RedisStore implements SessionStore {
  readonly url: string;
  private readonly client: Client;
  private readonly ttl: string;
  private readonly ttlMs: number | null;
  private closed = false;

  constructor(url: string, client: Client, ttlMs: number | null) {
    this.url = url;
    this.client = client;
    this.ttlMs = ttlMs;
    this.ttl = String(ttlMs ?? 0);
  }

  private async run<T>(id: string | undefined, what: string, name: string, args: unknown[]): Promise<T> {
    if (this.closed) throw new SessionError('closed', `the store ${this.url} was closed`, id);
    try {
      return (await (this.client[name] as (...a: unknown[]) => Promise<T>)(...args)) as T;
    } catch (e) {
      throw new SessionError('store', `${id === undefined ? '' : `session ${id}: `}${what} on ${this.url} failed: ${(e as Error).message}`, id, undefined, { cause: e });
    }
  }

  private fenced(lease: Lease): SessionError {
    return new SessionError('fenced', `session ${lease.id}: the lease with token ${lease.token} is no longer current (another writer took the session over, or it was deleted)`, lease.id);
  }

  async acquire(id: string, owner: string, ttlMs: number): Promise<{ lease: Lease } | { held: LeaseHeld }> {
    checkSessionId(id);
    checkMs('ttlMs', ttlMs);
    const k = keys(id);
    const now = Date.now();
    const r = await this.run<[number, string | number, number]>(id, 'taking the lease', 'tzsAcquire', [k.lease, k.fence, 'tzs:tokens', owner, ttlMs]);
    if (Number(r[0]) === 1) return { lease: { id, owner, token: Number(r[1]), expiresAt: now + ttlMs } };
    return { held: { owner: String(r[1]), remainingMs: Math.max(0, Number(r[2])) } };
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease> {
    checkMs('ttlMs', ttlMs);
    const k = keys(lease.id);
    const now = Date.now();
    const ok = await this.run<number>(lease.id, 'renewing the lease', 'tzsRenew', [k.lease, k.fence, String(lease.token), lease.owner, ttlMs]);
    if (Number(ok) !== 1) throw this.fenced(lease);
    return { ...lease, expiresAt: now + ttlMs };
  }

  async release(lease: Lease): Promise<void> {
    const k = keys(lease.id);
    await this.run(lease.id, 'releasing the lease', 'tzsRelease', [k.lease, k.fence, String(lease.token), lease.owner]);
  }

  async load(id: string): Promise<StoredSession | null> {
    checkSessionId(id);
    const k = keys(id);
    const r = await this.run<(Uint8Array | null)[]>(id, 'loading', 'tzsLoadBuffer', [k.ckpt, k.meta, k.j]);
    const ckpt = r[0] ?? null;
    const through = Number(new TextDecoder().decode(r[1] ?? new Uint8Array(0)) || '0');
    const journal: JournalEntry[] = [];
    for (let i = 2; i + 1 < r.length; i += 2) {
      const seq = Number(new TextDecoder().decode(r[i]!));
      if (seq > through) journal.push({ seq, bytes: new Uint8Array(r[i + 1]!) });
    }
    journal.sort((a, b) => a.seq - b.seq);
    if (ckpt === null && journal.length === 0) return null;
    return { checkpoint: ckpt === null ? null : { bytes: new Uint8Array(ckpt), through }, journal };
  }

  private buffer(bytes: Uint8Array): Buffer {
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  async append(lease: Lease, seq: number, bytes: Uint8Array): Promise<void> {
    checkSeq(seq);
    const k = keys(lease.id);
    const r = String(await this.run(lease.id, `writing journal record ${seq}`, 'tzsAppend', [k.fence, k.j, k.meta, k.ckpt, String(lease.token), String(seq), this.buffer(bytes), String(Date.now()), this.ttl, lease.id]));
    if (r === 'fenced') throw this.fenced(lease);
    if (r === 'conflict') throw new SessionError('conflict', `session ${lease.id}: journal record ${seq} exists already`, lease.id, `journal record ${seq}`);
  }

  async checkpoint(lease: Lease, bytes: Uint8Array, through: number): Promise<void> {
    if (through !== 0) checkSeq(through);
    const k = keys(lease.id);
    const r = String(await this.run(lease.id, 'writing the checkpoint', 'tzsCheckpoint', [k.fence, k.j, k.meta, k.ckpt, String(lease.token), this.buffer(bytes), String(through), String(Date.now()), this.ttl, lease.id]));
    if (r === 'fenced') throw this.fenced(lease);
    if (r === 'conflict') throw new SessionError('conflict', `session ${lease.id}: a checkpoint through journal record ${through} would go back`, lease.id, 'checkpoint');
  }

  async list(): Promise<SessionInfo[]> {
    const ids = await this.run<string[]>(undefined, 'listing', 'zrange', ['tzs:ids', 0, -1]);
    const out: SessionInfo[] = [];
    for (const id of [...ids].sort()) {
      const k = keys(id);
      const r = await this.run<[number, number, string]>(id, 'listing', 'tzsInfo', [k.ckpt, k.meta, k.j]);
      if (Number(r[0]) === 0) {
        // expired (or deleted meanwhile): drop it from the index
        await this.run(id, 'listing', 'zrem', ['tzs:ids', id]);
        continue;
      }
      const updatedAt = Number(r[2]);
      out.push({ id, bytes: Number(r[1]), updatedAt, expiresAt: this.ttlMs === null ? null : updatedAt + this.ttlMs });
    }
    return out;
  }

  async delete(id: string): Promise<void> {
    checkSessionId(id);
    const k = keys(id);
    await this.run(id, 'deleting', 'del', [k.ckpt, k.meta, k.j, k.fence, k.lease]);
    await this.run(id, 'deleting', 'zrem', ['tzs:ids', id]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
