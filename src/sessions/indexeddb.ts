// indexeddb:NAME (browsers): PLACEHOLDER so that openStore's dynamic import resolves; the IndexedDB store
// (transactions + Web Locks) is being written separately against the SessionStore contract in ./store.ts
// and replaces this file. Until then opening it is a typed error, never a silent fallback.
import { SessionError } from './errors.js';
import type { SessionStore } from './store.js';

export async function openIndexedDbStore(name: string, _options: { ttlMs: number | null }): Promise<SessionStore> {
  throw new SessionError('store', `indexeddb:${name}: the IndexedDB store is not part of this build yet`);
}
