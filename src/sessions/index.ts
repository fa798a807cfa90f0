// toeplitz-attention/sessions: durable generation sessions over a SessionStore (DESIGN section 11).
// Browser-safe: each store's client (node:fs, ioredis, IndexedDB) sits in its own file, reached only
// through openStore's dynamic imports, so a bundle holds only what it opens.
import { ConfigError, describe } from '../core/errors.js';
import { MemoryStore } from './memory.js';
import { checkStoreOptions, type SessionStore, type StoreOptions } from './store.js';

export { SessionError, type SessionErrorCode } from '../core/errors.js';
export { MemoryStore } from './memory.js';
export { checkSessionId, SESSION_ID, type SessionStore, type StoreOptions, type Lease, type LeaseHeld, type JournalEntry, type StoredSession, type SessionInfo } from './store.js';
export { importSession, prepareImport, writeImport, type PreparedImport, type WriteImportOptions } from './import.js';
export { openSession, DurableSession, DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_MS, DEFAULT_LEASE_MS, CHECKPOINT_BUDGET, type DurableSessionOptions, type DurableGenerateOptions, type PendingGeneration, type ResumeOptions } from './session.js';

/**
 * Open a store by URL:
 * - `memory:` this process's memory (each call a new store);
 * - `file:DIR` (or a `file://` URL) a folder of fsync'd files with atomic renames (Node; the default);
 * - `redis://[user:pass@]host:port[/db]` (or `rediss://`) Redis through ioredis (an optional peer);
 * - `indexeddb:NAME` IndexedDB in browsers.
 */
export async function openStore(url: string, options?: StoreOptions): Promise<SessionStore> {
  if (typeof url !== 'string') throw new ConfigError(`a store URL must be a string (memory:, file:DIR, redis://host:port, indexeddb:NAME), got ${describe(url)}`);
  const o = checkStoreOptions(options);
  if (url === 'memory:') return new MemoryStore(o.ttlMs);
  if (url.startsWith('file:')) {
    const rest = url.slice('file:'.length);
    if (rest.length === 0) throw new ConfigError(`a file: store needs a folder, as file:DIR, got ${describe(url)}`);
    const { openFileStore } = await import('./file.js');
    return openFileStore(url, o);
  }
  if (url.startsWith('redis://') || url.startsWith('rediss://')) {
    const { openRedisStore } = await import('./redis.js');
    return openRedisStore(url, o);
  }
  if (url.startsWith('indexeddb:')) {
    const name = url.slice('indexeddb:'.length);
    if (name.length === 0) throw new ConfigError(`an indexeddb: store needs a database name, as indexeddb:NAME, got ${describe(url)}`);
    const { openIndexedDbStore } = await import('./indexeddb.js');
    return openIndexedDbStore(name, o);
  }
  throw new ConfigError(`unknown store URL ${describe(url)}: expected memory:, file:DIR, redis://host:port[/db] or indexeddb:NAME`);
}
