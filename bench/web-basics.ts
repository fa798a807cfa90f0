// Headless Chromium (Debian's /usr/bin/chromium through playwright-core; CHROMIUM=/path overrides), main thread:
// WASM start-up (does the ~27 KB module compile synchronously, does 'auto' pick WASM with no initWasm()), and the
// idle time per token of generate()'s yield, old (setTimeout(0), clamped to ~4 ms when chained) against new
// (MessageChannel), alternated in one run; Node's tokens/s on the same model in the same run for scale.
//
//   npx tsx bench/web-basics.ts [--tokens 1500] [--rounds 3]
//
// Exits 1 when a check fails: the module compiles synchronously, 'auto' picks wasm, a timer's abort stops
// generation with either yield, no U+FFFD with the UTF-8 mask, the MessageChannel yield idles < 1/4 of setTimeout's.
//
// The page is bench/web/page.ts, bundled from src/ by esbuild and served from memory (page.route).
import { build } from 'esbuild';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadModel } from '../src/model/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const tokens = opt('--tokens', 1500);
const rounds = opt('--rounds', 3);
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

interface YieldRun {
  yield: string;
  tokens: number;
  wallMs: number;
  idleMs: number;
  yields: number;
}

const out = await build({ entryPoints: [join(root, 'bench/web/page.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, target: 'es2022', logLevel: 'silent' });
const script = out.outputFiles[0]!.text;
const modelBytes = readFileSync(join(root, 'models/toeplitz-lm.safetensors'));

const profile = mkdtempSync(join(tmpdir(), 'tza-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  timeout: 60_000,
});
let r: Record<string, unknown>;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.route('http://tza.test/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>bench</title><script type="module" src="/page.js"></script>' });
    if (path === '/page.js') return route.fulfill({ contentType: 'text/javascript', body: script });
    if (path === '/model.safetensors') return route.fulfill({ contentType: 'application/octet-stream', body: modelBytes });
    return route.fulfill({ status: 404, body: 'not found' });
  });
  await page.goto(`http://tza.test/?tokens=${tokens}&rounds=${rounds}`);
  await page.waitForFunction(() => (globalThis as { __bench?: unknown }).__bench !== undefined, undefined, { timeout: 600_000, polling: 500 });
  r = (await page.evaluate(() => (globalThis as { __bench?: unknown }).__bench)) as Record<string, unknown>;
  if (errors.length > 0) throw new Error(`page errors: ${errors.join('; ')}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (r.failure) throw new Error(`the page failed: ${String(r.failure)}`);

// Node, same model and settings, for scale (setImmediate)
const model = loadModel(new Uint8Array(modelBytes));
const nodeRuns: number[] = [];
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  let n = 0;
  for await (const _ of model.session({ seed: 7, temperature: 0.8 }).generate('Call me Ishmael. ', { maxTokens: tokens })) n++;
  nodeRuns.push(n / ((performance.now() - t0) / 1000));
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${/Chrome\/[\d.]+/.exec(String(r.userAgent))?.[0] ?? r.userAgent}, main thread; Node ${process.version}`);
console.log(`WASM before any initWasm(): ${JSON.stringify(r.wasmStatus)} (first call, incl. the synchronous compile: ${(r.syncCompileMs as number).toFixed(2)} ms)`);
console.log(`synchronous compile of a 9 MB module on the main thread: ${String(r.sync9MB)}`);
console.log(`loadModel(bytes) with backend 'auto' picks: ${String(r.autoBackend)}`);
console.log(`\nyield        tokens  wall ms  tokens/s  yields  idle ms  idle/token ms  idle/yield ms  idle share`);
const runs = r.runs as YieldRun[];
for (const x of runs) {
  console.log(
    `${x.yield.padEnd(14)} ${String(x.tokens).padStart(5)} ${x.wallMs.toFixed(0).padStart(8)} ${(x.tokens / (x.wallMs / 1000)).toFixed(0).padStart(9)} ${String(x.yields).padStart(7)} ${x.idleMs.toFixed(1).padStart(8)} ${(x.idleMs / x.tokens).toFixed(4).padStart(14)} ${(x.idleMs / Math.max(1, x.yields)).toFixed(3).padStart(14)} ${((100 * x.idleMs) / x.wallMs).toFixed(1).padStart(10)}%`,
  );
}
const summary = (kind: string): { tps: number; idleTok: number; share: number } => {
  const xs = runs.filter((x) => x.yield === kind);
  return { tps: median(xs.map((x) => x.tokens / (x.wallMs / 1000))), idleTok: median(xs.map((x) => x.idleMs / x.tokens)), share: median(xs.map((x) => x.idleMs / x.wallMs)) };
};
const before = summary('setTimeout');
const after = summary('MessageChannel');
const node = median(nodeRuns);
console.log(`\nmedians: before (setTimeout) ${before.tps.toFixed(0)} tokens/s, idle ${before.idleTok.toFixed(4)} ms/token (${(100 * before.share).toFixed(1)}% of generation)`);
console.log(`         after (MessageChannel) ${after.tps.toFixed(0)} tokens/s, idle ${after.idleTok.toFixed(4)} ms/token (${(100 * after.share).toFixed(1)}% of generation)`);
console.log(`         after/before tokens/s ${(after.tps / before.tps).toFixed(3)}x; Node (setImmediate, same run) ${node.toFixed(0)} tokens/s: browser/Node before ${(before.tps / node).toFixed(2)}x, after ${(after.tps / node).toFixed(2)}x`);
for (const a of r.abort as { yield: string; stoppedAfterMs: number; tokens: number; error: string }[]) {
  console.log(`abort from setTimeout(200 ms), yield ${a.yield}: stopped after ${a.stoppedAfterMs.toFixed(0)} ms, ${a.tokens} tokens, error "${a.error}"`);
}
const fffd = r.fffd as { masked: number; unmasked: number; tokens: number };
console.log(`U+FFFD in ${fffd.tokens} bytes at temperature 1.6: ${fffd.masked} with validUtf8 (default), ${fffd.unmasked} without`);

// the checks this run stands for (exit 1 when one fails)
const failures: string[] = [];
if ((r.wasmStatus as { state: string }).state !== 'ready') failures.push(`the WASM module did not compile synchronously on the main thread: ${JSON.stringify(r.wasmStatus)}`);
if (r.autoBackend !== 'wasm') failures.push(`backend 'auto' picked ${String(r.autoBackend)}, not wasm`);
for (const a of r.abort as { yield: string; stoppedAfterMs: number; error: string }[]) {
  if (a.error !== 'timer abort' || a.stoppedAfterMs > 1000) failures.push(`an abort from a timer did not stop generation promptly with the ${a.yield} yield (${a.error}, ${a.stoppedAfterMs.toFixed(0)} ms)`);
}
if (fffd.masked !== 0) failures.push(`${fffd.masked} U+FFFD with validUtf8`);
if (!(after.idleTok < before.idleTok / 4)) failures.push(`the MessageChannel yield idles ${after.idleTok.toFixed(4)} ms/token, not well below setTimeout's ${before.idleTok.toFixed(4)}`);
if (failures.length > 0) {
  console.error(`FAILED:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
} else console.log('checks: ok (sync compile, auto = wasm, timer aborts, no U+FFFD, idle well below setTimeout)');
