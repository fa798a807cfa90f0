// Import a session file (the bytes of session.snapshot(), or `generate --save`) as a new durable session:
// its first checkpoint is the file itself (through journal record 0), so opening it continues exactly
// where the file stood, and everything after is journaled as usual.
// (This writes a checkpoint record of the sessions layer from outside it; it belongs in
// toeplitz-attention/sessions as importSession and moves there once that exists.)
import { checkSessionId } from '../sessions/store.js';
import { encodeCheckpoint } from '../sessions/records.js';
import { SessionError } from '../sessions/errors.js';
import { openSession, DEFAULT_LEASE_MS, type DurableSession, type DurableSessionOptions } from '../sessions/session.js';
import type { SessionStore } from '../sessions/store.js';
import { decodeSession } from '../model/snapshot.js';
import type { Model } from '../model/model.js';

export async function importSession(model: Model, store: SessionStore, id: string, bytes: Uint8Array, options?: DurableSessionOptions): Promise<DurableSession> {
  checkSessionId(id);
  // refused here as model.restore refuses it (ModelError 'snapshot', 'wrong-model', 'backend', SnapshotError)
  const restored = model.restore(bytes);
  const pending = decodeSession(bytes, model.config.vocab, model.config.layers).pending;
  const owner = `import-${Math.random().toString(16).slice(2)}`;
  const r = await store.acquire(id, owner, DEFAULT_LEASE_MS);
  if ('held' in r) throw new SessionError('busy', `session ${id} is held by another writer (${r.held.owner}); import under another id`, id);
  try {
    if ((await store.load(id)) !== null) throw new SessionError('conflict', `session ${id} exists already in ${store.url}; import under another id or delete it first`, id);
    const header = { id, through: 0, position: restored.position, utf8: Array.from(pending), gen: null };
    await store.checkpoint(r.lease, encodeCheckpoint(header, new Uint8Array(0), bytes), 0);
  } finally {
    await store.release(r.lease);
  }
  return openSession(model, store, id, options);
}
