// Model generation speed, this tree against a base commit, side by side in ONE process (issue 21 item 5).
//
//   npx tsx bench/generation.ts [--base <rev>] [--tokens N] [--rounds R] [--backend wasm|js|both] [--model path]
//   npm run bench -- generation            (the same, defaults)
//
// The base commit's src/ is extracted with `git archive` into tmp/ (git-ignored) and imported next to this tree's
// src/, so both implementations load the same model file and run in the same process, alternately: every round
// times one generation of N tokens per variant (fresh session, same prompt prefilled untimed, same seed), in
// alternating order. Time is the CPU time of this (the working) thread, from /proc/thread-self/stat (utime +
// stime, clock ticks), so other processes on the shared machine do not count; wall time is printed beside it.
// Reported: medians over rounds, and the median of the per-round ratios. The generated tokens of both variants
// must be the same (the new kernels are bit-identical to the old GEMM): the bench fails loudly otherwise.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Session {
  feed(tokens: ArrayLike<number>, options?: { lastOnly?: boolean }): Float64Array;
  generate(prompt: string | ArrayLike<number>, options: { maxTokens: number }): AsyncIterable<{ token: number }>;
}
interface Model {
  readonly config: { dim: number; layers: number; heads: number; keyDim: number; valueDim: number; hidden: number; vocab: number; features: { count: number }; rpe: { length: number } };
  readonly backend: string;
  session(options?: { seed?: number; temperature?: number; validUtf8?: boolean }): Session;
}
type LoadModel = (bytes: Uint8Array, options?: { backend?: 'js' | 'wasm' }) => Model;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface GenerationRow {
  backend: string;
  tokens: number;
  rounds: number;
  base: string;
  /** median CPU seconds per token of the working thread */
  baseCpuPerToken: number;
  newCpuPerToken: number;
  /** median over rounds of base CPU time / new CPU time */
  speedup: number;
  baseWallPerToken: number;
  newWallPerToken: number;
  /** floating-point operations per generated token in the linear layers and the logits */
  linearFlopsPerToken: number;
  /** prefill (session.feed of 4,096 bytes in chunks of 256, logits of the last only): median CPU seconds per token */
  basePrefillPerToken: number;
  newPrefillPerToken: number;
}

/** CPU seconds of the calling thread (Linux: /proc/thread-self/stat utime + stime); NaN elsewhere. */
function threadCpu(): number {
  try {
    const s = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields after the command: state is field 3, so utime (14) and stime (15) are at 11 and 12 here
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}
let TICKS = 100;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** The base commit's src/ extracted under tmp/ (git-ignored), ready to import: its full sha and the folder. */
export function extractBase(rev: string): { sha: string; dir: string } {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(root, 'tmp', `bench-generation-base-${sha.slice(0, 12)}`);
  if (!existsSync(join(dir, 'src', 'model', 'index.ts'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tar = execFileSync('git', ['archive', '--format=tar', sha, 'src'], { cwd: root, maxBuffer: 1 << 28 });
    execFileSync('tar', ['-x', '-C', dir], { input: tar });
  }
  return { sha, dir };
}

/** The base commit's model entry's loadModel. */
async function loadBase(rev: string): Promise<{ loadModel: LoadModel; sha: string; dir: string }> {
  const { sha, dir } = extractBase(rev);
  const mod = (await import(pathToFileURL(join(dir, 'src', 'model', 'index.ts')).href)) as { loadModel: LoadModel };
  return { loadModel: mod.loadModel, sha, dir };
}

/** Linear-layer FLOPs of one token (2 per multiply-add): q, k, v, o, w1, w3, w2 per layer, and the logits. */
export function linearFlops(c: Model['config']): number {
  const qk = c.heads * c.keyDim;
  const vd = c.heads * c.valueDim;
  const perLayer = c.dim * (2 * qk + vd) + vd * c.dim + 3 * c.dim * c.hidden;
  return 2 * (c.layers * perLayer + c.vocab * c.dim);
}

async function generateOnce(model: Model, prompt: Uint8Array, tokens: number, out: number[], extra: { validUtf8?: boolean } = {}): Promise<{ cpu: number; wall: number }> {
  const s = model.session({ seed: 7, temperature: 0.8, ...extra });
  s.feed(prompt, { lastOnly: true });
  out.length = 0;
  const c0 = threadCpu();
  const w0 = performance.now();
  for await (const g of s.generate('', { maxTokens: tokens })) out.push(g.token);
  const wall = (performance.now() - w0) / 1000;
  return { cpu: threadCpu() - c0, wall };
}

export async function runGeneration(log: (s: string) => void, opts: { base?: string; tokens?: number; rounds?: number; backends?: Array<'wasm' | 'js'>; model?: string } = {}): Promise<GenerationRow[]> {
  try {
    TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    TICKS = 100;
  }
  const baseRev = opts.base ?? BASE;
  const { loadModel: loadNew } = (await import('../src/model/index.js')) as unknown as { loadModel: LoadModel };
  const base = await loadBase(baseRev);
  // the shipped model, or (when the base cannot read it: toeplitz-lm/2 came after 197a43a) the model the base commit
  // shipped, the same architecture (dim 128, 4 layers, hidden 344, K 128, F32 tensors) with the clip tail
  let bytes: Uint8Array = readFileSync(opts.model ?? join(root, 'models', 'toeplitz-lm.safetensors'));
  let modelName = opts.model ?? 'models/toeplitz-lm.safetensors';
  if (opts.model === undefined) {
    try {
      base.loadModel(bytes, { backend: 'js' });
    } catch (e) {
      bytes = execFileSync('git', ['show', `${base.sha}:models/toeplitz-lm.safetensors`], { cwd: root, maxBuffer: 1 << 28 });
      modelName = `models/toeplitz-lm.safetensors at ${base.sha.slice(0, 12)} (the base cannot read today's: ${(e as Error).message.slice(0, 80)})`;
    }
  }
  log(`model: ${modelName}`);
  // a prompt of ordinary English, 1,000 bytes (the model is byte-level): generation then runs at positions ~1k
  const text = readFileSync(join(root, 'README.md'), 'utf8').replace(/[^\x20-\x7e\n]/g, ' ');
  const prompt = new TextEncoder().encode(text).subarray(0, 1000);
  const rows: GenerationRow[] = [];
  for (const backend of opts.backends ?? ['wasm', 'js']) {
    const tokens = opts.tokens ?? (backend === 'wasm' ? 1500 : 400);
    const rounds = opts.rounds ?? 7;
    // the base has no UTF-8 mask in its sampler (issue 20 added it, default on): the new tree samples without it
    // here, so both draw from the same distribution and must generate the same tokens (same work per token)
    const variants = [
      { name: 'base', model: base.loadModel(bytes, { backend }), extra: {} },
      { name: 'new', model: loadNew(bytes, { backend }), extra: { validUtf8: false } },
    ];
    const flops = linearFlops(variants[1]!.model.config);
    const cpu: Record<string, number[]> = { base: [], new: [] };
    const wall: Record<string, number[]> = { base: [], new: [] };
    const ratios: number[] = [];
    const seq: Record<string, number[]> = { base: [], new: [] };
    // warm-up (compilation, first-touch of memory), untimed
    for (const v of variants) await generateOnce(v.model, prompt, Math.min(200, tokens), seq[v.name]!, v.extra);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? variants : variants.slice().reverse();
      const got: Record<string, number> = {};
      for (const v of order) {
        const t = await generateOnce(v.model, prompt, tokens, seq[v.name]!, v.extra);
        cpu[v.name]!.push(t.cpu / tokens);
        wall[v.name]!.push(t.wall / tokens);
        got[v.name] = t.cpu;
      }
      ratios.push(got.base! / got.new!);
      const a = seq.base!;
      const b = seq.new!;
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) throw new Error(`${backend}: the base and the new implementation generated different tokens (first difference at ${a.findIndex((x, i) => x !== b[i])})`);
    }
    // prefill, the chunked path (gemmPacked on 256-row blocks instead of gemm packing b per call), interleaved too
    const long = new TextEncoder().encode(text.repeat(Math.ceil(4096 / text.length) + 1)).subarray(0, 4096);
    const prefill: Record<string, number[]> = { base: [], new: [] };
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? variants : variants.slice().reverse();
      for (const v of order) {
        const s = v.model.session();
        const c0 = threadCpu();
        s.feed(long, { lastOnly: true });
        prefill[v.name]!.push((threadCpu() - c0) / long.length);
      }
    }
    const row: GenerationRow = {
      backend,
      tokens,
      rounds,
      base: base.sha.slice(0, 12),
      baseCpuPerToken: median(cpu.base!),
      newCpuPerToken: median(cpu.new!),
      speedup: median(ratios),
      baseWallPerToken: median(wall.base!),
      newWallPerToken: median(wall.new!),
      linearFlopsPerToken: flops,
      basePrefillPerToken: median(prefill.base!),
      newPrefillPerToken: median(prefill.new!),
    };
    rows.push(row);
    const ms = (x: number): string => (x * 1000).toFixed(3);
    log(
      `${backend}: ${rounds} alternating rounds of ${tokens} tokens from position ${prompt.length}, same tokens generated by both; ` +
        `CPU time of the working thread per token: base ${row.base} ${ms(row.baseCpuPerToken)} ms (${Math.round(1 / row.baseCpuPerToken)} tokens/s), ` +
        `new ${ms(row.newCpuPerToken)} ms (${Math.round(1 / row.newCpuPerToken)} tokens/s); speedup (median of per-round ratios) ${row.speedup.toFixed(2)}x; ` +
        `wall per token: base ${ms(row.baseWallPerToken)} ms, new ${ms(row.newWallPerToken)} ms; ` +
        `per-round ratios [${ratios.map((x) => x.toFixed(2)).join(', ')}]`,
    );
    log(`${backend}: prefill of ${long.length} bytes (chunks of 256), CPU per token: base ${(row.basePrefillPerToken * 1e6).toFixed(1)} us, new ${(row.newPrefillPerToken * 1e6).toFixed(1)} us (${(row.basePrefillPerToken / row.newPrefillPerToken).toFixed(2)}x)`);
    log(`${backend}: linear layers + logits ${(flops / 1e6).toFixed(2)} MFLOP per token: the new per-token CPU time is ${(flops / row.newCpuPerToken / 1e9).toFixed(2)} GFLOP/s of those`);
  }
  return rows;
}

/** The commit this work started from (issue 21 item 5's "today"). */
export const BASE = '197a43a';

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const b = opt('--backend') ?? 'both';
  await runGeneration(console.log, {
    base: opt('--base'),
    tokens: opt('--tokens') === undefined ? undefined : Number(opt('--tokens')),
    rounds: opt('--rounds') === undefined ? undefined : Number(opt('--rounds')),
    backends: b === 'both' ? ['wasm', 'js'] : [b as 'wasm' | 'js'],
    model: opt('--model'),
  });
}
