// examples/document.ts: chunked processing of a long document with `attendChunks`, with a progress bar and
// throughput.
//
// It writes a large generated text file to os.tmpdir() (seeded pseudo-random words, so no download is
// needed), then reads it back as a stream, splits it into words, embeds each word with a SEEDED HASH
// EMBEDDING (a word's vector is drawn from a generator seeded by the word's hash: no trained model), packs
// the tokens into chunks of L and pipes them through `attendChunks(config)`. The file is read lazily
// (`from(asyncGenerator)` pulls the next chunk after the previous one was attended), so memory stays bounded
// by one chunk plus the decoder's fixed-size state, whatever the document length.
//
// Run: npx tsx examples/document.ts          (SMALL=1 for a tiny run, as in CI; WORDS=n to pick the size)
import { createReadStream, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ndarray from 'ndarray';
import { from, lastValueFrom, tap, reduce } from 'rxjs';
import type { AttentionConfig } from 'toeplitz-attention';
import { Rng } from 'toeplitz-attention';
import { attendChunks, type ChunkToken } from 'toeplitz-attention/rx';

const SMALL = process.env.SMALL === '1';
const WORDS = Number(process.env.WORDS ?? (SMALL ? 3000 : 150_000));
const L = SMALL ? 256 : 2048; // tokens per chunk

const HEADS = 4;
const DK = 16;
const DV = 16;
const config: AttentionConfig = {
  heads: HEADS,
  keyDim: DK,
  valueDim: DV,
  features: { kind: 'prf', count: 32, seed: 11 },
  // a 128-token near window with a slowly decaying tail: long-range context at bounded cost
  rpe: { past: { bias: Array.from({ length: 128 }, (_, t) => -0.02 * t), tail: { decay: 0.002 } } },
};

// ---- seeded helpers
/** Uniform numbers in [0, 1) from the library's seeded generator (xoshiro128**). */
function uniform(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.nextFloat64();
}
function fnv1a(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The generated document: WORDS words from a Zipf-like vocabulary, in sentences and lines. */
function writeDocument(path: string): void {
  const rand = uniform(42);
  const syllables = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'shi', 'vo', 'el', 'an', 'qu', 'is'];
  const vocab = Array.from({ length: 2000 }, (_, i) => {
    let w = '';
    let x = i + 1;
    do {
      w += syllables[x % syllables.length];
      x = Math.floor(x / syllables.length);
    } while (x > 0);
    return w;
  });
  const lines: string[] = [];
  let line: string[] = [];
  for (let i = 0; i < WORDS; i++) {
    const r = Math.floor(vocab.length * Math.pow(rand(), 3)); // frequent words first
    line.push(vocab[r]! + (rand() < 0.08 ? '.' : ''));
    if (line.length === 12) {
      lines.push(line.join(' '));
      line = [];
    }
  }
  lines.push(line.join(' '));
  writeFileSync(path, lines.join('\n') + '\n');
}

/** Seeded hash embedding: each distinct word gets fixed q, k, v rows [heads, dim] drawn from its hash. */
const cache = new Map<string, Float64Array>();
const ROW = HEADS * (DK + DK + DV);
function embedWord(word: string): Float64Array {
  let e = cache.get(word);
  if (e === undefined) {
    const rand = uniform(fnv1a(word));
    e = Float64Array.from({ length: ROW }, () => (rand() - 0.5) * 1.5);
    cache.set(word, e);
  }
  return e;
}

/** Pack words into a chunk { q, k: [heads, n, DK], v: [heads, n, DV] }. */
function chunkOf(words: string[]): ChunkToken {
  const n = words.length;
  const q = new Float64Array(HEADS * n * DK);
  const k = new Float64Array(HEADS * n * DK);
  const v = new Float64Array(HEADS * n * DV);
  words.forEach((w, i) => {
    const e = embedWord(w);
    for (let h = 0; h < HEADS; h++) {
      q.set(e.subarray(h * DK, (h + 1) * DK), (h * n + i) * DK);
      k.set(e.subarray(HEADS * DK + h * DK, HEADS * DK + (h + 1) * DK), (h * n + i) * DK);
      v.set(e.subarray(2 * HEADS * DK + h * DV, 2 * HEADS * DK + (h + 1) * DV), (h * n + i) * DV);
    }
  });
  return { q: ndarray(q, [HEADS, n, DK]), k: ndarray(k, [HEADS, n, DK]), v: ndarray(v, [HEADS, n, DV]) };
}

/** Read the file lazily and yield chunks of L words (and the bytes read so far, for the progress bar). */
async function* readChunks(path: string, progress: { bytes: number }): AsyncGenerator<ChunkToken> {
  let pending = '';
  let words: string[] = [];
  for await (const piece of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    const text = pending + (piece as string);
    progress.bytes += Buffer.byteLength(piece as string);
    const cut = text.search(/\s\S*$/); // keep a trailing partial word for the next piece
    const complete = cut < 0 ? '' : text.slice(0, cut);
    pending = cut < 0 ? text : text.slice(cut);
    for (const w of complete.split(/\s+/)) {
      if (w === '') continue;
      words.push(w);
      if (words.length === L) {
        yield chunkOf(words);
        words = [];
      }
    }
  }
  for (const w of pending.split(/\s+/)) if (w !== '') words.push(w);
  if (words.length > 0) yield chunkOf(words);
}

function bar(fraction: number, width = 30): string {
  const full = Math.round(fraction * width);
  return '[' + '#'.repeat(full) + '-'.repeat(width - full) + ']';
}

async function main(): Promise<void> {
  const path = join(tmpdir(), `toeplitz-document-${process.pid}.txt`);
  try {
    writeDocument(path);
    const size = statSync(path).size;
    console.log(`document: ${path} (${(size / 1e6).toFixed(2)} MB, ${WORDS} words); chunks of ${L} tokens, ${HEADS} heads`);
    const progress = { bytes: 0 };
    const started = performance.now();
    let lastDraw = 0;
    const tty = process.stderr.isTTY === true;
    const draw = (tokens: number, final = false): void => {
      const now = performance.now();
      if (!final && now - lastDraw < 100) return;
      lastDraw = now;
      const rate = tokens / ((now - started) / 1000);
      const line = `${bar(progress.bytes / size)} ${((100 * progress.bytes) / size).toFixed(0).padStart(3)}%  ${tokens} tokens  ${rate.toFixed(0)} tokens/s`;
      if (tty) process.stderr.write('\r' + line + (final ? '\n' : ''));
      else if (final) process.stderr.write(line + '\n');
    };
    // a document "summary": the mean attended vector of head 0 (just to use every output)
    const summary = await lastValueFrom(
      from(readChunks(path, progress)).pipe(
        attendChunks(config),
        tap((c) => draw(c.position + c.z.shape[1]!)),
        reduce(
          (acc, c) => {
            const n = c.z.shape[1]!;
            for (let i = 0; i < n; i++) for (let d = 0; d < DV; d++) acc.sum[d]! += c.z.get(0, i, d);
            acc.tokens += n;
            return acc;
          },
          { sum: new Float64Array(DV), tokens: 0 },
        ),
      ),
    );
    draw(summary.tokens, true);
    const seconds = (performance.now() - started) / 1000;
    const mean = Array.from(summary.sum, (x) => (x / summary.tokens).toFixed(3));
    console.log(`attended ${summary.tokens} tokens in ${seconds.toFixed(2)} s: ${(summary.tokens / seconds).toFixed(0)} tokens/s, ${(size / 1e6 / seconds).toFixed(2)} MB/s`);
    console.log(`mean output of head 0: [${mean.slice(0, 6).join(', ')}, …]`);
    if (summary.tokens !== WORDS) throw new Error(`expected ${WORDS} tokens, attended ${summary.tokens}`);
  } finally {
    rmSync(path, { force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
