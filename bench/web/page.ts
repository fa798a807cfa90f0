// The page of bench/web-basics.ts (bundled by esbuild for the browser, run on Chromium's main thread). It
// measures, in this order and before anything calls initWasm():
//   - whether this module compiles synchronously here (wasmStatus()), how long that takes, and whether a 9 MB
//     module would (Chromium's main-thread limit for synchronous compiles is 8 MB);
//   - which backend loadModel picks with 'auto';
//   - idle time between tokens while generate() runs, with the old yield (setTimeout(0): MessageChannel hidden,
//     which is exactly what the old code did without setImmediate) and the new one (MessageChannel), alternated;
//     idle = time from scheduling a turn to getting it back, summed by wrapping setTimeout and MessageChannel;
//   - that an AbortSignal aborted from a setTimeout stops a long generation with either yield;
//   - U+FFFD in 1,500 bytes sampled at temperature 1.6, with the UTF-8 mask (the default) and without.
import { loadModel, wasmStatus, type Model } from '../../src/model/index.js';

interface YieldRun {
  yield: 'setTimeout' | 'MessageChannel';
  tokens: number;
  wallMs: number;
  idleMs: number;
  yields: number;
}

const g = globalThis as unknown as Record<string, unknown>;
const RealChannel = MessageChannel;
const realSetTimeout = setTimeout;
const meter = { idle: 0, yields: 0, on: false };

// Wrappers that time each turn from scheduling to callback (only while meter.on).
g.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  const t = performance.now();
  // only zero-delay timeouts are the yield's (the harness polls with setTimeout(500) in this world too)
  const metered = meter.on && !(Number(ms) > 0);
  return realSetTimeout(() => {
    if (metered) {
      meter.idle += performance.now() - t;
      meter.yields++;
    }
    fn(...rest);
  }, ms);
}) as typeof setTimeout;
class MeteredChannel {
  readonly port1: { onmessage: ((e: MessageEvent) => void) | null; close(): void };
  readonly port2: { postMessage(m: unknown): void; close(): void };
  constructor() {
    const c = new RealChannel();
    let sent = 0;
    this.port2 = {
      postMessage: (m) => {
        sent = performance.now();
        c.port2.postMessage(m);
      },
      close: () => c.port2.close(),
    };
    this.port1 = {
      set onmessage(f: ((e: MessageEvent) => void) | null) {
        c.port1.onmessage = f === null ? null : (e) => {
          if (meter.on) {
            meter.idle += performance.now() - sent;
            meter.yields++;
          }
          f(e);
        };
      },
      get onmessage() {
        return null;
      },
      close: () => c.port1.close(),
    };
  }
}

async function timedRun(model: Model, kind: YieldRun['yield'], tokens: number): Promise<YieldRun> {
  g.MessageChannel = kind === 'MessageChannel' ? MeteredChannel : undefined;
  meter.idle = 0;
  meter.yields = 0;
  meter.on = true;
  const t0 = performance.now();
  let n = 0;
  for await (const _ of model.session({ seed: 7, temperature: 0.8 }).generate('Call me Ishmael. ', { maxTokens: tokens })) n++;
  const wallMs = performance.now() - t0;
  meter.on = false;
  g.MessageChannel = RealChannel;
  return { yield: kind, tokens: n, wallMs, idleMs: meter.idle, yields: meter.yields };
}

async function abortRun(model: Model, kind: YieldRun['yield']): Promise<{ yield: string; stoppedAfterMs: number; tokens: number; error: string }> {
  g.MessageChannel = kind === 'MessageChannel' ? RealChannel : undefined;
  const ac = new AbortController();
  const t0 = performance.now();
  realSetTimeout(() => ac.abort(new Error('timer abort')), 200);
  let n = 0;
  let error = 'none';
  try {
    for await (const _ of model.session({ seed: 1 }).generate('Call me Ishmael. ', { maxTokens: 10_000_000, signal: ac.signal })) n++;
  } catch (e) {
    error = (e as Error).message;
  }
  g.MessageChannel = RealChannel;
  return { yield: kind, stoppedAfterMs: performance.now() - t0, tokens: n, error };
}

function bigModule(bytes: number): Uint8Array<ArrayBuffer> {
  // magic, version, then one custom section (id 0) named "x" holding `bytes` zero bytes
  const payload = bytes + 2;
  const leb: number[] = [];
  for (let v = payload; ; ) {
    const b = v & 0x7f;
    v >>>= 7;
    if (v === 0) {
      leb.push(b);
      break;
    }
    leb.push(b | 0x80);
  }
  const out = new Uint8Array(8 + 1 + leb.length + payload);
  out.set([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0, ...leb, 1, 0x78]);
  return out;
}

async function main(): Promise<unknown> {
  const r: Record<string, unknown> = { userAgent: navigator.userAgent, params: location.search };
  const params = new URLSearchParams(location.search);
  const tokens = Number(params.get('tokens') ?? 1500);
  const rounds = Number(params.get('rounds') ?? 3);
  const t0 = performance.now();
  r.wasmStatus = wasmStatus(); // the first call: the synchronous compile
  r.syncCompileMs = performance.now() - t0;
  try {
    new WebAssembly.Module(bigModule(9 * 1024 * 1024) as Uint8Array<ArrayBuffer>);
    r.sync9MB = 'compiled';
  } catch (e) {
    r.sync9MB = `${(e as Error).name}: ${(e as Error).message}`;
  }
  const bytes = new Uint8Array(await (await fetch('/model.safetensors')).arrayBuffer());
  const model = loadModel(bytes);
  r.autoBackend = model.backend;
  await timedRun(model, 'MessageChannel', 200); // warm-up
  const runs: YieldRun[] = [];
  for (let i = 0; i < rounds; i++) {
    runs.push(await timedRun(model, 'setTimeout', tokens));
    runs.push(await timedRun(model, 'MessageChannel', tokens));
  }
  r.runs = runs;
  r.abort = [await abortRun(model, 'MessageChannel'), await abortRun(model, 'setTimeout')];
  const fffd = async (validUtf8: boolean): Promise<number> => {
    let text = '';
    for await (const t of model.session({ seed: 11, temperature: 1.6, validUtf8 }).generate('The whale, the whale! ', { maxTokens: 1500 })) text += t.text;
    return text.split('\uFFFD').length - 1;
  };
  r.fffd = { masked: await fffd(true), unmasked: await fffd(false), tokens: 1500 };
  return r;
}

main().then(
  (r) => (g.__bench = r),
  (e) => (g.__bench = { failure: String((e as Error)?.stack ?? e) }),
);
