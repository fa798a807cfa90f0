// Model generation in float32 vs float64 sessions, side by side in ONE process (issue 21 item 6's last bar:
// float32 generation tokens/s >= 1.3x the float64 generation, WASM).
//
//   npx tsx bench/generation-dtype.ts [--tokens N] [--rounds R] [--backend wasm|js] [--model path]
//
// One model (the shipped one), one prompt (1,000 bytes of README.md, prefilled untimed), the same seed; every
// round times one generation of N tokens per dtype (a fresh session each), in alternating order. Time is the CPU
// time of this thread (/proc/thread-self/stat), wall beside it. Reported: medians over rounds, the median of the
// per-round ratios (float64 time / float32 time), and where a token's time goes: the linear layers' one-row
// products (float64 panels product vs the float32 one, the same matrices) and the decoders' steps (float64 vs
// float32 Decoder), each timed alone in interleaved rounds.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadModel, type Model } from '../src/model/index.js';
import { createRunState, linear } from '../src/model/forward.js';
import { Decoder } from '../src/index.js';
import { linearFlops } from './generation.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let TICKS = 100;
function threadCpu(): number {
  const s = readFileSync('/proc/thread-self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

async function generateOnce(model: Model, dtype: 'float32' | 'float64', prompt: Uint8Array, tokens: number, out: number[]): Promise<{ cpu: number; wall: number }> {
  const s = model.session({ seed: 7, temperature: 0.8, dtype });
  s.feed(prompt, { lastOnly: true });
  out.length = 0;
  const c0 = threadCpu();
  const w0 = performance.now();
  for await (const g of s.generate('', { maxTokens: tokens })) out.push(g.token);
  return { cpu: threadCpu() - c0, wall: (performance.now() - w0) / 1000 };
}

export async function runGenerationDtype(log: (s: string) => void, opts: { tokens?: number; rounds?: number; backend?: 'wasm' | 'js'; model?: string } = {}): Promise<void> {
  try {
    TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    TICKS = 100;
  }
  const backend = opts.backend ?? 'wasm';
  const tokens = opts.tokens ?? (backend === 'wasm' ? 3000 : 400);
  const rounds = opts.rounds ?? 11;
  const model = loadModel(readFileSync(opts.model ?? join(root, 'models', 'toeplitz-lm.safetensors')), { backend });
  const text = readFileSync(join(root, 'README.md'), 'utf8').replace(/[^\x20-\x7e\n]/g, ' ');
  const prompt = new TextEncoder().encode(text).subarray(0, 1000);
  const dtypes = ['float64', 'float32'] as const;
  const cpu: Record<string, number[]> = { float64: [], float32: [] };
  const wall: Record<string, number[]> = { float64: [], float32: [] };
  const ratios: number[] = [];
  const seq: Record<string, number[]> = { float64: [], float32: [] };
  const first: Record<string, number[]> = {};
  for (const d of dtypes) await generateOnce(model, d, prompt, Math.min(200, tokens), seq[d]!); // warm-up
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? dtypes : [...dtypes].reverse();
    const got: Record<string, number> = {};
    for (const d of order) {
      const t = await generateOnce(model, d, prompt, tokens, seq[d]!);
      cpu[d]!.push(t.cpu / tokens);
      wall[d]!.push(t.wall / tokens);
      got[d] = t.cpu;
      if (first[d] === undefined) first[d] = seq[d]!.slice();
      else if (seq[d]!.some((x, i) => x !== first[d]![i])) throw new Error(`${d}: the same seed generated other tokens in round ${r}`);
    }
    ratios.push(got.float64! / got.float32!);
  }
  const ms = (x: number): string => (x * 1000).toFixed(3);
  const c = model.config;
  log(`model ${opts.model ?? 'models/toeplitz-lm.safetensors'} (dim ${c.dim}, ${c.layers} layers, hidden ${c.hidden}), backend ${model.backend}`);
  log(
    `generation, ${rounds} alternating rounds of ${tokens} tokens from position ${prompt.length}, CPU time of the thread per token: ` +
      `float64 ${ms(median(cpu.float64!))} ms (${Math.round(1 / median(cpu.float64!))} tokens/s), float32 ${ms(median(cpu.float32!))} ms (${Math.round(1 / median(cpu.float32!))} tokens/s); ` +
      `ratio of medians ${(median(cpu.float64!) / median(cpu.float32!)).toFixed(2)}x, median of round ratios ${median(ratios).toFixed(2)}x [${ratios.map((x) => x.toFixed(2)).join(', ')}]; ` +
      `wall per token float64 ${ms(median(wall.float64!))} ms, float32 ${ms(median(wall.float32!))} ms; the two dtypes' tokens agree on the first ${first.float64!.findIndex((x, i) => x !== first.float32![i]) < 0 ? tokens : first.float64!.findIndex((x, i) => x !== first.float32![i])} of ${tokens}`,
  );

  // where the time goes: every linear layer's one-row product of a token (the same matrices and row), float64 vs float32
  const reps = backend === 'wasm' ? 4000 : 500;
  const prod: Record<string, number[]> = { float64: [], float32: [] };
  const states = { float64: createRunState(c, 1, model.gemm), float32: createRunState(c, 1, model.gemm.float32 ?? model.gemm) };
  // the products of forward() for one token, as it runs them: fused [wq|wk|wv] and [w1|w3] where the model has the
  // groups, wo, w2, the logits; inputs and outputs in the one-row arrays (the model's workspace)
  type Product = { W: Float64Array; N: number; K: number; out: 'qkv' | 'h13' | 'x' | 'z' };
  const mats: Product[] = [];
  const qk = c.heads * c.keyDim;
  const vd = c.heads * c.valueDim;
  for (const L of model.weights.layers) {
    const f = model.gemm.fused?.get(L.wq);
    if (f !== undefined) mats.push({ W: f.key, N: f.N, K: c.dim, out: 'qkv' });
    else mats.push({ W: L.wq, N: qk, K: c.dim, out: 'qkv' }, { W: L.wk, N: qk, K: c.dim, out: 'qkv' }, { W: L.wv, N: vd, K: c.dim, out: 'qkv' });
    mats.push({ W: L.wo, N: c.dim, K: vd, out: 'x' });
    const g = model.gemm.fused?.get(L.w1);
    if (g !== undefined) mats.push({ W: g.key, N: g.N, K: c.dim, out: 'h13' });
    else mats.push({ W: L.w1, N: c.hidden, K: c.dim, out: 'h13' }, { W: L.w3, N: c.hidden, K: c.dim, out: 'h13' });
    mats.push({ W: L.w2, N: c.dim, K: c.hidden, out: 'x' });
  }
  const logits = new Float64Array(c.vocab);
  for (const d of dtypes) {
    const s = states[d];
    s.a.forEach((_, i) => (s.a[i] = Math.sin(i)));
    s.h1.forEach((_, i) => (s.h1[i] = Math.cos(i)));
    s.z.forEach((_, i) => (s.z[i] = Math.cos(2 * i)));
  }
  const run = (s: (typeof states)['float64']): void => {
    for (const m of mats) {
      const input = m.K === c.dim && m.out !== 'x' ? s.a : m.out === 'x' && m.K === c.hidden ? s.h1 : m.out === 'x' ? s.z : s.a;
      linear(s, m.out === 'qkv' ? s.qkv! : m.out === 'h13' ? s.h13! : s.x, input, m.W, 1, m.N, m.K, m.out === 'x');
    }
    linear(s, logits, s.a, model.weights.output, 1, c.vocab, c.dim);
  };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? dtypes : [...dtypes].reverse();
    for (const d of order) {
      const s = states[d];
      s.x.fill(0);
      const c0 = threadCpu();
      for (let i = 0; i < reps; i++) run(s);
      prod[d]!.push((threadCpu() - c0) / reps);
    }
  }
  // the decoders' steps: one per layer per token, at position ~1k (a window's worth of history)
  const step: Record<string, number[]> = { float64: [], float32: [] };
  const decs = {
    float64: model.attentionConfigs.map((cfg) => new Decoder(cfg, { backend })),
    float32: model.attentionConfigs.map((cfg) => new Decoder(cfg, { backend, dtype: 'float32' })),
  };
  const q = new Float64Array(c.heads * c.keyDim).map((_, i) => Math.sin(i) * 0.3);
  const v = new Float64Array(c.heads * c.valueDim).map((_, i) => Math.cos(i));
  const z = new Float64Array(c.heads * c.valueDim);
  for (const d of dtypes) for (let i = 0; i < 1000; i++) for (const dec of decs[d]) dec.stepRows(q, 0, q, 0, v, 0, z, 0);
  const steps = backend === 'wasm' ? 4000 : 400;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? dtypes : [...dtypes].reverse();
    for (const d of order) {
      const c0 = threadCpu();
      for (let i = 0; i < steps; i++) for (const dec of decs[d]) dec.stepRows(q, 0, q, 0, v, 0, z, 0);
      step[d]!.push((threadCpu() - c0) / steps);
    }
  }
  const us = (x: number): string => (x * 1e6).toFixed(1);
  const flops = linearFlops(c);
  for (const d of dtypes) {
    const total = median(cpu[d]!);
    log(
      `${d}: per token ${us(total)} us = linear products ${us(median(prod[d]!))} us (${((flops / median(prod[d]!)) / 1e9).toFixed(2)} GFLOP/s) + decoder steps ${us(median(step[d]!))} us ` +
        `+ the rest (norms, SwiGLU, sampling, the generator) ${us(total - median(prod[d]!) - median(step[d]!))} us`,
    );
  }
  log(`products alone: float64 / float32 ${(median(prod.float64!) / median(prod.float32!)).toFixed(2)}x; decoder steps alone: ${(median(step.float64!) / median(step.float32!)).toFixed(2)}x`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  await runGenerationDtype(console.log, {
    tokens: opt('--tokens') === undefined ? undefined : Number(opt('--tokens')),
    rounds: opt('--rounds') === undefined ? undefined : Number(opt('--rounds')),
    backend: (opt('--backend') as 'wasm' | 'js' | undefined) ?? 'wasm',
    model: opt('--model'),
  });
}
