// The page of test/browser-sessions.test.ts (bundled by esbuild, served from
// 127.0.0.1): the shipped model on IndexedDB with durable sessions, on Chromium's main thread. It reports to
// the harness through the exposed functions tzReport (every token as it is received, then the outcome) and
// asks it where to resume (tzFrom: the last position the harness received + 1, or null).
//   ?mode=run     open (or resume) session `id` and run its one generation to the end, then close
//   ?mode=hold    open `id`, take `take` tokens of a generation and keep the session open (tab A)
//   ?mode=second  open `id` without waiting ('busy' expected), then with { wait } and resume it (tab B)
//   ?mode=probe   the Math probe (test/browser/mathProbe.ts)
import { loadModel, type GeneratedToken, type Model } from '../../src/model/index.js';
import { openSession, openStore, SessionError, type DurableSession } from '../../src/sessions/index.js';
import { mathProbe } from './mathProbe.js';

declare function tzReport(m: unknown): Promise<void>;
declare function tzFrom(): Promise<number | null>;

const q = new URLSearchParams(location.search);
const num = (k: string, d: number): number => (q.has(k) ? Number(q.get(k)) : d);
const report = (m: Record<string, unknown>): void => void tzReport(m).catch(() => undefined);

function base64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

async function model(): Promise<Model> {
  const r = await fetch('/model.safetensors');
  return loadModel(new Uint8Array(await r.arrayBuffer()));
}

const sampling = () => ({ seed: num('seed', 11), temperature: num('temperature', 0.9), topP: num('topP', 0.95) });
const prompt = (): string => q.get('prompt') ?? 'Call me Ishmael. ';

/** Forward tokens to the harness as they come. */
async function pump(it: AsyncIterable<GeneratedToken>, tab: string, limit = Infinity): Promise<number> {
  let n = 0;
  if (n >= limit) return n;
  for await (const t of it) {
    report({ kind: 'token', tab, token: t.token, position: t.position });
    if (++n >= limit) break;
  }
  return n;
}

/** The generation of `s`: started when the session has none yet, else resumed from what the harness saw. */
async function continueGeneration(s: DurableSession, maxTokens: number): Promise<AsyncIterable<GeneratedToken>> {
  if (s.position === 0) return s.generate(prompt(), { maxTokens });
  const from = await tzFrom();
  return s.resume(from === null ? {} : { from });
}

async function main(): Promise<void> {
  const mode = q.get('mode');
  if (mode === 'probe') {
    report({ kind: 'probe', values: base64(new Uint8Array(mathProbe().buffer)), userAgent: navigator.userAgent });
    return;
  }
  const m = await model();
  const store = await openStore(`indexeddb:${q.get('db') ?? 'tz-test'}`);
  const id = q.get('id') ?? 's';
  const tab = q.get('tab') ?? mode ?? '';
  const opts = { ...sampling(), checkpointEvery: num('every', 48), leaseMs: num('leaseMs', 3000) };
  const maxTokens = num('maxTokens', 400);
  if (mode === 'run') {
    const s = await openSession(m, store, id, { ...opts, wait: 20_000 });
    report({ kind: 'opened', tab, position: s.position, pending: s.pending(), arithmetic: s.arithmetic });
    await pump(await continueGeneration(s, maxTokens), tab);
    const snapshot = s.snapshot();
    await s.close();
    report({ kind: 'done', tab, snapshot: base64(snapshot), position: s.position });
  } else if (mode === 'hold') {
    const s = await openSession(m, store, id, opts);
    const it = s.generate(prompt(), { maxTokens })[Symbol.asyncIterator]();
    for (let i = 0; i < num('take', 30); i++) {
      const t = (await it.next()).value as GeneratedToken;
      report({ kind: 'token', tab, token: t.token, position: t.position });
    }
    report({ kind: 'holding', tab, token: s.leaseToken }); // the generation stays open: the session is ours
  } else if (mode === 'second') {
    const e = await openSession(m, store, id, opts).then(
      () => null,
      (x: unknown) => x,
    );
    report({ kind: 'first-try', tab, code: e instanceof SessionError ? e.code : String(e), message: String((e as Error)?.message) });
    const s = await openSession(m, store, id, { wait: 30_000 });
    report({ kind: 'opened', tab, position: s.position, pending: s.pending(), token: s.leaseToken });
    await pump(await continueGeneration(s, maxTokens), tab);
    const snapshot = s.snapshot();
    await s.close();
    report({ kind: 'done', tab, snapshot: base64(snapshot), position: s.position });
  }
}

main().catch((e: unknown) => report({ kind: 'error', name: (e as Error)?.name, code: (e as SessionError)?.code, message: String((e as Error)?.stack ?? e) }));
