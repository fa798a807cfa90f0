// Kill the server: the CLI runs as a child process and is SIGKILLed mid-stream at 10 random moments (a random
// number of tokens received, then a random delay while it goes on generating and checkpointing); each time
// it is restarted on the same file: store and the client reconnects with Last-Event-ID. The concatenated
// stream must equal the uninterrupted run (the offline reference), token by token and position by position.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collect, postJson, reference, rng, ServeChild, tinyModelFile, type Token } from './helpers.js';

const tiny = tinyModelFile();
const children: ServeChild[] = [];
afterAll(async () => {
  for (const c of children) await c.kill();
});

describe('serve: SIGKILL mid-stream, restart, reconnect with Last-Event-ID', () => {
  it('10 kills at random moments: the concatenated stream equals the uninterrupted run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzserve-crash-'));
    const args = ['--port', '0', '--model', tiny.path, '--store', `file:${dir}`, '--workers', '1', '--lease-ms', '300', '--checkpoint-every', '37'];
    const random = rng(20261203);
    const maxTokens = 6000;
    let server = new ServeChild(args);
    children.push(server);
    let url = await server.start();
    const created = (await (await postJson(`${url}/v1/sessions`, { prompt: 'Call me Ishmael. ', seed: 77, temperature: 0.9 })).json()) as { id: string; position: number };
    const [ref] = await reference(tiny.model, { seed: 77, temperature: 0.9 }, 'Call me Ishmael. ', [{ prompt: 'Some years ago', maxTokens }]);
    const got: Token[] = [];
    let res = await postJson(`${url}/v1/sessions/${created.id}/generate`, { prompt: 'Some years ago', maxTokens });
    expect(res.status).toBe(200);
    for (let kill = 0; kill < 10; kill++) {
      const take = 1 + Math.floor(random() * 250);
      const part = await collect(res, take);
      got.push(...part.tokens);
      expect(part.tokens.length).toBe(take);
      // the server goes on generating (and checkpointing) while nobody reads, then dies
      await new Promise((r) => setTimeout(r, random() * 40));
      await server.kill();
      server = new ServeChild(args);
      children.push(server);
      url = await server.start();
      res = await fetch(`${url}/v1/sessions/${created.id}/generate`, { headers: { 'last-event-id': String(got[got.length - 1]!.position) } });
      expect(res.status).toBe(200);
    }
    const rest = await collect(res);
    got.push(...rest.tokens);
    expect(rest.error).toBe(null);
    expect(rest.done?.usage.completionTokens).toBe(maxTokens);
    expect(got.length).toBe(ref!.length);
    expect(got).toEqual(ref);
    await server.stop();
  });
});
