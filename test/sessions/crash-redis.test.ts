// Crash exactness (issue 18): a child process runs a plan of inputs on a durable session and is SIGKILLed
// at 30 random moments per store (from outside at a random time, or inside its n-th journal append or
// checkpoint write); a fresh process resumes each time. Everything the consumer received, plus the
// continuation, must equal the uninterrupted run token for token, and every acknowledged input must be
// held exactly once (the final state is the reference's, byte for byte).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleChild, crashRounds, rngFor } from './crashHarness.js';
import { HAVE_REDIS, RedisServer } from './redisServer.js';

const KILLS = 30;
let bundle = '';

beforeAll(async () => {
  bundle = await bundleChild();
});

describe('crash exactness', () => {
  if (!HAVE_REDIS) {
    it.skip('redis://: skipped, redis-server is not installed (apt-get install redis-server; .ci/run does)', () => undefined);
  } else {
    const server = new RedisServer();
    beforeAll(() => server.start());
    afterAll(() => server.stop());

    it(`redis://: ${KILLS} SIGKILLs of the writer, a fresh process resumes each time`, async () => {
      const seed = Date.now() % 100_000;
      const stats = await crashRounds(bundle, `${server.url}/1`, KILLS, rngFor(seed));
      console.log(`redis: seed ${seed}:`, stats);
      expect(stats.kills).toBe(KILLS);
      expect(stats.completedPlans).toBeGreaterThanOrEqual(1);
    });
  }
});
