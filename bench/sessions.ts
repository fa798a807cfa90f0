// Durable sessions, side by side in one run, on the shipped model (models/toeplitz-lm.safetensors):
// - generation tokens/s: durability off (a plain model session), on (file: store, default cadence), and
//   the naive approach (a plain session whose snapshot is written, atomically and durably, every 25
//   tokens, each write awaited); variants interleaved round by round (the machine is shared), medians;
// - bytes written per 1,000 tokens for each;
// - checkpoint cost: the part on the token path (snapshot + framing, between two tokens) and the store
//   write off it (file: store, fsync'd), p50/p99, and the checkpoint bytes;
// - resume time (open: checkpoint + journal replay, including re-deriving the tokens since the checkpoint)
//   vs recomputing from the start (the same journal with no checkpoint), at 10k and 100k tokens.
//
//   npx tsx bench/index.ts sessions      (SMALL=1: fewer tokens)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicAsync } from '../src/codec/index.js';
import { loadModelFile } from '../src/model/file.js';
import type { Model } from '../src/model/index.js';
import { openSession, openStore, DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_MS } from '../src/sessions/index.js';
import { counting } from './countingStore.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}
const median = (xs: number[]): number => quantile(xs, 0.5);


/**
 * Three generators kept open for the whole run, each asked for `block` tokens at a time, the variants
 * interleaved block by block (the machine is shared: drift hits neighbours alike). Returns each block's
 * tokens/s.
 */
interface Variant {
  name: string;
  block: (n: number) => Promise<{ tps: number; cpuMs: number }>;
  bytes: () => number;
  close: () => Promise<void>;
}

/** One block: tokens per wall-clock second, and CPU ms per token (this process, all its threads). */
async function timeBlock(it: AsyncIterable<unknown>): Promise<{ tps: number; cpuMs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let k = 0;
  for await (const _ of it) k++;
  const c = process.cpuUsage(c0);
  return { tps: k / ((performance.now() - t0) / 1000), cpuMs: (c.user + c.system) / 1000 / k };
}

function plainVariant(model: Model, prompt: string): Variant {
  const s = model.session({ seed: 1 });
  let first = true;
  return {
    name: 'off',
    block: (n) => timeBlock(s.generate(first ? ((first = false), prompt) : '', { maxTokens: n })),
    bytes: () => 0,
    close: async () => undefined,
  };
}

function naiveVariant(model: Model, dir: string, prompt: string): Variant {
  const s = model.session({ seed: 1 });
  const path = join(dir, 'naive.bin');
  let bytes = 0;
  let first = true;
  let k = 0;
  async function* gen(n: number): AsyncGenerator<number> {
    for await (const t of s.generate(first ? ((first = false), prompt) : '', { maxTokens: n })) {
      if (++k % 25 === 0) {
        const snap = s.snapshot();
        bytes += snap.length;
        await writeFileAtomicAsync(path, snap); // durable before going on
      }
      yield t.token;
    }
  }
  return { name: 'naive', block: (n) => timeBlock(gen(n)), bytes: () => bytes, close: async () => undefined };
}

async function durableVariant(model: Model, url: string, prompt: string, onPath: number[]): Promise<Variant & { store: ReturnType<typeof counting>; checkpointBytes: () => number }> {
  const store = counting(await openStore(url));
  const s = await openSession(model, store, 'g', { seed: 1 });
  let first = true;
  let last = s.lastCheckpoint;
  let ckBytes = 0;
  async function* gen(n: number): AsyncGenerator<number> {
    for await (const t of s.generate(first ? ((first = false), prompt) : '', { maxTokens: n })) {
      if (s.lastCheckpoint !== last) {
        last = s.lastCheckpoint;
        onPath.push(last!.snapshotMs);
        ckBytes = last!.bytes;
      }
      yield t.token;
    }
  }
  return {
    name: 'on',
    store,
    checkpointBytes: () => ckBytes,
    block: (n) => timeBlock(gen(n)),
    bytes: () => store.bytes,
    close: async () => {
      await s.close();
      await store.close();
    },
  };
}

/** A session of `fed` tokens (a prompt fed whole) then `generated` tokens, crashed; then opened again. */
async function resumeAt(model: Model, dir: string, fed: number, generated: number, log: (s: string) => void): Promise<Record<string, number>> {
  const text = new Uint8Array(fed);
  for (let i = 0; i < fed; i++) text[i] = 97 + ((i * 7 + (i >> 5)) % 26); // letters, not constant
  const out: Record<string, number> = { fed, generated };
  for (const [name, every, ms] of [
    ['checkpointed', DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_MS],
    ['journalOnly', 2 ** 30, 2 ** 31 - 1],
  ] as const) {
    const url = `file:${join(dir, `resume-${fed}-${name}`)}`;
    const store = await openStore(url);
    const s = await openSession(model, store, 'r', { seed: 1, checkpointEvery: every, checkpointMs: ms, leaseMs: 1000 });
    await s.feed(text, { lastOnly: true });
    let k = 0;
    for await (const _ of s.generate('', { maxTokens: generated })) k++;
    // let the last background checkpoint land, then crash (no final checkpoint)
    await new Promise((r) => setTimeout(r, 200));
    s.abandon();
    await new Promise((r) => setTimeout(r, 1100));
    const t0 = performance.now();
    const again = await openSession(model, store, 'r', { leaseMs: 1000 });
    const openSeconds = (performance.now() - t0) / 1000;
    // the interrupted generation: derived again up to where it stopped (a consumer resuming at the end)
    const t1 = performance.now();
    for await (const _ of again.resume({ from: fed + generated })) void _;
    const seconds = openSeconds + (performance.now() - t1) / 1000;
    if (again.position !== fed + generated) throw new Error(`resume ended at ${again.position}, expected ${fed + generated}`);
    out[`${name}Seconds`] = seconds;
    log(`  ${fed} fed + ${generated} generated, ${name}: open + resume to the end ${seconds.toFixed(3)} s`);
    again.abandon();
    await store.close();
  }
  out.speedup = out.journalOnlySeconds! / out.checkpointedSeconds!;
  log(`  -> resume from the checkpoint is ${out.speedup.toFixed(1)}x faster than recomputing from the start`);
  return out;
}

export async function runSessionsBench(log: (s: string) => void, small = false): Promise<unknown> {
  const model = loadModelFile(join(root, 'models', 'toeplitz-lm.safetensors'));
  const dir = mkdtempSync(join(tmpdir(), 'tzs-bench-'));
  try {
    const block = small ? 300 : 512;
    const rounds = small ? 3 : 24;
    const prompt = 'It was a dark and stormy night; the ship';
    log(`generation: ${rounds} rounds of ${block}-token blocks, variants interleaved block by block (off / durable file: / naive snapshot every 25); checkpoints every ${DEFAULT_CHECKPOINT_EVERY} tokens or ${DEFAULT_CHECKPOINT_MS} ms`);
    for await (const _ of model.session({ seed: 2 }).generate(prompt, { maxTokens: 200 })) void _; // warm-up
    const onPath: number[] = [];
    const on = await durableVariant(model, `file:${join(dir, 'on')}`, prompt, onPath);
    const variants = [plainVariant(model, prompt), on, naiveVariant(model, dir, prompt)];
    const tps: Record<string, number[]> = { off: [], on: [], naive: [] };
    const cpu: Record<string, number[]> = { off: [], on: [], naive: [] };
    for (let r = 0; r < rounds; r++) {
      for (const v of variants) {
        const b = await v.block(block);
        tps[v.name]!.push(b.tps);
        cpu[v.name]!.push(b.cpuMs);
      }
      log(`  round ${r + 1}: off ${tps.off![r]!.toFixed(0)}, durable ${tps.on![r]!.toFixed(0)}, naive ${tps.naive![r]!.toFixed(0)} tokens/s; CPU ms/token ${cpu.off![r]!.toFixed(3)}, ${cpu.on![r]!.toFixed(3)}, ${cpu.naive![r]!.toFixed(3)}`);
    }
    // CPU time per token over all blocks: what durability costs this process, whatever else the machine runs
    const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const cpuPerToken = { off: sum(cpu.off!) / rounds, on: sum(cpu.on!) / rounds, naive: sum(cpu.naive!) / rounds };
    const writeMs = on.store.writeMs;
    const bytes = { on: on.bytes(), naive: variants[2]!.bytes() };
    for (const v of variants) await v.close();
    const total = rounds * block;
    const med = { off: median(tps.off!), on: median(tps.on!), naive: median(tps.naive!) };
    // each round's variants ran back to back: the median of per-round ratios
    const onRatio = median(tps.on!.map((x, i) => x / tps.off![i]!));
    const naiveRatio = median(tps.naive!.map((x, i) => x / tps.off![i]!));
    const per1k = { on: (bytes.on * 1000) / total, naive: (bytes.naive * 1000) / total };
    const checkpoint = {
      bytes: on.checkpointBytes(),
      onPathMs: { p50: quantile(onPath, 0.5), p99: quantile(onPath, 0.99), count: onPath.length },
      writeMs: { p50: quantile(writeMs, 0.5), p99: quantile(writeMs, 0.99), count: writeMs.length },
    };
    log(`CPU per token (all threads, mean of ${rounds} blocks): off ${cpuPerToken.off.toFixed(3)} ms, durable ${cpuPerToken.on.toFixed(3)} ms (+${((cpuPerToken.on / cpuPerToken.off - 1) * 100).toFixed(1)}%), naive ${cpuPerToken.naive.toFixed(3)} ms (+${((cpuPerToken.naive / cpuPerToken.off - 1) * 100).toFixed(1)}%)`);
    log(`tokens/s (median of ${rounds} blocks): off ${med.off.toFixed(0)}, durable ${med.on.toFixed(0)} (x${onRatio.toFixed(3)} of off, median per-round ratio), naive every 25 ${med.naive.toFixed(0)} (x${naiveRatio.toFixed(3)})`);
    log(`bytes written per 1,000 tokens: durable ${(per1k.on / 1e6).toFixed(2)} MB, naive ${(per1k.naive / 1e6).toFixed(2)} MB (${(per1k.naive / per1k.on).toFixed(1)}x more)`);
    log(`checkpoint: ${checkpoint.bytes} bytes; on the token path p50 ${checkpoint.onPathMs.p50.toFixed(2)} ms, p99 ${checkpoint.onPathMs.p99.toFixed(2)} ms (${checkpoint.onPathMs.count} checkpoints); store write (file:, fsync'd, off the path) p50 ${checkpoint.writeMs.p50.toFixed(1)} ms, p99 ${checkpoint.writeMs.p99.toFixed(1)} ms`);
    log('resume (open: checkpoint + journal replay, then the interrupted generation derived to where it stopped) vs recompute from the start (the same journal, no checkpoint)');
    const resume = [];
    for (const fed of small ? [10_000] : [10_000, 100_000]) resume.push(await resumeAt(model, dir, fed, 700, log));
    return { block, rounds, tokensPerSecond: med, cpuMsPerToken: cpuPerToken, blocks: tps, onRatio, naiveRatio, bytesPer1000Tokens: per1k, checkpoint, resume };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runSessionsBench(console.log, process.env.SMALL === '1'), null, 2));
}
