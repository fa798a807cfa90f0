// Shared by the serve tests: a tiny model file, the CLI as a child process (SIGKILL-able), an SSE client
// that reads events as they arrive, and the offline reference of a generation (a plain model session).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeModel, loadModel, randomWeights, type Model } from '../../src/model/index.js';
import { tinyConfig } from '../model/tiny.js';
import { Rng } from '../../src/math/rng.js';

/** A tiny random model written to a temp file (F64, exact): [path, the loaded model]. */
export function tinyModelFile(seed = 3): { path: string; model: Model; bytes: Uint8Array } {
  const cfg = tinyConfig({ dim: 32, hidden: 48, rpe: { length: 16, tail: 'clip' } });
  const bytes = encodeModel(cfg, randomWeights(cfg, seed), { dtype: 'F64', info: { note: 'serve test model' } });
  const dir = mkdtempSync(join(tmpdir(), 'tzserve-model-'));
  const path = join(dir, 'tiny.safetensors');
  writeFileSync(path, bytes);
  return { path, model: loadModel(bytes), bytes };
}

export interface Token {
  token: number;
  text: string;
  position: number;
}

/** The tokens an uninterrupted generation gives, offline: a plain model session with the same inputs. */
export async function reference(model: Model, sampling: { seed: number; temperature?: number; topK?: number; topP?: number }, prompt: string, gens: Array<{ prompt: string; maxTokens: number; stop?: string[] }>): Promise<Token[][]> {
  const s = model.session(sampling);
  if (prompt.length > 0) s.feed(new TextEncoder().encode(prompt), { lastOnly: true });
  const out: Token[][] = [];
  for (const g of gens) {
    const got: Token[] = [];
    for await (const t of s.generate(g.prompt, { maxTokens: g.maxTokens, ...(g.stop ? { stop: g.stop } : {}) })) got.push({ token: t.token, text: t.text, position: t.position });
    out.push(got);
  }
  return out;
}

/** The CLI `serve` as a child process from the sources; resolves once it printed `listening on URL`. */
export class ServeChild {
  child: ChildProcess | null = null;
  url = '';
  stderr = '';

  constructor(readonly args: string[]) {}

  async start(): Promise<string> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/cli/entry.ts', 'serve', ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (b: Buffer) => void (this.stderr += b.toString()));
    const first = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', (line) => resolve(line));
      child.once('exit', (code) => reject(new Error(`serve exited (code ${code}) before listening: ${this.stderr}`)));
    });
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(first);
    if (m === null) throw new Error(`unexpected first line: ${first}`);
    this.url = m[1]!;
    return this.url;
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (c === null) return;
    this.child = null;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM: a graceful stop. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c === null) return;
    this.child = null;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }
}

export interface SseEvent {
  event: string;
  id: string | null;
  data: string;
}

/** Read a text/event-stream response event by event; `onEvent` returns false to stop reading. */
export async function readEvents(res: Response, onEvent: (e: SseEvent) => boolean | void): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let id: string | null = null;
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const go = onEvent({ event, id, data: data.join('\n') });
            if (go === false) return;
          }
          event = 'message';
          id = null;
          data = [];
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('id:')) id = line.slice(3).trim();
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export interface Streamed {
  tokens: Token[];
  done: { usage: { completionTokens: number; position: number; finishReason: string } } | null;
  error: { code: string; message: string } | null;
}

/** Collect a session stream (tokens, then done or error); `stopAfter` stops reading after that many tokens. */
export async function collect(res: Response, stopAfter = Infinity, onToken?: (t: Token) => void): Promise<Streamed> {
  const out: Streamed = { tokens: [], done: null, error: null };
  await readEvents(res, (e) => {
    if (e.event === 'done') out.done = JSON.parse(e.data);
    else if (e.event === 'error') out.error = JSON.parse(e.data);
    else {
      const t = JSON.parse(e.data) as Token;
      if (String(t.position) !== e.id) throw new Error(`event id ${e.id} is not its position ${t.position}`);
      out.tokens.push(t);
      onToken?.(t);
      if (out.tokens.length >= stopAfter) return false;
    }
    return undefined;
  });
  return out;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** A seeded generator for test choices: uniform in [0, 1) from the project's seeded generator. */
export function rng(seed: number): () => number {
  const r = new Rng(seed >>> 0);
  return () => r.nextFloat64();
}
