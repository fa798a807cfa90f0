// The worker engine (toeplitz-attention/web) under Node's worker_threads, running the browser's worker module
// unchanged: tokens equal an in-process durable session's with the same seed; a break or an abort ends the
// generation exactly after the last token read; errors arrive as the same typed classes; a terminated worker's
// generation is pending and resumes exactly from the store; a session file exports and imports; worker: false
// runs the same engine in-thread; a browser bundle of ./web holds no Node built-in, ioredis or file store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ShapeError, StateError } from '../../src/index.js';
import { loadModel, ModelError, type GeneratedToken, type Model } from '../../src/model/index.js';
import { openSession, openStore, SessionError, type DurableSession } from '../../src/sessions/index.js';
import { createEngine, type Engine, type WebSession } from '../../src/web/node.js';

const MODEL = 'models/toeplitz-lm.safetensors';
const OPTS = { seed: 7, temperature: 0.8 };
const PROMPT = 'Call me Ishmael. ';

let model: Model;
let engine: Engine;
const dirs: string[] = [];
beforeAll(async () => {
  model = loadModel(new Uint8Array(readFileSync(MODEL)));
  engine = await createEngine({ model: MODEL, store: 'memory:' });
});
afterAll(async () => {
  await engine?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function local(id: string, options: object = OPTS): Promise<DurableSession> {
  return openSession(model, await openStore('memory:'), id, options);
}

async function take(it: AsyncIterable<GeneratedToken>, n = Infinity): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  if (n === 0) return out;
  for await (const t of it) {
    out.push({ token: t.token, text: t.text, position: t.position });
    if (out.length >= n) break;
  }
  return out;
}

/** name, code and message of what `fn` throws or rejects with */
async function caught(fn: () => unknown): Promise<Error & { code?: string }> {
  try {
    await fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('toeplitz-attention/web in a worker_thread', () => {
  it('generates the tokens of an in-process durable session with the same seed; feed logits and snapshots are equal', async () => {
    expect(engine.worker).toBe(true);
    expect(engine.backend).toBe(model.backend);
    const w = await engine.openSession('same', OPTS);
    const l = await local('same');
    const prompt = new TextEncoder().encode('CHAPTER 1. Loomings.\n\n');
    const [lw, ll] = [await w.feed(prompt), await l.feed(prompt)];
    expect(lw).toBeInstanceOf(Float64Array);
    expect(Array.from(lw)).toEqual(Array.from(ll));
    const tw = await take(w.generate(PROMPT, { maxTokens: 200 }));
    const tl = await take(l.generate(PROMPT, { maxTokens: 200 }));
    expect(tw.length).toBe(200);
    expect(tw).toEqual(tl);
    expect(w.position).toBe(l.position);
    expect(w.pending()).toEqual(l.pending());
    expect(w.sampling).toEqual(l.sampling);
    expect(Array.from(await w.snapshot())).toEqual(Array.from(l.snapshot()));
    const st = engine.stats();
    expect(st).toMatchObject({ backend: model.backend, worker: true, store: 'memory:', session: 'same', tokens: 200, position: l.position });
    expect(st.tokensPerSecond).toBeGreaterThan(0);
    expect(st.stateBytes).toBe(model.restore(l.snapshot()).stateBytes);
    await w.close();
    await l.close();
  });

  it('a break or an abort ends the generation exactly after the last token read; the session goes on as in-process', async () => {
    for (const how of ['break', 'abort'] as const) {
      const w = await engine.openSession(`stop-${how}`, OPTS);
      const l = await local(`stop-${how}`);
      const run = async (s: WebSession | DurableSession): Promise<{ tokens: GeneratedToken[]; error: unknown }> => {
        const ac = new AbortController();
        const tokens: GeneratedToken[] = [];
        let error: unknown = null;
        try {
          for await (const t of s.generate(PROMPT, { maxTokens: 300, signal: ac.signal })) {
            tokens.push(t);
            if (tokens.length === 37) {
              if (how === 'break') break;
              ac.abort(new Error('stop here'));
            }
          }
        } catch (e) {
          error = e;
        }
        return { tokens, error };
      };
      const [rw, rl] = [await run(w), await run(l)];
      expect(rw.tokens.length).toBe(37);
      expect(rw.tokens).toEqual(rl.tokens);
      if (how === 'abort') expect((rw.error as Error).message).toBe('stop here');
      else expect(rw.error).toBeNull();
      expect(w.position).toBe(l.position);
      expect(w.pending()).toBeNull();
      expect(await take(w.generate('', { maxTokens: 40 }))).toEqual(await take(l.generate('', { maxTokens: 40 })));
      await w.close();
      await l.close();
    }
  });

  it('errors cross the boundary as the same typed classes, names, codes and messages', async () => {
    const w = await engine.openSession('errors', OPTS);
    const l = await local('errors');
    const pairs: Array<[string, Error & { code?: string }, Error & { code?: string }, new (...a: never[]) => Error]> = [
      ['bad maxTokens', await caught(() => take(w.generate('x', { maxTokens: -1 }))), await caught(() => take(l.generate('x', { maxTokens: -1 }))), ConfigError],
      ['empty prompt on a fresh session', await caught(() => take(w.generate('', { maxTokens: 3 }))), await caught(() => take(l.generate('', { maxTokens: 3 }))), StateError],
      ['bad temperature', await caught(() => w.setOptions({ temperature: -2 })), await caught(() => l.setOptions({ temperature: -2 })), ConfigError],
    ];
    pairs.push(['bad token', await caught(() => w.feed([1, 300])), await caught(() => l.feed([1, 300])), ShapeError]);
    pairs.push(['bad prompt token', await caught(() => take(w.generate([1.5], { maxTokens: 1 }))), await caught(() => take(l.generate([1.5], { maxTokens: 1 }))), ShapeError]);
    const bad = l.snapshot();
    bad[bad.length - 9]! ^= 0x55;
    pairs.push(['damaged session file', await caught(() => engine.importSession('imported-bad', bad)), await caught(() => model.restore(bad)), ModelError]);
    pairs.push(['bad session id', await caught(() => engine.openSession('../x')), await caught(() => local('../x')), ConfigError]);
    for (const [what, ew, el, cls] of pairs) {
      expect(ew, what).toBeInstanceOf(cls);
      expect([ew.name, ew.code, ew.message], what).toEqual([el.name, el.code, el.message]);
    }
    // another live writer: the same class and code (the message names the holder, a random owner)
    const busy = await caught(() => engine.openSession('errors'));
    expect(busy).toBeInstanceOf(SessionError);
    expect([busy.name, busy.code]).toEqual(['SessionError', 'busy']);
    expect(busy.message).toMatch(/^busy: session errors is held by another writer \([0-9a-f]+\) for \d+ ms more/);
    // the session is still usable after the refusals
    expect((await take(w.generate(PROMPT, { maxTokens: 5 }))).length).toBe(5);
    await w.close();
    await l.close();
  });

  it('a session file exports and imports: the imported session continues exactly', async () => {
    const w = await engine.openSession('export', OPTS);
    await take(w.generate(PROMPT, { maxTokens: 90 }));
    const file = await w.snapshot();
    const imported = await engine.importSession('export-copy', file);
    expect(imported.position).toBe(w.position);
    expect(imported.sampling).toEqual(w.sampling);
    const a = await take(w.generate('', { maxTokens: 60 }));
    const b = await take(imported.generate('', { maxTokens: 60 }));
    expect(b).toEqual(a);
    const busy = await caught(() => engine.importSession('export', file));
    expect([busy.name, busy.code]).toEqual(['SessionError', 'busy']);
    await w.close();
    const conflict = await caught(() => engine.importSession('export', file));
    expect([conflict.name, conflict.code, conflict.message]).toEqual(['SessionError', 'conflict', 'conflict: session export exists already in memory:; import under another id or delete it first']);
    expect((await engine.listSessions()).map((s) => s.id)).toEqual(expect.arrayContaining(['export', 'export-copy']));
    await imported.close();
    await engine.deleteSession('export-copy');
    expect((await engine.listSessions()).map((s) => s.id)).not.toContain('export-copy');
  });

  it('a worker terminated mid-generation leaves it pending in the store; another engine resumes it exactly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tza-web-'));
    dirs.push(dir);
    const store = `file:${dir}`;
    const reference = await take((await local('crash')).generate(PROMPT, { maxTokens: 160 }));
    const a = await createEngine({ model: MODEL, store });
    const s = await a.openSession('crash', { ...OPTS, checkpointEvery: 40, leaseMs: 300 });
    const it = s.generate(PROMPT, { maxTokens: 160 });
    for (let i = 0; i < 100; i++) expect((await it.next()).value).toEqual(reference[i]);
    a.terminate(); // as a closed tab: no final checkpoint, the lease runs out
    const b = await createEngine({ model: MODEL, store, worker: false });
    try {
      const r = await b.openSession('crash', { wait: true });
      const start = reference[0]!.position - 1;
      expect(r.pending()).toEqual({ from: start + 1, to: start + 160 });
      expect(await take(r.resume({ from: start + 101 }))).toEqual(reference.slice(100));
      expect(r.pending()).toBeNull();
      await r.close();
    } finally {
      await b.close();
    }
  });

  it('worker: false runs the same engine in this thread, with the same tokens', async () => {
    const e = await createEngine({ model: new Uint8Array(readFileSync(MODEL)), store: 'memory:', worker: false });
    try {
      expect(e.worker).toBe(false);
      const s = await e.openSession('inline', OPTS);
      const l = await local('inline');
      expect(await take(s.generate(PROMPT, { maxTokens: 60 }))).toEqual(await take(l.generate(PROMPT, { maxTokens: 60 })));
    } finally {
      await e.close();
    }
  });

  it('refuses a missing model file and an unknown store with typed errors', async () => {
    const missing = await caught(() => createEngine({ model: 'models/none.safetensors', store: 'memory:' }));
    expect([missing.name, missing.code]).toEqual(['ModelError', 'io']);
    const store = await caught(() => createEngine({ model: MODEL, store: 'sqlite:x', worker: false }));
    expect(store).toBeInstanceOf(ConfigError);
    expect(store.message).toMatch(/unknown store URL "sqlite:x"/);
  });
});

describe('a browser bundle of toeplitz-attention/web', () => {
  it('holds no Node built-in, no ioredis, no file or Redis store (the page entry and the worker)', async () => {
    const r = await build({ entryPoints: ['src/web/index.ts', 'src/web/worker.ts'], bundle: true, splitting: true, platform: 'browser', format: 'esm', outdir: 'unused', write: false, logLevel: 'silent', metafile: true });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('src/web/host.ts');
    expect(inputs.filter((p) => /^node:|(^|\/)(fs|path|os|worker_threads|child_process)$/.test(p))).toEqual([]);
    expect(inputs.filter((p) => /node_modules\/(ioredis|@ioredis|redis)/.test(p))).toEqual([]);
    expect(inputs.filter((p) => /src\/sessions\/(file|redis)\.ts$|src\/web\/node\.ts$/.test(p))).toEqual([]);
  });
});
