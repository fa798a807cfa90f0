// The default cadence keeps checkpoints to CHECKPOINT_BUDGET times their token-path cost apart (so they
// take ~2% of generation however fast it runs); an explicit checkpointEvery is kept exactly.
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_BUDGET, DEFAULT_CHECKPOINT_EVERY, MemoryStore, openSession } from '../../src/sessions/index.js';
import { tinyModel } from '../model/tiny.js';

const model = tinyModel(2);

async function checkpointsOver(tokens: number, options: { checkpointEvery?: number }, snapshotMs: number): Promise<number> {
  const store = new MemoryStore();
  let n = 0;
  const counted = Object.assign(Object.create(store) as MemoryStore, {
    checkpoint: async (...a: Parameters<MemoryStore['checkpoint']>) => {
      n++;
      return store.checkpoint(...a);
    },
  });
  const s = await openSession(model, counted, 'c', { seed: 1, checkpointMs: 60_000, ...options });
  // as if the last checkpoint had cost `snapshotMs` on the token path
  s.lastCheckpoint = { bytes: 0, snapshotMs, writeMs: 0 };
  const t0 = performance.now();
  for await (const _ of s.generate('x', { maxTokens: tokens })) {
    // generate
  }
  const elapsed = performance.now() - t0;
  s.abandon();
  if (snapshotMs > 0) expect(elapsed).toBeLessThan(CHECKPOINT_BUDGET * snapshotMs); // the premise: all within the budget window
  return n;
}

describe('checkpoint cadence', () => {
  it('default: a checkpoint whose token-path cost was 1 s holds the next one back 50 s; explicit checkpointEvery does not', async () => {
    const tokens = DEFAULT_CHECKPOINT_EVERY * 2 + 10;
    expect(await checkpointsOver(tokens, {}, 1000)).toBe(0);
    expect(await checkpointsOver(tokens, { checkpointEvery: DEFAULT_CHECKPOINT_EVERY }, 1000)).toBe(2);
  });

  it('default: checkpoints at least 512 tokens and 50 times the previous one\'s token-path cost apart, and they do come', async () => {
    const store = new MemoryStore();
    const at: { ms: number; position: number; snapshotMs: number }[] = [];
    let s: Awaited<ReturnType<typeof openSession>> | null = null;
    const counted = Object.assign(Object.create(store) as MemoryStore, {
      checkpoint: async (...a: Parameters<MemoryStore['checkpoint']>) => {
        // called right after the snapshot was taken (lastCheckpoint is this one's)
        at.push({ ms: performance.now(), position: s!.position, snapshotMs: s!.lastCheckpoint!.snapshotMs });
        return store.checkpoint(...a);
      },
    });
    s = await openSession(model, counted, 'c', { seed: 1, checkpointMs: 60_000 });
    for await (const _ of s.generate('x', { maxTokens: 6000 })) {
      // generate
    }
    s.abandon();
    expect(at.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < at.length; i++) {
      expect(at[i]!.position - at[i - 1]!.position).toBeGreaterThanOrEqual(DEFAULT_CHECKPOINT_EVERY);
      expect(at[i]!.ms - at[i - 1]!.ms).toBeGreaterThanOrEqual(CHECKPOINT_BUDGET * at[i - 1]!.snapshotMs);
    }
  });
});
