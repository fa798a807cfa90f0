// Crash exactness with the store dying too (issue 18): Redis is SIGKILLed and restarted from its append-only
// file under a generating writer (which reports 'store' at its next durability point and waits) and between
// rounds, while the writer itself is SIGKILLed at 30 random moments; a fresh process resumes each time.
// Everything the consumer received, plus the continuation, must equal the uninterrupted run token for token,
// and every acknowledged input must be held exactly once (the final state is the reference's, byte for byte).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleChild, crashRounds, rngFor } from './crashHarness.js';
import { HAVE_REDIS, RedisServer } from './redisServer.js';

const KILLS = 30;
let bundle = '';

beforeAll(async () => {
  bundle = await bundleChild();
});

describe('crash exactness, Redis SIGKILLed and restarted', () => {
  if (!HAVE_REDIS) {
    it.skip('redis://, Redis SIGKILLed and restarted: skipped, redis-server is not installed (apt-get install redis-server; .ci/run does)', () => undefined);
  } else {
    const server = new RedisServer();
    beforeAll(() => server.start());
    afterAll(() => server.stop());

    it(`redis://, Redis SIGKILLed and restarted under a generating writer and between rounds: ${KILLS} writer kills`, async () => {
      const seed = Date.now() % 100_000;
      const rng = rngFor(seed + 1);
      const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
      const stats = await crashRounds(bundle, `${server.url}/2`, KILLS, rng, {
        // Redis dies while the child works (it reports 'store' at its next durability point and waits),
        // then comes back from its append-only file
        during: async () => {
          if (rng() < 0.5) return;
          await sleep(rng() * 60);
          await server.kill();
          await sleep(rng() * 80);
          await server.start();
        },
        externalOnly: true,
        windowMs: 150,
        between: async () => {
          if (rng() < 0.3) {
            await server.kill();
            await server.start();
          }
        },
      });
      console.log(`redis killed: seed ${seed}:`, stats);
      expect(stats.kills).toBe(KILLS);
      expect(stats.storeErrors).toBeGreaterThan(0);
    });
  }
});
