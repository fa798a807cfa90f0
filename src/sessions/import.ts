// Import a session file (the bytes of session.snapshot(), `generate --save`, or a web engine's export) as a durable
// session: its first checkpoint is the file itself (through journal record 0), so opening it continues exactly where
// the file stood, and everything after is journaled as usual. Validation (prepareImport) is separate from the write
// (writeImport) so a server can refuse a bad file before it disturbs a live session of the same id.
import { SessionError } from '../core/errors.js';
import { encodeCheckpoint } from './records.js';
import { checkSessionId, type SessionStore } from './store.js';
import { openSession, DEFAULT_LEASE_MS, type DurableSession, type DurableSessionOptions } from './session.js';
import { decodeSession } from '../model/snapshot.js';
import type { Model } from '../model/model.js';

/** A session file checked against a model: restorable, with the position it stands at. */
export interface PreparedImport {
  readonly bytes: Uint8Array;
  readonly position: number;
  /** bytes of an unfinished UTF-8 character at the end of the file's text */
  readonly pending: readonly number[];
}

/**
 * Check a session file against `model` the way model.restore does (ModelError 'snapshot' | 'wrong-model' | 'backend',
 * SnapshotError for damaged bytes), without touching any store. The bytes are copied: later changes to the
 * caller's array do not reach the import.
 */
export function prepareImport(model: Model, bytes: Uint8Array): PreparedImport {
  const restored = model.restore(bytes);
  const own = bytes.slice();
  const pending = Array.from(decodeSession(own, model.config.vocab, model.config.layers).pending);
  return { bytes: own, position: restored.position, pending };
}

export interface WriteImportOptions {
  /** replace a session stored under `id` (default false: SessionError 'conflict' if one exists) */
  replace?: boolean;
  /** the lease taken while writing (default DEFAULT_LEASE_MS) */
  leaseMs?: number;
}

/**
 * Store a prepared file as session `id` (its first checkpoint). SessionError 'busy' if another writer holds `id`,
 * 'conflict' if it exists and `replace` is not set; nothing is written then.
 */
export async function writeImport(store: SessionStore, id: string, prepared: PreparedImport, options: WriteImportOptions = {}): Promise<void> {
  checkSessionId(id);
  const owner = `import-${Math.random().toString(16).slice(2)}`;
  if (options.replace === true) await store.delete(id);
  const r = await store.acquire(id, owner, options.leaseMs ?? DEFAULT_LEASE_MS);
  if ('held' in r) throw new SessionError('busy', `session ${id} is held by another writer (${r.held.owner}); import under another id`, id);
  try {
    if ((await store.load(id)) !== null) throw new SessionError('conflict', `session ${id} exists already in ${store.url}; import under another id or delete it first`, id);
    const header = { id, through: 0, position: prepared.position, utf8: [...prepared.pending], gen: null };
    await store.checkpoint(r.lease, encodeCheckpoint(header, new Uint8Array(0), prepared.bytes), 0);
  } finally {
    await store.release(r.lease);
  }
}

/** Import a session file as the new durable session `id` and open it (prepareImport, writeImport, openSession). */
export async function importSession(model: Model, store: SessionStore, id: string, bytes: Uint8Array, options?: DurableSessionOptions): Promise<DurableSession> {
  checkSessionId(id);
  await writeImport(store, id, prepareImport(model, bytes));
  return openSession(model, store, id, options);
}
