// The measurement page of test/web/chromium.test.ts: the engine in a worker (WASM), a generation with
// durability on, and a 10 ms main-thread heartbeat (a chain of setTimeout(10), lateness = when it ran
// minus when it was due). Served next to the demo's build (worker.js, the model file).
import { createEngine, type Engine } from '../../src/web/index.js';

interface Run {
  tokens: number[];
  /** tokens per second, first token to last */
  tokensPerSecond: number;
  lateness: number[];
  backend: string;
}

let engine: Engine | null = null;
let round = 0;

async function run(model: string, store: string, maxTokens: number, checkpointEvery: number | undefined): Promise<Run> {
  engine ??= await createEngine({ model, store });
  const s = await engine.openSession(`bench-${round++}`, { seed: 11, temperature: 0.8, checkpointEvery });
  const lateness: number[] = [];
  let due = performance.now() + 10;
  let beating = true;
  const beat = (): void => {
    const now = performance.now();
    lateness.push(now - due);
    due = now + 10;
    if (beating) setTimeout(beat, 10);
  };
  setTimeout(beat, 10);
  const tokens: number[] = [];
  let first = 0;
  let last = 0;
  for await (const t of s.generate('Call me Ishmael. ', { maxTokens })) {
    last = performance.now();
    if (tokens.length === 0) first = last;
    tokens.push(t.token);
  }
  beating = false;
  await s.close();
  return { tokens, tokensPerSecond: ((tokens.length - 1) * 1000) / (last - first), lateness, backend: engine.backend };
}

/**
 * The control: the same heartbeat while a bare worker busy-loops for `ms` (no engine, no messages): how late
 * the machine itself makes the beat when one core is taken by a worker.
 */
async function control(ms: number): Promise<number[]> {
  const code = 'onmessage = (e) => { const end = performance.now() + e.data; let x = 0; while (performance.now() < end) x += Math.sqrt(x + 1); postMessage(x); };';
  const src = URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
  const w = new Worker(src);
  const lateness: number[] = [];
  let due = performance.now() + 10;
  let on = true;
  const beat = (): void => {
    const now = performance.now();
    lateness.push(now - due);
    due = now + 10;
    if (on) setTimeout(beat, 10);
  };
  setTimeout(beat, 10);
  await new Promise((done) => {
    w.onmessage = done;
    w.postMessage(ms);
  });
  on = false;
  w.terminate();
  URL.revokeObjectURL(src);
  return lateness;
}

/** Open session `id` in this tab's engine and keep it open: 'open', or the refusal's name and code. */
async function hold(model: string, store: string, id: string): Promise<string> {
  engine ??= await createEngine({ model, store });
  try {
    await engine.openSession(id, { seed: 1 });
    return 'open';
  } catch (e) {
    return `${(e as Error).name} ${(e as { code?: string }).code ?? ''}`.trim();
  }
}

(globalThis as { __bench?: unknown }).__bench = { run, control, hold };
