// The store a web engine opens, in its worker. memory: and indexeddb:NAME are reached directly; any other
// URL (file:DIR, redis://) exists only in Node and goes through the sessions entry's openStore, imported by
// a specifier a bundler does not follow: a browser bundle of ./web holds neither the file store, nor a
// Redis client, nor a Node built-in.
import { ConfigError, describe } from '../core/errors.js';
import { MemoryStore } from '../sessions/memory.js';
import type { SessionStore } from '../sessions/store.js';

/** The store a browser engine uses when none is given. */
export const DEFAULT_BROWSER_STORE = 'indexeddb:toeplitz-attention';

const SESSIONS_ENTRY = '../sessions/index.js';

export async function openWebStore(url: string | null): Promise<SessionStore> {
  if (url === null) {
    if (typeof indexedDB === 'undefined') throw new ConfigError(`no store given, and this runtime has no IndexedDB (the browser default, ${DEFAULT_BROWSER_STORE}): pass store: 'memory:', 'file:DIR' or 'redis://host:port' (Node)`);
    url = DEFAULT_BROWSER_STORE;
  }
  if (typeof url !== 'string') throw new ConfigError(`store must be a URL string (memory:, indexeddb:NAME; in Node also file:DIR, redis://host:port), got ${describe(url)}`);
  if (url === 'memory:') return new MemoryStore();
  if (url.startsWith('indexeddb:')) {
    const name = url.slice('indexeddb:'.length);
    if (name.length === 0) throw new ConfigError(`an indexeddb: store needs a database name, as indexeddb:NAME, got ${describe(url)}`);
    const { openIndexedDbStore } = await import('../sessions/indexeddb.js');
    return openIndexedDbStore(name, { ttlMs: null });
  }
  const node = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!node) throw new ConfigError(`store ${describe(url)} is not available in a browser: use indexeddb:NAME (durable) or memory:`);
  const spec = SESSIONS_ENTRY;
  const sessions = (await import(/* @vite-ignore */ spec)) as typeof import('../sessions/index.js');
  return sessions.openStore(url);
}
