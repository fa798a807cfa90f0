// The server's routes in one process (createServer, a tiny model, a memory: or file: store): sessions,
// generation as SSE equal to the offline reference, reconnect with Last-Event-ID and ?from=, info, snapshot
// export and import (a hostile PUT -> 400 with the validation message), delete, the OpenAI-compatible route
// with the openai client, metrics, admission control, auth, body limits and the error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { createServer, type ToeplitzServer } from '../../src/serve/index.js';
import { collect, postJson, reference, tinyModelFile } from './helpers.js';

const tiny = tinyModelFile();

describe('serve: routes (one worker thread, file: store)', () => {
  let server: ToeplitzServer;
  let url = '';
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzserve-'));
    server = createServer({ model: tiny.path, store: `file:${dir}`, workers: 1, maxConcurrent: 4, leaseMs: 500, pauseMs: 300, log: () => undefined });
    ({ url } = await server.listen());
  });
  afterAll(async () => {
    await server.close();
  });

  it('creates a session (128-bit id), generates as SSE equal to the offline reference, reconnects exactly', async () => {
    const r = await postJson(`${url}/v1/sessions`, { prompt: 'Call me ', seed: 11, temperature: 0.9 });
    expect(r.status).toBe(201);
    const { id, position } = (await r.json()) as { id: string; position: number };
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(position).toBe(8);
    const [ref] = await reference(tiny.model, { seed: 11, temperature: 0.9 }, 'Call me ', [{ prompt: 'Ish', maxTokens: 60 }]);
    const g = await postJson(`${url}/v1/sessions/${id}/generate`, { prompt: 'Ish', maxTokens: 60 });
    expect(g.status).toBe(200);
    expect(g.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const s = await collect(g);
    expect(s.tokens).toEqual(ref);
    expect(s.done?.usage.completionTokens).toBe(60);
    expect(s.done?.usage.position).toBe(8 + 3 + 60);
    // reconnect: Last-Event-ID P streams from P + 1; ?from= the same by position
    const lastId = ref![29]!.position;
    const again = await collect(await fetch(`${url}/v1/sessions/${id}/generate`, { headers: { 'last-event-id': String(lastId) } }));
    expect(again.tokens).toEqual(ref!.slice(30));
    const fromQ = await collect(await fetch(`${url}/v1/sessions/${id}/generate?from=${ref![50]!.position}`));
    expect(fromQ.tokens).toEqual(ref!.slice(50));
    const info = (await (await fetch(`${url}/v1/sessions/${id}`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ id, position: 71, options: { seed: 11, temperature: 0.9 } });
    expect(info.stateBytes).toBeGreaterThan(0);
  });

  it('a client that leaves stops the generation at the next token; a reconnect continues it exactly', async () => {
    const { id } = (await (await postJson(`${url}/v1/sessions`, { prompt: 'The whale', seed: 5 })).json()) as { id: string };
    const [ref] = await reference(tiny.model, { seed: 5 }, 'The whale', [{ prompt: '', maxTokens: 3000 }]);
    const part = await collect(await postJson(`${url}/v1/sessions/${id}/generate`, { maxTokens: 3000 }), 10);
    expect(part.tokens).toEqual(ref!.slice(0, 10));
    await new Promise((r) => setTimeout(r, 100));
    const info1 = (await (await fetch(`${url}/v1/sessions/${id}`)).json()) as { position: number; generating: boolean };
    await new Promise((r) => setTimeout(r, 100));
    const info2 = (await (await fetch(`${url}/v1/sessions/${id}`)).json()) as { position: number };
    expect(info1.generating).toBe(false);
    expect(info2.position).toBe(info1.position); // paused: no CPU burning
    expect(info1.position).toBeLessThan(9 + 3000);
    const rest = await collect(await fetch(`${url}/v1/sessions/${id}/generate`, { headers: { 'last-event-id': String(part.tokens[9]!.position) } }));
    expect(rest.tokens).toEqual(ref!.slice(10));
  });

  it('no session starves behind a long one: a short generation started later on the same worker ends first', async () => {
    const create = async (seed: number): Promise<string> => ((await (await postJson(`${url}/v1/sessions`, { prompt: 'x', seed })).json()) as { id: string }).id;
    const [long, short] = [await create(31), await create(32)];
    const longRes = await postJson(`${url}/v1/sessions/${long}/generate`, { maxTokens: 16000 });
    const reader = longRes.body!.getReader();
    await reader.read(); // it is generating (one worker: both sessions share its turns)
    const s = await collect(await postJson(`${url}/v1/sessions/${short}/generate`, { maxTokens: 200 }));
    expect(s.tokens.length).toBe(200);
    const info = (await (await fetch(`${url}/v1/sessions/${long}`)).json()) as { position: number; generating: boolean };
    expect(info.generating).toBe(true);
    expect(info.position).toBeLessThan(1 + 16000);
    await reader.cancel();
  });

  it('backpressure: a socket that reports full holds its generation until it drains; then it finishes, in order', async () => {
    const { id, position } = (await (await postJson(`${url}/v1/sessions`, { prompt: 'slow reader', seed: 8 })).json()) as { id: string; position: number };
    // a slow reader, simulated where Node reports it: this stream's writes say "full", and it drains 100 ms later
    // (a real slow reader needs megabytes of unread data first: loopback's kernel buffers absorb ~1 MB)
    const proto = ServerResponse.prototype as unknown as { write: (this: ServerResponse, ...a: unknown[]) => boolean };
    const write = proto.write;
    let slow = true;
    let draining = false;
    proto.write = function (this: ServerResponse, ...a: unknown[]): boolean {
      const ok = write.apply(this, a);
      if (!slow || !this.req?.url?.endsWith('?slow')) return ok;
      if (!draining) {
        draining = true;
        setTimeout(() => {
          draining = false;
          this.emit('drain');
        }, 100);
      }
      return false;
    };
    try {
      const res = await postJson(`${url}/v1/sessions/${id}/generate?slow`, { maxTokens: 5000 });
      const pos = async (): Promise<number> => ((await (await fetch(`${url}/v1/sessions/${id}`)).json()) as { position: number }).position;
      await new Promise((r) => setTimeout(r, 1000)); // unheld, 5,000 tiny-model tokens take about half of this
      const held = (await pos()) - position;
      // per 100 ms drain, the tokens made while a hold message is in flight (tens); unheld, all 5,000
      expect(held).toBeLessThan(2000);
      slow = false;
      const s = await collect(res);
      expect(s.tokens.length).toBe(5000);
      expect(s.tokens.every((t, i) => t.position === position + 1 + i)).toBe(true);
    } finally {
      proto.write = write;
    }
  });

  it('exports and imports snapshots; a hostile PUT is 400 with the validation message', async () => {
    const { id } = (await (await postJson(`${url}/v1/sessions`, { prompt: 'Loomings', seed: 2 })).json()) as { id: string };
    const snap = new Uint8Array(await (await fetch(`${url}/v1/sessions/${id}/snapshot`)).arrayBuffer());
    const copy = 'imported-copy';
    const put = await fetch(`${url}/v1/sessions/${copy}/snapshot`, { method: 'PUT', body: snap });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ id: copy, position: 8 });
    const a = await collect(await postJson(`${url}/v1/sessions/${id}/generate`, { maxTokens: 40 }));
    const b = await collect(await postJson(`${url}/v1/sessions/${copy}/generate`, { maxTokens: 40 }));
    expect(b.tokens).toEqual(a.tokens);
    const bad = snap.slice();
    bad[bad.length - 5]! ^= 0x10;
    for (const body of [bad, snap.subarray(0, 100), new Uint8Array([1, 2, 3])]) {
      const r = await fetch(`${url}/v1/sessions/hostile/snapshot`, { method: 'PUT', body });
      expect(r.status).toBe(400);
      const e = (await r.json()) as { code: string; message: string };
      expect(e.code).toBe('invalid-snapshot');
      expect(e.message.length).toBeGreaterThan(10);
    }
    expect((await fetch(`${url}/v1/sessions/hostile`)).status).toBe(404);
    const del = await fetch(`${url}/v1/sessions/${copy}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await fetch(`${url}/v1/sessions/${copy}`)).status).toBe(404);
  });

  it('errors are { code, message } with a 4xx', async () => {
    const cases: Array<[Promise<Response>, number, string]> = [
      [fetch(`${url}/v1/sessions/${'0'.repeat(32)}`), 404, 'not-found'],
      [fetch(`${url}/v1/sessions/.bad`), 400, 'invalid'],
      [fetch(`${url}/v1/nothing`), 404, 'not-found'],
      [fetch(`${url}/v1/sessions`, { method: 'GET' }), 405, 'method-not-allowed'],
      [fetch(`${url}/v1/sessions`, { method: 'POST', body: '{"seed":' }), 400, 'invalid-json'],
      [postJson(`${url}/v1/sessions`, { seed: 'x' }), 400, 'invalid'],
      [postJson(`${url}/v1/sessions`, { sed: 1 }), 400, 'invalid'],
      [postJson(`${url}/v1/sessions/${'0'.repeat(32)}/generate`, { maxTokens: 5 }), 404, 'not-found'],
      [postJson(`${url}/v1/sessions/${'0'.repeat(32)}/generate`, { maxTokens: -1 }), 400, 'invalid'],
      [fetch(`${url}/v1/sessions`, { method: 'POST', body: 'x'.repeat(2 << 20) }), 413, 'too-large'],
      [fetch(`${url}/v1/sessions/${'0'.repeat(32)}/generate`, { headers: { 'last-event-id': 'abc' } }), 400, 'invalid'],
    ];
    for (const [p, status, code] of cases) {
      const r = await p;
      expect(r.status, code).toBe(status);
      const body = (await r.json()) as { code: string; message: string };
      expect(body.code).toBe(code);
      expect(typeof body.message).toBe('string');
      expect(body.message).not.toMatch(/\n\s+at /);
    }
  });

  it('the openai client streams from /v1/completions (and the non-streaming form agrees)', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused-locally', maxRetries: 0 });
    const pieces: string[] = [];
    const stream = await client.completions.create({ model: 'toeplitz-lm', prompt: 'Call me', max_tokens: 30, seed: 4, temperature: 0.7, stream: true });
    let finish: string | null = null;
    for await (const chunk of stream) {
      pieces.push(chunk.choices[0]!.text);
      finish = chunk.choices[0]!.finish_reason ?? finish;
    }
    expect(finish).toBe('length');
    const [ref] = await reference(tiny.model, { seed: 4, temperature: 0.7 }, '', [{ prompt: 'Call me', maxTokens: 30 }]);
    expect(pieces.join('')).toBe(ref!.map((t) => t.text).join(''));
    const whole = await client.completions.create({ model: 'toeplitz-lm', prompt: 'Call me', max_tokens: 30, seed: 4, temperature: 0.7 });
    expect(whole.choices[0]!.text).toBe(pieces.join(''));
    expect(whole.usage).toEqual({ prompt_tokens: 7, completion_tokens: 30, total_tokens: 37 });
  });

  it('admission control: beyond --max-concurrent streams, 429 with Retry-After', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(((await (await postJson(`${url}/v1/sessions`, { prompt: 'x', seed: i })).json()) as { id: string }).id);
    const open: Response[] = [];
    for (let i = 0; i < 4; i++) open.push(await postJson(`${url}/v1/sessions/${ids[i]}/generate`, { maxTokens: 16000 }));
    for (const o of open) expect(o.status).toBe(200);
    const r = await postJson(`${url}/v1/sessions/${ids[4]}/generate`, { maxTokens: 10 });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(((await r.json()) as { code: string }).code).toBe('overloaded');
    for (const o of open) await o.body!.cancel();
    await new Promise((res) => setTimeout(res, 50));
    const ok = await postJson(`${url}/v1/sessions/${ids[4]}/generate`, { maxTokens: 10 });
    expect(ok.status).toBe(200);
    expect((await collect(ok)).tokens.length).toBe(10);
  });

  it('metrics in Prometheus text format; healthz', async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ ok: true, workers: 1 });
    const r = await fetch(`${url}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('toeplitz_serve_tokens_generated_total')).toBeGreaterThan(100);
    expect(value('toeplitz_serve_sessions_live')).toBeGreaterThan(0);
    expect(value('toeplitz_serve_sessions_stored')).toBeGreaterThan(3);
    expect(value('toeplitz_serve_queue_depth')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^# TYPE toeplitz_serve_checkpoint_seconds histogram$/m);
    expect(text).toMatch(/^toeplitz_serve_checkpoint_seconds_bucket\{phase="snapshot",le="\+Inf"\} \d+$/m);
    expect(text).toMatch(/^toeplitz_serve_requests_total\{status="429"\} [1-9]/m);
    // every line is a comment or `name{labels} value`
    for (const line of text.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[\d.e+-]+|\w+(\{[^}]*\})? \+Inf)$/);
  });
});

describe('serve: auth', () => {
  it('--api-key is required off loopback; Bearer is checked on every route but /healthz', async () => {
    expect(() => createServer({ model: tiny.path, store: 'memory:', host: '0.0.0.0' })).toThrow(/needs an API key/);
    const server = createServer({ model: tiny.bytes, store: 'memory:', workers: 0, apiKey: 'secret-key-123' });
    const { url } = await server.listen();
    try {
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const no = await postJson(`${url}/v1/sessions`, {});
      expect(no.status).toBe(401);
      expect(no.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await no.json()) as { code: string }).code).toBe('unauthorized');
      expect((await postJson(`${url}/v1/sessions`, {}, { authorization: 'Bearer secret-key-12' })).status).toBe(401);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const yes = await postJson(`${url}/v1/sessions`, { prompt: 'a' }, { authorization: 'Bearer secret-key-123' });
      expect(yes.status).toBe(201);
    } finally {
      await server.close();
    }
  });
});
