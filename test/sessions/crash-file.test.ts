// Crash exactness (issue 18): a child process runs a plan of inputs on a durable session and is SIGKILLed
// at 30 random moments per store (from outside at a random time, or inside its n-th journal append or
// checkpoint write); a fresh process resumes each time. Everything the consumer received, plus the
// continuation, must equal the uninterrupted run token for token, and every acknowledged input must be
// held exactly once (the final state is the reference's, byte for byte).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleChild, crashRounds, rngFor } from './crashHarness.js';

const KILLS = 30;
let bundle = '';
const root = mkdtempSync(join(tmpdir(), 'tzs-crash-'));
beforeAll(async () => {
  bundle = await bundleChild();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('crash exactness', () => {
  it(`file: ${KILLS} SIGKILLs of the writer, a fresh process resumes each time`, async () => {
    const seed = Date.now() % 100_000;
    const stats = await crashRounds(bundle, `file:${join(root, 'file')}`, KILLS, rngFor(seed));
    console.log(`file: seed ${seed}:`, stats);
    expect(stats.kills).toBe(KILLS);
    expect(stats.completedPlans).toBeGreaterThanOrEqual(1);
  });
});
