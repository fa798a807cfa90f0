// Durable sessions in Chromium on IndexedDB, side by side in one run (Debian's /usr/bin/chromium through
// playwright-core, main thread, the shipped model on WASM; the page is bench/web/sessions-browser-page.ts):
// - generation tokens/s with durability off (a plain session), on (IndexedDB, default cadence) and the naive
//   approach (snapshot to IndexedDB every 25 tokens, awaited), interleaved block by block on long-lived
//   sessions, the order alternating per round; the ratio is the median of per-round ratios (bar: on >= 0.95x off);
// - bytes written per 1,000 tokens;
// - checkpoint latency p50/p99: on the token path (snapshot + framing), the IndexedDB write off it, and an
//   awaited checkpoint() end to end; the checkpoint's bytes and what IndexedDB holds.
//
//   npx tsx bench/sessions-browser.ts [--rounds 10] [--block 512]
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrowser } from '../test/browser/harness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const rounds = opt('--rounds', 10);
const block = opt('--block', 512);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const median = (xs: number[]): number => quantile(xs, 0.5);
const ms = (xs: number[]): string => `p50 ${quantile(xs, 0.5).toFixed(1)} ms, p99 ${quantile(xs, 0.99).toFixed(1)} ms (n = ${xs.length})`;

const b = await startBrowser(join(root, 'bench/web/sessions-browser-page.ts'), join(root, 'models/toeplitz-lm.safetensors'));
let r: Record<string, unknown>;
try {
  const page = await b.context.newPage();
  await page.goto(`${b.origin}/?rounds=${rounds}&block=${block}`);
  r = await b.next((m) => m.kind === 'bench' || m.kind === 'error', 900_000);
} finally {
  await b.close();
}
if (r.kind === 'error') throw new Error(`the page failed: ${String(r.message)}`);
const tps = r.tps as Record<'off' | 'on' | 'naive', number[]>;
const perK = r.perK as { on: number; naive: number };
const onRatio = median(tps.on.map((x, i) => x / tps.off[i]!));
// ratio of totals (time-weighted over all rounds), and the checkpoints' share of the durable blocks' time
const totalMs = (xs: number[]): number => xs.reduce((a, x) => a + (block / x) * 1000, 0);
const totalRatio = totalMs(tps.off) / totalMs(tps.on);
const onPathShare = (r.onPathMeasured as number[]).reduce((a, x) => a + x, 0) / totalMs(tps.on);
const naiveRatio = median(tps.naive.map((x, i) => x / tps.off[i]!));
const cadence = r.cadence as { every: number; ms: number };
const list = r.list as { id: string; bytes: number }[];
console.log(`${/HeadlessChrome\/[\d.]+/.exec(String(r.userAgent))?.[0] ?? r.userAgent}, main thread, WASM; ${rounds} rounds of ${block}-token blocks, variants interleaved (order alternating); default cadence: every ${cadence.every} tokens or ${cadence.ms} ms`);
console.log(`\ngeneration                         tokens/s (median)   vs off (median per-round ratio)   bytes written per 1,000 tokens`);
console.log(`durability off (plain session)     ${median(tps.off).toFixed(0).padStart(8)}            1                                 0`);
console.log(`durable, IndexedDB, default        ${median(tps.on).toFixed(0).padStart(8)}            x${onRatio.toFixed(3)}                            ${(perK.on / 1e6).toFixed(2)} MB`);
console.log(`naive: snapshot every 25, awaited  ${median(tps.naive).toFixed(0).padStart(8)}            x${naiveRatio.toFixed(3)}                            ${(perK.naive / 1e6).toFixed(2)} MB`);
console.log(`durable vs off over all rounds (ratio of total times): x${totalRatio.toFixed(3)}; checkpoints on the token path took ${(100 * onPathShare).toFixed(2)}% of the durable blocks' time (${(r.onPathMeasured as number[]).length} checkpoints)`);
console.log(`per-round off: ${tps.off.map((x) => x.toFixed(0)).join(' ')}\nper-round on:  ${tps.on.map((x) => x.toFixed(0)).join(' ')}`);
console.log(`\ncheckpoint: ${String(r.checkpointBytes)} bytes`);
console.log(`  on the token path (snapshot + framing): ${ms(r.onPath as number[])}`);
console.log(`  IndexedDB write, off the path (durability 'strict'): ${ms(r.writeMs as number[])}`);
console.log(`  awaited checkpoint() end to end: ${ms(r.awaited as number[])}`);
console.log(`  naive's awaited IndexedDB writes: ${ms(r.naiveWriteMs as number[])}`);
console.log(`IndexedDB holds: ${list.map((s) => `${s.id} ${s.bytes} bytes`).join(', ')}; navigator.storage.estimate() usage ${String(r.usage)} bytes`);
const pass = onRatio >= 0.95;
console.log(`\nbar (durable >= 0.95x off): ${pass ? 'PASS' : 'FAIL'} (x${onRatio.toFixed(3)})`);
if (!pass) process.exitCode = 1;
