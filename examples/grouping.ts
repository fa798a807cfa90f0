// examples/grouping.ts: a small benchmark showing that grouping single tokens into chunks raises tokens/s.
//
// The same seeded token stream goes through `attend(config)` (one decoder.step per token) and through
// `attend(config, { group: { count } })` for several counts (tokens buffered and run through decoder.chunk,
// still one output per token, in order), and finally pre-built chunks through `attendChunks`. Grouping trades
// latency (a token waits until its group is full, or group.timeMs passes) for throughput. All variants
// produce the same outputs up to rounding; the largest difference is printed.
//
// Run: npx tsx examples/grouping.ts          (SMALL=1 for a tiny run, as in CI)
import ndarray from 'ndarray';
import { from, lastValueFrom, toArray } from 'rxjs';
import type { AttentionConfig } from 'toeplitz-attention';
import { Rng } from 'toeplitz-attention';
import { attend, attendChunks, type Attended, type Token } from 'toeplitz-attention/rx';

const SMALL = process.env.SMALL === '1';
const N = SMALL ? 600 : 20_000;
const HEADS = 4;
const DK = 16;
const DV = 16;
const config: AttentionConfig = {
  heads: HEADS,
  keyDim: DK,
  valueDim: DV,
  features: { kind: 'prf', count: 32, seed: 5 },
  rpe: { past: { bias: Array.from({ length: 256 }, (_, t) => -0.01 * t), tail: { decay: 0.001 } } },
};

const rng = new Rng(99); // the library's seeded generator (xoshiro128**)
const row = (dim: number) => ndarray(Float64Array.from({ length: HEADS * dim }, () => rng.nextFloat64() - 0.5), [HEADS, dim]);
const tokens: Token[] = Array.from({ length: N }, () => ({ q: row(DK), k: row(DK), v: row(DV) }));

function chunked(L: number) {
  const out = [];
  for (let s = 0; s < N; s += L) {
    const n = Math.min(L, N - s);
    const pack = (field: 'q' | 'k' | 'v', dim: number) => {
      const data = new Float64Array(HEADS * n * dim);
      for (let i = 0; i < n; i++) for (let h = 0; h < HEADS; h++) data.set((tokens[s + i]![field].data as Float64Array).subarray(h * dim, (h + 1) * dim), (h * n + i) * dim);
      return ndarray(data, [HEADS, n, dim]);
    };
    out.push({ q: pack('q', DK), k: pack('k', DK), v: pack('v', DV) });
  }
  return out;
}

async function time<T>(label: string, run: () => Promise<T>): Promise<{ result: T; rate: number }> {
  await run(); // warm-up
  const t0 = performance.now();
  const result = await run();
  const rate = N / ((performance.now() - t0) / 1000);
  console.log(`${label.padEnd(34)} ${rate.toFixed(0).padStart(9)} tokens/s`);
  return { result, rate };
}

async function main(): Promise<void> {
  console.log(`${N} tokens, ${HEADS} heads, keyDim ${DK}, valueDim ${DV}, ${32} features, window 256\n`);
  const base = await time('attend (step per token)', () => lastValueFrom(from(tokens).pipe(attend(config), toArray())));
  let worst = 0;
  const diff = (outs: Attended[]) => outs.forEach((o, i) => o.z.data.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - base.result[i]!.z.data[j]!)))));
  let best = base.rate;
  for (const count of [8, 32, 128, 512]) {
    const r = await time(`attend, group { count: ${count} }`, () => lastValueFrom(from(tokens).pipe(attend(config, { group: { count } }), toArray())));
    diff(r.result);
    best = Math.max(best, r.rate);
  }
  const chunks = chunked(512);
  await time('attendChunks (pre-built, L = 512)', () => lastValueFrom(from(chunks).pipe(attendChunks(config), toArray())));
  console.log(`\nbest grouped / per-token: ${(best / base.rate).toFixed(1)}x; max |grouped - per-token| = ${worst.toExponential(2)}`);
  if (!(worst < 1e-9)) {
    console.error('grouped outputs differ from per-token outputs');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
