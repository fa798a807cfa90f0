// examples/resume.ts: a resumable streaming session across processes.
//
// 1. This process streams the first part of a (seeded, synthetic) token sequence through `attend` with
//    `checkpoint: { every, sink: <file> }`: every `every` tokens the decoder state is written to the file
//    atomically (temp file + fsync + rename, the codec's writeFileAtomic), then the session stops (as if killed).
// 2. It spawns ITSELF as a new process with `--resume <file>`: that process loads the latest checkpoint,
//    (loadSnapshot), `attend(decoder)` continues at the checkpoint's position, and it writes its outputs to a file.
// 3. Back here, the continuation is compared with an uninterrupted run: it must be bit-identical.
//
// Run: npx tsx examples/resume.ts          (SMALL=1 for a tiny run, as in CI)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ndarray from 'ndarray';
import { from, lastValueFrom, take, toArray } from 'rxjs';
import type { AttentionConfig } from 'toeplitz-attention';
import { loadSnapshot } from 'toeplitz-attention/codec';
import { attend, type Attended, type Token } from 'toeplitz-attention/rx';

const SMALL = process.env.SMALL === '1';
const TOTAL = SMALL ? 40 : 4000; // tokens in the whole session
const STOP = SMALL ? 27 : 2650; // the first process handles this many, then exits
const EVERY = SMALL ? 10 : 500; // checkpoint interval (the latest checkpoint is at floor(STOP / EVERY) * EVERY)

const HEADS = 2;
const DK = 8;
const DV = 8;
const config: AttentionConfig = {
  heads: HEADS,
  keyDim: DK,
  valueDim: DV,
  features: { kind: 'prf', count: 32, seed: 3 },
  rpe: { past: { bias: Array.from({ length: 32 }, (_, t) => -0.1 * t), tail: { decay: 0.02 } } },
};

/** Token i of a deterministic synthetic sequence (the same in every process). */
function token(i: number): Token {
  const wave = (dim: number, phase: number) => ndarray(Float64Array.from({ length: HEADS * dim }, (_, j) => Math.sin(0.37 * i * (j + 1) + phase) * 0.8), [HEADS, dim]);
  return { q: wave(DK, 0.1), k: wave(DK, 1.3), v: wave(DV, 2.9) };
}
const tokens = (from_: number, to: number): Token[] => Array.from({ length: to - from_ }, (_, j) => token(from_ + j));
const plain = (outs: Attended[]) => outs.map((o) => ({ position: o.position, z: Array.from(o.z.data) }));

async function firstProcess(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'toeplitz-resume-'));
  const checkpoint = join(dir, 'session.snap');
  const outFile = join(dir, 'continuation.json');
  try {
    // 1. run until STOP, checkpointing to the file every EVERY tokens
    const first = await lastValueFrom(from(tokens(0, TOTAL)).pipe(take(STOP), attend(config, { checkpoint: { every: EVERY, sink: checkpoint } }), toArray()));
    console.log(`[process ${process.pid}] attended tokens 0..${first.length - 1}, checkpoints every ${EVERY} tokens to ${checkpoint}; exiting the session`);

    // 2. resume in a fresh process
    const self = fileURLToPath(import.meta.url);
    const child = spawnSync(process.execPath, [...process.execArgv, self, '--resume', checkpoint, outFile], { stdio: 'inherit', env: process.env });
    if (child.status !== 0) throw new Error(`the resuming process failed with status ${child.status} ${child.error ?? ''}`);

    // 3. compare with an uninterrupted run
    const resumed = JSON.parse(readFileSync(outFile, 'utf8')) as { position: number; z: number[] }[];
    const clean = plain(await lastValueFrom(from(tokens(0, TOTAL)).pipe(attend(config), toArray())));
    const start = resumed[0]?.position ?? -1;
    const expected = clean.slice(start);
    const identical = start >= 0 && resumed.length === expected.length && resumed.every((r, i) => r.position === expected[i]!.position && r.z.every((x, j) => Object.is(x, expected[i]!.z[j])));
    // the first process's outputs after the checkpoint (which the resumed process recomputed) agree too
    const overlap = plain(first).slice(start);
    const overlapOk = overlap.every((r, i) => r.z.every((x, j) => Object.is(x, resumed[i]!.z[j])));
    console.log(`[process ${process.pid}] resumed at position ${start}; continuation of ${resumed.length} tokens is ${identical ? 'bit-identical' : 'DIFFERENT'} to an uninterrupted run` + `; recomputed overlap ${start}..${STOP - 1} ${overlapOk ? 'matches' : 'DIFFERS'}`);
    if (!identical || !overlapOk) process.exit(1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function resumedProcess(checkpoint: string, outFile: string): Promise<void> {
  // the latest checkpoint: a Decoder at its position (loadSnapshot validates the file); replay from there on.
  // (With bytes in hand, attend({ restore: bytes }) does the same, with a fresh decoder per subscription.)
  const decoder = loadSnapshot(checkpoint);
  const start = decoder.position;
  const outs = await lastValueFrom(from(tokens(start, TOTAL)).pipe(attend(decoder), toArray()));
  writeFileSync(outFile, JSON.stringify(plain(outs)));
  console.log(`[process ${process.pid}] loaded the checkpoint at position ${start}, attended tokens ${start}..${TOTAL - 1}`);
}

const args = process.argv.slice(2);
const run = args[0] === '--resume' && args[1] !== undefined && args[2] !== undefined ? resumedProcess(args[1], args[2]) : firstProcess();
run.catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
