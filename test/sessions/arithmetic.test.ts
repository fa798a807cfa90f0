// The JS arithmetic a checkpoint records (src/sessions/arithmetic.ts): a session loaded from a checkpoint made
// on a runtime whose Math.exp/log differ says so (arithmetic.exact false); the same runtime, or a checkpoint
// that predates the record, is exact. (That Node 20 and Chromium 156 differ: test/browser-sessions.test.ts.)
import { describe, expect, it } from 'vitest';
import { arithmeticFingerprint } from '../../src/sessions/arithmetic.js';
import { MemoryStore, openSession } from '../../src/sessions/index.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/sessions/records.js';
import { tinyModel } from '../model/tiny.js';

const model = tinyModel(2);

async function withCheckpointArithmetic(arithmetic: string | undefined): Promise<{ here: string; saved: string | null; exact: boolean }> {
  const store = new MemoryStore();
  const s = await openSession(model, store, 'a', { seed: 1 });
  await s.feed([1, 2, 3]);
  await s.close(); // final checkpoint, made here
  const stored = (await store.load('a'))!;
  const c = decodeCheckpoint(stored.checkpoint!.bytes, 'a', stored.checkpoint!.through);
  expect(c.header.arithmetic).toBe(arithmeticFingerprint());
  const header = { ...c.header };
  if (arithmetic === undefined) delete header.arithmetic;
  else header.arithmetic = arithmetic;
  const r = await store.acquire('a', 'rewriter', 1000);
  if (!('lease' in r)) throw new Error('not granted');
  await store.checkpoint(r.lease, encodeCheckpoint(header, c.tokens, c.snapshot), stored.checkpoint!.through);
  await store.release(r.lease);
  const again = await openSession(model, store, 'a');
  const out = { ...again.arithmetic };
  await again.close();
  return out;
}

describe('the arithmetic a checkpoint records', () => {
  it('is a stable 16-hex-digit fingerprint of this runtime', () => {
    expect(arithmeticFingerprint()).toMatch(/^[0-9a-f]{16}$/);
    expect(arithmeticFingerprint()).toBe(arithmeticFingerprint());
  });

  it('same runtime: exact; another runtime: stated, not exact; none recorded: exact', async () => {
    const here = arithmeticFingerprint();
    expect(await withCheckpointArithmetic(here)).toEqual({ here, saved: here, exact: true });
    expect(await withCheckpointArithmetic('0123456789abcdef')).toEqual({ here, saved: '0123456789abcdef', exact: false });
    expect(await withCheckpointArithmetic(undefined)).toEqual({ here, saved: null, exact: true });
  });

  it('a malformed record is damage', async () => {
    await expect(withCheckpointArithmetic('not hex')).rejects.toMatchObject({ name: 'SessionError', code: 'damaged' });
  });
});
