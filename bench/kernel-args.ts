// The WASM backend's kernel calls, this tree against a base commit, side by side in ONE process: what the calls
// themselves cost where they are made most often (issue 21 item 1: one argument description per kernel driving
// both the in-place path and the copy path).
//
//   npx tsx bench/kernel-args.ts [--base <rev>] [--rounds R] [--only step|generation|attention] [--n N (attention, 4096)]
//
// --base defaults to HEAD (the working tree against the last commit). Run on one commit against itself it gives
// 0.986-1.019x on generation: read differences of a few percent as noise.
//
// Three workloads, each timed in alternating rounds (base, new; then new, base), CPU time of this thread
// (process.cpuUsage: no worker threads run here), medians of per-round ratios base / new (> 1: the new tree is faster):
//   - Decoder.step, WASM, 8 heads, d = m = dv = 64, K = 512 (window full, 2,000 tokens in), float64 and float32:
//     five kernel calls a head per token, every array a view of the decoder's memory (the in-place path);
//   - model generation, WASM, the shipped model, float64 and float32 sessions: 17 product calls a token whose
//     activations are outside the memory (the copy path, element by element) plus the decoders' calls;
//   - attention(), WASM, one head, n = 4096 (--n), float64: the chunked pass's kernels (FFT, S-form, A-form).
// Outputs of the two trees must be the same bits (same tokens, same decoder outputs): the bench fails otherwise.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ndarray, { type NdArray } from 'ndarray';
import { extractBase } from './generation.js';

type Dtype = 'float64' | 'float32';
interface DecoderLike {
  chunk(q: NdArray<Float64Array>, k: NdArray<Float64Array>, v: NdArray<Float64Array>): unknown;
  step(q: NdArray<Float64Array>, k: NdArray<Float64Array>, v: NdArray<Float64Array>, out: NdArray<Float64Array>): unknown;
}
interface Lib {
  Decoder: new (config: unknown, options: { method: string; backend: string; dtype?: Dtype }) => DecoderLike;
  attention(config: unknown, q: NdArray<Float64Array>, k: NdArray<Float64Array>, v: NdArray<Float64Array>, options: { backend: string }): NdArray<Float64Array>;
}
interface Model {
  session(options?: { seed?: number; temperature?: number; dtype?: Dtype }): {
    feed(tokens: ArrayLike<number>, options?: { lastOnly?: boolean }): Float64Array;
    generate(prompt: string, options: { maxTokens: number }): AsyncIterable<{ token: number }>;
  };
}
type LoadModel = (bytes: Uint8Array, options?: { backend?: 'js' | 'wasm' }) => Model;

const root = join(import.meta.dirname, '..');

/** CPU seconds of this process (microsecond resolution; the clock ticks of /proc/thread-self/stat are too coarse). */
function threadCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Deterministic Gaussian-ish values (the same for both trees). */
function tensor(seed: number, shape: number[]): NdArray<Float64Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = Math.sqrt(-2 * Math.log(u + 1e-12)) * Math.cos(2 * Math.PI * (s / 2 ** 32));
  }
  return ndarray(data, shape);
}

function config(K: number, heads: number, d: number): unknown {
  const bias = Array.from({ length: K }, (_, t) => -Math.log1p(t) * 0.5);
  return { heads, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias, tail: 'clip' } } };
}

interface Row {
  what: string;
  unit: string;
  base: number;
  now: number;
  ratio: number;
  ratios: number[];
}

/** Alternating rounds of `run(variant)` (returns CPU seconds per unit); median per variant and of the ratios. */
async function sideBySide(what: string, unit: string, rounds: number, run: (v: 'base' | 'new') => Promise<number> | number): Promise<Row> {
  await run('base');
  await run('new'); // warm-up
  const t: Record<string, number[]> = { base: [], new: [] };
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const got: Record<string, number> = {};
    for (const v of r % 2 === 0 ? (['base', 'new'] as const) : (['new', 'base'] as const)) {
      got[v] = await run(v);
      t[v]!.push(got[v]!);
    }
    ratios.push(got.base! / got.new!);
  }
  return { what, unit, base: median(t.base!), now: median(t.new!), ratio: median(ratios), ratios };
}

export async function runKernelArgs(log: (s: string) => void, opts: { base?: string; rounds?: number; only?: string; n?: number } = {}): Promise<Row[]> {
  const want = (what: string): boolean => opts.only === undefined || what.startsWith(opts.only);
  const rounds = opts.rounds ?? 9;
  const { sha, dir } = extractBase(opts.base ?? 'HEAD');
  const libs: Record<'base' | 'new', Lib> = {
    base: (await import(pathToFileURL(join(dir, 'src', 'index.ts')).href)) as Lib,
    new: (await import('../src/index.js')) as unknown as Lib,
  };
  const models: Record<'base' | 'new', LoadModel> = {
    base: ((await import(pathToFileURL(join(dir, 'src', 'model', 'index.ts')).href)) as { loadModel: LoadModel }).loadModel,
    new: ((await import('../src/model/index.js')) as unknown as { loadModel: LoadModel }).loadModel,
  };
  log(`base ${sha.slice(0, 12)} vs this tree; ${rounds} alternating rounds each; CPU time of the process`);
  const rows: Row[] = [];

  // Decoder.step
  const H = 8;
  const d = 64;
  const steps = 2000;
  for (const dtype of want('step') ? (['float64', 'float32'] as const) : []) {
    const decs = {} as Record<'base' | 'new', DecoderLike>;
    for (const v of ['base', 'new'] as const) {
      decs[v] = new libs[v].Decoder(config(512, H, d), { method: 'direct', backend: 'wasm', dtype });
      decs[v].chunk(tensor(1, [H, 2000, d]), tensor(2, [H, 2000, d]), tensor(3, [H, 2000, d]));
    }
    const toks = Array.from({ length: 16 }, (_, i) => [tensor(10 + 3 * i, [H, d]), tensor(11 + 3 * i, [H, d]), tensor(12 + 3 * i, [H, d])] as const);
    const outs = { base: ndarray(new Float64Array(H * d), [H, d]), new: ndarray(new Float64Array(H * d), [H, d]) };
    const row = await sideBySide(`Decoder.step ${dtype} (WASM, 8 heads, K 512)`, 'us/token', rounds, (v) => {
      const dec = decs[v];
      const out = outs[v];
      const c0 = threadCpu();
      for (let i = 0; i < steps; i++) {
        const [q, k, vv] = toks[i % toks.length]!;
        dec.step(q, k, vv, out);
      }
      return ((threadCpu() - c0) / steps) * 1e6;
    });
    // both decoders have taken the same steps: the same state, so the same output bits
    if (outs.base.data.some((x, i) => x !== outs.new.data[i])) throw new Error(`Decoder.step ${dtype}: the two trees disagree`);
    rows.push(row);
  }

  // model generation
  const bytes = readFileSync(join(root, 'models', 'toeplitz-lm.safetensors'));
  const text = readFileSync(join(root, 'README.md'), 'utf8').replace(/[^\x20-\x7e\n]/g, ' ');
  const prompt = new TextEncoder().encode(text).subarray(0, 1000);
  const tokens = 1500;
  for (const dtype of want('generation') ? (['float64', 'float32'] as const) : []) {
    const m = { base: models.base(bytes, { backend: 'wasm' }), new: models.new(bytes, { backend: 'wasm' }) };
    const seqs: Record<string, number[]> = { base: [], new: [] };
    const row = await sideBySide(`generation ${dtype} (WASM, shipped model)`, 'us/token', rounds, async (v) => {
      const s = m[v].session({ seed: 7, temperature: 0.8, dtype });
      s.feed(prompt, { lastOnly: true });
      const seq: number[] = [];
      const c0 = threadCpu();
      for await (const g of s.generate('', { maxTokens: tokens })) seq.push(g.token);
      const cpu = threadCpu() - c0;
      seqs[v] = seq;
      return (cpu / tokens) * 1e6;
    });
    if (seqs.base!.some((x, i) => x !== seqs.new![i])) throw new Error(`generation ${dtype}: the two trees generated different tokens`);
    rows.push(row);
  }

  // attention()
  const n = opts.n ?? 4096;
  const q = tensor(50, [1, n, d]);
  const k = tensor(51, [1, n, d]);
  const vv = tensor(52, [1, n, d]);
  const cfg = config(n, 1, d);
  const res: Record<string, NdArray<Float64Array>> = {};
  if (want('attention')) rows.push(
    await sideBySide(`attention() float64 (WASM, 1 head, n ${n})`, 'ms/call', rounds, (v) => {
      const c0 = threadCpu();
      res[v] = libs[v].attention(cfg, q, k, vv, { backend: 'wasm' });
      return (threadCpu() - c0) * 1e3;
    }),
  );
  if (want('attention')) {
    // the same bits, or (a base from before the split-head summation order, issue 21 item 4) a rounding difference
    let diff = 0;
    let scale = 0;
    res.base!.data.forEach((x, i) => {
      diff = Math.max(diff, Math.abs(x - res.new!.data[i]!));
      scale = Math.max(scale, Math.abs(x));
    });
    if (!(diff <= 1e-12 * scale)) throw new Error(`attention(): the two trees disagree (max difference ${diff} of ${scale})`);
    log(`attention(): outputs ${diff === 0 ? 'bit-identical' : `differ by at most ${(diff / scale).toExponential(1)} of the largest |z| (summation order)`}`);
  }

  for (const r of rows) {
    log(`${r.what}: base ${r.base.toFixed(1)} ${r.unit}, new ${r.now.toFixed(1)} ${r.unit}; base/new ${r.ratio.toFixed(3)} (rounds ${r.ratios.map((x) => x.toFixed(2)).join(', ')})`);
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  await runKernelArgs(console.log, { base: opt('--base'), rounds: opt('--rounds') === undefined ? undefined : Number(opt('--rounds')), only: opt('--only'), n: opt('--n') === undefined ? undefined : Number(opt('--n')) });
}
