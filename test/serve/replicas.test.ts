// Two replicas (two CLI processes) sharing one Redis: a session generating on A cannot be generated on B at
// the same time (409 'busy'); A SIGKILLed mid-stream, the client reconnects to B with Last-Event-ID and gets
// exactly the uninterrupted run. Debian's redis-server is started on a free loopback port in a temp folder
// (test/sessions/redisServer.ts); without it these tests are skipped by name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_REDIS, RedisServer } from '../sessions/redisServer.js';
import { collect, postJson, reference, ServeChild, tinyModelFile, type Token } from './helpers.js';

const tiny = tinyModelFile();

describe.skipIf(!HAVE_REDIS)('serve: two replicas on Redis (skipped: redis-server is not installed)', () => {
  const redis = new RedisServer();
  let a: ServeChild;
  let b: ServeChild;
  let urlA = '';
  let urlB = '';
  beforeAll(async () => {
    await redis.start();
    const args = ['--port', '0', '--model', tiny.path, '--store', redis.url, '--workers', '1', '--lease-ms', '400', '--checkpoint-every', '50'];
    a = new ServeChild(args);
    b = new ServeChild(args);
    [urlA, urlB] = await Promise.all([a.start(), b.start()]);
  });
  afterAll(async () => {
    await a?.kill();
    await b?.kill();
    await redis.stop();
  });

  it('a session generating on A cannot be generated on B at the same time: 409 busy', async () => {
    const { id } = (await (await postJson(`${urlA}/v1/sessions`, { prompt: 'The Pequod', seed: 3 })).json()) as { id: string };
    const onA = await postJson(`${urlA}/v1/sessions/${id}/generate`, { maxTokens: 16000 });
    expect(onA.status).toBe(200);
    const reader = onA.body!.getReader(); // read, and keep the stream open: A is generating for it
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^id: \d+\ndata: \{"token"/);
    const onB = await postJson(`${urlB}/v1/sessions/${id}/generate`, { maxTokens: 10 });
    expect(onB.status).toBe(409);
    const e = (await onB.json()) as { code: string; message: string };
    expect(e.code).toBe('busy');
    expect(e.message).toMatch(/held by another writer/);
    // and a second generation on A itself, while the first streams: 409 busy too
    const again = await postJson(`${urlA}/v1/sessions/${id}/generate`, { maxTokens: 10 });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { code: string }).code).toBe('busy');
    await reader.cancel();
  });

  it('A killed mid-stream, the client reconnects to B with Last-Event-ID: the same result', async () => {
    const { id } = (await (await postJson(`${urlA}/v1/sessions`, { prompt: 'Queequeg ', seed: 21, temperature: 1 })).json()) as { id: string };
    const maxTokens = 5000;
    const [ref] = await reference(tiny.model, { seed: 21, temperature: 1 }, 'Queequeg ', [{ prompt: 'and', maxTokens }]);
    const part = await collect(await postJson(`${urlA}/v1/sessions/${id}/generate`, { prompt: 'and', maxTokens }), 137);
    await a.kill();
    const got: Token[] = [...part.tokens];
    const t0 = performance.now();
    let firstMs = NaN;
    const rest = await collect(await fetch(`${urlB}/v1/sessions/${id}/generate`, { headers: { 'last-event-id': String(got[got.length - 1]!.position) } }), Infinity, () => {
      if (Number.isNaN(firstMs)) firstMs = performance.now() - t0;
    });
    got.push(...rest.tokens);
    expect(rest.error).toBe(null);
    expect(got).toEqual(ref);
    // B waited for A's lease (400 ms) to run out, not for resumeWaitMs (1400 ms) or longer
    expect(firstMs).toBeGreaterThan(0);
    expect(firstMs).toBeLessThan(1400 + 2000);
  });
});
