// Load (the small version; the full one is `npm run bench -- serve`): 16 concurrent sessions x 64 tokens on
// two worker threads, --max-live below the session count (so sessions are evicted and resumed from the
// store). No errors, and each session's text equals its offline reference. Fairness: every session gets its
// first token before any session finishes (round-robin, nobody starves behind a long generation).
// Then a bounded fuzz of malformed requests: never a 5xx, and the server keeps serving; a body that never
// finishes arriving is cut with 408 at requestTimeoutMs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { createServer, type ToeplitzServer } from '../../src/serve/index.js';
import { collect, postJson, reference, rng, tinyModelFile } from './helpers.js';

const tiny = tinyModelFile();

describe('serve: load and fuzz (two workers, memory: store)', () => {
  let server: ToeplitzServer;
  let url = '';
  let port = 0;
  beforeAll(async () => {
    server = createServer({ model: tiny.path, store: 'memory:', workers: 2, maxLive: 6, maxConcurrent: 64, idleMs: 200, requestTimeoutMs: 2000, log: () => undefined });
    ({ url, port } = await server.listen());
  });
  afterAll(async () => {
    await server.close();
  });

  it('16 concurrent sessions x 64 tokens: no errors, each equals its offline reference, none starves', async () => {
    const n = 16;
    const tokens = 64;
    const ids = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const r = await postJson(`${url}/v1/sessions`, { prompt: `Session ${i}: `, seed: 100 + i, temperature: 0.8 });
      expect(r.status).toBe(201);
      return ((await r.json()) as { id: string }).id;
    }));
    // give the idle sweep a moment: with maxLive 6 most sessions are closed and must come back from the store
    await new Promise((r) => setTimeout(r, 300));
    const firsts: number[] = [];
    const lasts: number[] = [];
    const t0 = performance.now();
    const results = await Promise.all(ids.map(async (id, i) => {
      const res = await postJson(`${url}/v1/sessions/${id}/generate`, { prompt: 'Go', maxTokens: tokens });
      expect(res.status).toBe(200);
      let first = true;
      const s = await collect(res, Infinity, () => {
        if (first) firsts[i] = performance.now() - t0;
        first = false;
      });
      lasts[i] = performance.now() - t0;
      return s;
    }));
    for (let i = 0; i < n; i++) {
      const [ref] = await reference(tiny.model, { seed: 100 + i, temperature: 0.8 }, `Session ${i}: `, [{ prompt: 'Go', maxTokens: tokens }]);
      expect(results[i]!.error).toBe(null);
      expect(results[i]!.tokens).toEqual(ref);
    }
    expect(Math.max(...firsts)).toBeLessThan(Math.min(...lasts));
  });

  it('bounded fuzz of malformed requests: never a 5xx, always { code, message }, and the server keeps serving', async () => {
    const random = rng(4242);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const junk = (): string => {
      const parts = ['{', '}', '[', ']', '"', ':', ',', 'null', 'true', '1e999', '-0', '"\\u0000"', '\\', 'NaN', '{"maxTokens":', '"prompt"', '9007199254740993', '\u00ff', '\ud800'];
      return Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick(parts)).join('');
    };
    const values = [null, true, -1, 0.5, 1e308, -1e308, 'x', '', [], {}, [1, 2], { a: 1 }, 2 ** 53, '\u0000', 'a'.repeat(5000)];
    const paths = ['/v1/sessions', `/v1/sessions/${'a'.repeat(129)}`, '/v1/sessions/%E0%A4%A', '/v1/sessions/x/generate', '/v1/sessions/x/snapshot', '/v1/completions', '/v1/sessions/../../etc', '/metrics', '/healthz', '/v1/sessions/x/generate?from=-1', '/v1/sessions/x/generate?from=1e3', '/%', '/v1//sessions'];
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
    const keys = ['prompt', 'maxTokens', 'stop', 'seed', 'temperature', 'topK', 'topP', 'max_tokens', 'stream', 'n', 'model', '__proto__', 'constructor'];
    for (let i = 0; i < 300; i++) {
      const method = pick(methods);
      const path = pick(paths);
      let body: string | undefined;
      if (method !== 'GET' && random() < 0.9) {
        if (random() < 0.4) body = junk();
        else {
          const o: Record<string, unknown> = {};
          for (let k = 0; k < 1 + Math.floor(random() * 4); k++) o[pick(keys)] = pick(values);
          body = JSON.stringify(o);
        }
      }
      const headers: Record<string, string> = { 'content-type': pick(['application/json', 'text/plain', 'application/octet-stream']) };
      if (random() < 0.2) headers['last-event-id'] = pick(['', '-5', 'x', '99999999999999999999', '3']);
      const r = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
      expect(r.status, `${method} ${path} ${body?.slice(0, 80)}`).toBeLessThan(500);
      if (r.status >= 400) {
        const e = (await r.json()) as { code: unknown; message: unknown };
        expect(typeof e.code).toBe('string');
        expect(typeof e.message).toBe('string');
      } else await r.body?.cancel();
    }
    // malformed HTTP itself: a JSON 400 on the socket, no crash
    const raw = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1', () => c.write('GARBAGE / HTTP/9\r\n\u0001\r\n\r\n'));
      let out = '';
      c.on('data', (b) => void (out += b.toString()));
      c.on('close', () => resolve(out));
      c.on('error', () => resolve(out));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    // a request whose body never finishes arriving is cut at requestTimeoutMs (2 s here) with 408
    const t0 = performance.now();
    const slow = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1', () => c.write('POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"pro'));
      let out = '';
      c.on('data', (b) => void (out += b.toString()));
      c.on('close', () => resolve(out));
      c.on('error', () => resolve(out));
    });
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(performance.now() - t0).toBeLessThan(6000);
    // still serving
    const ok = await postJson(`${url}/v1/sessions`, { prompt: 'still here', seed: 1 });
    expect(ok.status).toBe(201);
    const { id } = (await ok.json()) as { id: string };
    expect((await collect(await postJson(`${url}/v1/sessions/${id}/generate`, { maxTokens: 8 }))).tokens.length).toBe(8);
  });
});
