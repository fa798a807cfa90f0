import { afterAll, beforeAll, describe, it } from 'vitest';
import { openStore } from '../../src/sessions/index.js';
import type { SessionStore } from '../../src/sessions/store.js';
import { HAVE_REDIS, RedisServer } from './redisServer.js';
import { storeContract, storeTtlContract } from './storeContract.js';

if (!HAVE_REDIS) {
  describe('SessionStore contract: redis://', () => {
    it.skip('skipped: redis-server is not installed (apt-get install redis-server; .ci/run does)', () => undefined);
  });
} else {
  const server = new RedisServer();
  beforeAll(() => server.start());
  afterAll(() => server.stop());
  let db = 0;
  // each fresh store: its own logical database, flushed
  const fresh = async (ttlMs?: number): Promise<SessionStore> => {
    const url = `${server.url}/${db++ % 16}`;
    const s = await openStore(url, ttlMs === undefined ? undefined : { ttlMs });
    const { Redis } = await import('ioredis');
    const c = new Redis(url);
    await c.flushdb();
    await c.quit();
    return s;
  };
  storeContract('redis://', () => fresh(), { reopen: async (first) => openStore(first.url) });
  storeTtlContract('redis://', (ttl) => fresh(ttl));
}
