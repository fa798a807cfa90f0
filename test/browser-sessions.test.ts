// Durable sessions in Chromium on IndexedDB (Debian's /usr/bin/chromium through playwright-core; the page is
// test/browser/sessions-page.ts, bundled by esbuild, served from 127.0.0.1 with the shipped model, WASM):
//   - a page generating on IndexedDB is reloaded or closed at random moments (6 times: while the model loads,
//     while the session opens and replays, between tokens, during checkpoint writes) and resumes each time
//     from the last position the harness received; everything received plus the continuation equals the
//     uninterrupted run computed in Node with the same seed, token for token; the final state equals Node's
//     byte for byte where their Math.exp/log agree (else in all but the last bits), and Node continues it
//     as it continues its own (a session moving between V8-in-Chromium and Node);
//   - the JS arithmetic outside the WASM kernels (Math.exp, Math.log, Math.sqrt) of this Chromium and this
//     Node, compared bit for bit (what that exactness depends on: they differ, measured, see the log line),
//     and the fingerprint checkpoints record tells them apart;
//   - two tabs on one session: one writer; the second gets 'busy' while the first holds it and takes over
//     at once when the first tab closes (Web Locks), continuing exactly.
// Skipped, by name, where Chromium is not installed.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../src/model/index.js';
import { CHROMIUM, startBrowser, type Browser } from './browser/harness.js';
import { mathProbe } from './browser/mathProbe.js';
import { arithmeticFingerprint } from '../src/sessions/arithmetic.js';

const MODEL = 'models/toeplitz-lm.safetensors';
const have = existsSync(CHROMIUM) && existsSync(MODEL);
const PROMPT = 'Call me Ishmael. ';
const SAMPLING = { seed: 11, temperature: 0.9, topP: 0.95 };

/** The uninterrupted run in Node: tokens by position, and the session's final snapshot. */
async function reference(model: Model, maxTokens: number): Promise<{ tokens: Map<number, number>; snapshot: Uint8Array }> {
  const s = model.session(SAMPLING);
  const tokens = new Map<number, number>();
  for await (const t of s.generate(PROMPT, { maxTokens })) tokens.set(t.position, t.token);
  return { tokens, snapshot: s.snapshot() };
}

/** A tiny seeded generator for the interruption moments (the seed is printed on failure). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
}

describe.skipIf(!have)('durable sessions in Chromium on IndexedDB', () => {
  let b: Browser;
  let model: Model;
  let probe: Record<string, unknown>;
  const differ = [0, 0, 0, 0, 0]; // of mathProbe(): exp (sampler), exp (silu), log, sqrt, exp (scattered)
  let sameArithmetic = true;
  beforeAll(async () => {
    model = loadModel(new Uint8Array(readFileSync(MODEL)));
    b = await startBrowser('test/browser/sessions-page.ts', MODEL);
    const page = await b.context.newPage();
    await page.goto(`${b.origin}/?mode=probe`);
    probe = await b.next((x) => x.kind === 'probe');
    await page.close();
    const theirs = new Float64Array(new Uint8Array(Buffer.from(String(probe.values), 'base64')).buffer);
    const ours = mathProbe();
    expect(theirs.length).toBe(ours.length);
    for (let i = 0; i < ours.length; i++) if (!Object.is(ours[i], theirs[i])) differ[i % 5]!++;
    sameArithmetic = differ.every((d) => d === 0);
  }, 60_000);
  afterAll(async () => b?.close());

  it('Math.exp / Math.log of this Chromium and this Node: measured, and what the checkpoint records says so', async () => {
    console.log(`${/HeadlessChrome\/[\d.]+/.exec(String(probe.userAgent))?.[0]} vs Node ${process.version}: results differing in the last bits, of ${mathProbe().length / 5} each: exp (softmax range) ${differ[0]}, exp (silu range) ${differ[1]}, log ${differ[2]}, sqrt ${differ[3]}, exp (scattered) ${differ[4]}`);
    expect(differ[3], 'Math.sqrt is IEEE correctly rounded everywhere').toBe(0);
    // the fingerprint a checkpoint records tells the two apart exactly when the probe does
    const page2 = await b.context.newPage();
    await page2.goto(`${b.origin}/?mode=run&db=arith&id=a&maxTokens=1&tab=arith`);
    const opened = await b.next((x) => (x.kind === 'opened' && x.tab === 'arith') || x.kind === 'error');
    await b.next((x) => (x.kind === 'done' && x.tab === 'arith') || x.kind === 'error');
    await page2.close();
    const here = (opened.arithmetic as { here: string }).here;
    expect(here === arithmeticFingerprint()).toBe(sameArithmetic);
  });

  it('a page reloaded or closed at 6 random moments resumes identically: received + continuation = the uninterrupted run in Node', async () => {
    const maxTokens = 2000; // generous: the page runs ahead of the reports it sends while the harness interrupts it
    const seed = (Date.now() % 1e6) | 0;
    const rand = rng(seed);
    const ref = await reference(model, maxTokens);
    const received = new Map<number, number>();
    let last: number | null = null;
    b.resumeFrom = () => (last === null ? null : last + 1);
    const db = `reload-${seed}`;
    const url = `${b.origin}/?mode=run&db=${db}&id=chat&maxTokens=${maxTokens}&every=48&tab=run`;
    const tokensSoFar = (): number => received.size;
    const onToken = (m: Record<string, unknown>): void => {
      const pos = m.position as number;
      // each position arrives once, in order (a page resumes right after the last one received)
      expect(received.has(pos), `position ${pos} received twice (seed ${seed})`).toBe(false);
      expect(last === null || pos === last + 1, `position ${pos} after ${last} (seed ${seed})`).toBe(true);
      received.set(pos, m.token as number);
      last = pos;
    };
    let seen = 0;
    const drain = (): void => {
      for (; seen < b.messages.length; seen++) {
        const m = b.messages[seen]!;
        if (m.kind === 'error') throw new Error(`the page failed (seed ${seed}): ${String(m.message)}`);
        if (m.kind === 'token' && m.tab === 'run') onToken(m);
      }
    };
    let page = await b.context.newPage();
    await page.goto(url);
    const kinds: string[] = [];
    for (let k = 0; k < 6; k++) {
      // the moment: a random time since the page started (model loading, opening, replay, generating) or a
      // random number of new tokens, whichever comes first
      const t0 = performance.now();
      const waitMs = rand() * 500;
      const waitTokens = 1 + Math.floor(rand() * 40);
      const start = tokensSoFar();
      while (performance.now() - t0 < waitMs && tokensSoFar() - start < waitTokens) {
        await new Promise((r) => setTimeout(r, 2));
        drain();
      }
      if (rand() < 0.5) {
        kinds.push(`reload after ${tokensSoFar() - start} tokens`);
        await page.reload({ waitUntil: 'commit' });
      } else {
        kinds.push(`close after ${tokensSoFar() - start} tokens`);
        await page.close({ runBeforeUnload: false });
        page = await b.context.newPage();
        await page.goto(url, { waitUntil: 'commit' });
      }
      drain();
      expect(b.messages.some((m) => m.kind === "done" && m.tab === "run"), `the generation ended before interruption ${k + 1} (seed ${seed}): ${kinds.join("; ")}; ${JSON.stringify(b.messages.filter((m) => m.kind !== "token").map((m) => [m.kind, m.tab, m.position, m.pending])).slice(0, 1500)}`).toBe(false);
    }
    const done = await b.next((m) => m.kind === 'done' && m.tab === 'run', 45_000);
    drain();
    await page.close();
    // everything received plus the continuation is the uninterrupted run, token for token
    expect([...received.keys()]).toEqual([...ref.tokens.keys()]);
    expect([...received.values()], `interruptions: ${kinds.join('; ')} (seed ${seed})`).toEqual([...ref.tokens.values()]);
    // the state the page ended in is Node's, byte for byte, where their Math.exp/log agree; where they do not
    // (Node 20 vs Chromium 156), the tokens agree (above) but the states differ in their last bits
    const snap = new Uint8Array(Buffer.from(String(done.snapshot), 'base64'));
    expect(snap.length).toBe(ref.snapshot.length);
    expect(Buffer.compare(Buffer.from(snap), Buffer.from(ref.snapshot)) === 0).toBe(sameArithmetic);
    // the session continues in Node from the page's state exactly as the uninterrupted run
    const a = model.restore(snap);
    const bRef = model.restore(ref.snapshot);
    const next = async (s: typeof a) => {
      const out: number[] = [];
      for await (const t of s.generate('', { maxTokens: 40 })) out.push(t.token);
      return out;
    };
    expect(await next(a)).toEqual(await next(bRef));
  }, 60_000);

  it('two tabs on one session: the second is busy while the first holds it, takes over when it closes, and continues exactly', async () => {
    const maxTokens = 80;
    const ref = await reference(model, maxTokens);
    const q = `db=tabs&id=shared&maxTokens=${maxTokens}&every=16`;
    const got = new Map<number, number>();
    const tabA = await b.context.newPage();
    await tabA.goto(`${b.origin}/?mode=hold&tab=A&take=30&${q}`);
    const holding = await b.next((m) => (m.kind === 'holding' && m.tab === 'A') || m.kind === 'error');
    expect(holding.kind).toBe('holding');
    for (const m of b.messages) if (m.kind === 'token' && m.tab === 'A') got.set(m.position as number, m.token as number);
    expect(got.size).toBe(30);
    b.resumeFrom = () => Math.max(...got.keys()) + 1;
    const tabB = await b.context.newPage();
    await tabB.goto(`${b.origin}/?mode=second&tab=B&${q}`);
    const first = await b.next((m) => (m.kind === 'first-try' && m.tab === 'B') || m.kind === 'error');
    expect(first.code, String(first.message)).toBe('busy');
    // B now waits; A still holds the session: B must not get it
    await new Promise((r) => setTimeout(r, 400));
    expect(b.messages.some((m) => m.kind === 'opened' && m.tab === 'B')).toBe(false);
    // A's tab closes (no close(), no release): its Web Lock goes with it, B takes over long before A's lease
    // record (leaseMs 3000) would run out
    const closedAt = performance.now();
    await tabA.close({ runBeforeUnload: false });
    const opened = await b.next((m) => (m.kind === 'opened' && m.tab === 'B') || m.kind === 'error');
    expect(opened.kind, String(opened.message)).toBe('opened');
    const takeover = performance.now() - closedAt;
    console.log(`tab B took the session over ${takeover.toFixed(0)} ms after tab A closed (A's lease record: 3000 ms)`);
    expect(takeover).toBeLessThan(2500);
    expect(opened.token as number).toBeGreaterThan(holding.token as number);
    expect(opened.pending).toEqual({ from: [...ref.tokens.keys()][0], to: [...ref.tokens.keys()][0]! + maxTokens - 1 });
    const done = await b.next((m) => (m.kind === 'done' && m.tab === 'B') || m.kind === 'error');
    expect(done.kind, String(done.message)).toBe('done');
    for (const m of b.messages) if (m.kind === 'token' && m.tab === 'B') {
      expect(got.has(m.position as number)).toBe(false);
      got.set(m.position as number, m.token as number);
    }
    await tabB.close();
    expect([...got.entries()].sort((x, y) => x[0] - y[0])).toEqual([...ref.tokens.entries()]);
    expect(Buffer.compare(Buffer.from(String(done.snapshot), 'base64'), Buffer.from(ref.snapshot)) === 0).toBe(sameArithmetic);
  }, 40_000);
});
