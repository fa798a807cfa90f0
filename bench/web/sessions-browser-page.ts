// The page of bench/sessions-browser.ts (bundled by esbuild, served from 127.0.0.1, Chromium's main thread,
// the shipped model on WASM). Side by side, interleaved block by block on long-lived sessions (the order
// alternates every round):
//   off     a plain model session (no durability)
//   on      a durable session on IndexedDB, default cadence (checkpointEvery 512, checkpointMs 2000)
//   naive   a plain session whose snapshot is written to IndexedDB every 25 tokens, each write awaited
// plus checkpoint latency (on the token path: snapshot + framing; the IndexedDB write off it; and an awaited
// checkpoint() end to end) and the bytes on IndexedDB. Reports through tzReport({ kind: 'bench', ... }).
import { loadModel, type Session } from '../../src/model/index.js';
import { openSession, openStore, type DurableSession, DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_MS } from '../../src/sessions/index.js';
import { counting } from '../countingStore.js';

declare function tzReport(m: unknown): Promise<void>;

const q = new URLSearchParams(location.search);
const rounds = Number(q.get('rounds') ?? 10);
const block = Number(q.get('block') ?? 512);
const S = { seed: 7, temperature: 0.8 };
const PROMPT = 'Call me Ishmael. Some years ago, never mind how long precisely, ';


async function main(): Promise<void> {
  const model = loadModel(new Uint8Array(await (await fetch('/model.safetensors')).arrayBuffer()));
  const raw = await openStore(`indexeddb:bench-${Date.now()}`);
  const store = counting(raw);
  const naiveStore = counting(raw);
  const plain = model.session(S);
  const naive = model.session(S);
  const durable: DurableSession = await openSession(model, store, 'bench', S);
  const r = await naiveStore.acquire('naive', 'naive', 60_000);
  if (!('lease' in r)) throw new Error('naive lease refused');
  const naiveLease = r.lease;
  const onPath: number[] = [];
  let seenCheckpoint = durable.lastCheckpoint;

  const runOff = async (s: Session, prompt: string): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    for await (const _ of s.generate(prompt, { maxTokens: block })) n++;
    return n / ((performance.now() - t0) / 1000);
  };
  const runOn = async (prompt: string): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    for await (const _ of durable.generate(prompt, { maxTokens: block })) {
      n++;
      if (durable.lastCheckpoint !== seenCheckpoint) {
        seenCheckpoint = durable.lastCheckpoint;
        onPath.push(seenCheckpoint!.snapshotMs);
      }
    }
    return n / ((performance.now() - t0) / 1000);
  };
  const runNaive = async (prompt: string): Promise<number> => {
    const t0 = performance.now();
    let n = 0;
    for await (const _ of naive.generate(prompt, { maxTokens: block })) {
      if (++n % 25 === 0) await naiveStore.checkpoint(naiveLease, naive.snapshot(), 0);
    }
    return n / ((performance.now() - t0) / 1000);
  };

  // warm-up (JIT, WASM tiers, IndexedDB): the prompt, then a block each
  await runOff(plain, PROMPT);
  await runOn(PROMPT);
  await runNaive(PROMPT);
  const bytes0 = { on: store.bytes, naive: naiveStore.bytes };
  const tps: Record<'off' | 'on' | 'naive', number[]> = { off: [], on: [], naive: [] };
  const onPath0 = onPath.length;
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? (['off', 'on', 'naive'] as const) : (['naive', 'on', 'off'] as const);
    for (const v of order) tps[v].push(v === 'off' ? await runOff(plain, '') : v === 'on' ? await runOn('') : await runNaive(''));
  }
  const tokens = rounds * block;
  const perK = { on: ((store.bytes - bytes0.on) / tokens) * 1000, naive: ((naiveStore.bytes - bytes0.naive) / tokens) * 1000 };
  // an awaited checkpoint, end to end (snapshot + framing + IndexedDB transaction, durability 'strict')
  const awaited: number[] = [];
  for (let i = 0; i < 20; i++) {
    for await (const _ of durable.generate('', { maxTokens: 8 })) {
      // a few tokens, so each checkpoint has something new
    }
    const t0 = performance.now();
    await durable.checkpoint();
    awaited.push(performance.now() - t0);
  }
  const list = await raw.list();
  const estimate = await navigator.storage.estimate();
  await durable.close();
  await raw.close();
  await tzReport({
    kind: 'bench',
    userAgent: navigator.userAgent,
    rounds,
    block,
    cadence: { every: DEFAULT_CHECKPOINT_EVERY, ms: DEFAULT_CHECKPOINT_MS },
    tps,
    perK,
    onPath,
    /** on-path checkpoint ms during the measured rounds (not the warm-up) */
    onPathMeasured: onPath.slice(onPath0),
    writeMs: store.writeMs,
    naiveWriteMs: naiveStore.writeMs,
    awaited,
    checkpointBytes: durable.lastCheckpoint?.bytes,
    list,
    usage: estimate.usage,
  });
}

main().catch((e: unknown) => void tzReport({ kind: 'error', message: String((e as Error)?.stack ?? e) }));
