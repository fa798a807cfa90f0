// How far the one-row products of generation are from their floor on this machine (issue 21 item 5):
//
//   npx tsx bench/gemv-floor.ts [--model path] [--rounds R]
//
// Measured in one process, interleaved rounds, CPU time of this thread (process.cpuUsage: single-threaded work):
//   - read: a streaming read in WASM SIMD (four independent v128 or-chains, compiled here with asc: nothing but
//     loads) over as many bytes as the model's panels, f32 (what generation streams) and f64 (what it streamed):
//     the memory floor of a token's products is bytes / this bandwidth;
//   - model: the model's one-row products of one token as generation runs them (the packed, fused GemmFn of
//     src/model/forward.ts: 4 x (q|k|v, o, w1|w3, w2) + logits), f32 panels and, for comparison, f64 panels;
//   - l2: the same kernel on one layer's panels repeated (they stay in the 2 MB L2): the kernel's own peak, i.e.
//     the compute floor (FLOPs / this rate).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createWasmWorkspace } from '../src/backend/wasm.js';
import { loadModel } from '../src/model/index.js';
import { createRunState, linear, linearWorkspaceEntries, packedLinears, type GemmFn } from '../src/model/forward.js';
import { GEMM_ROWS } from '../src/model/forward.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const READ_SOURCE = `
export function reador(p: usize, bytes: usize): i64 {
  let s0 = i64x2.splat(0), s1 = s0, s2 = s0, s3 = s0;
  const end = p + bytes;
  for (; p < end; p += 64) {
    s0 = v128.or(s0, v128.load(p));
    s1 = v128.or(s1, v128.load(p, 16));
    s2 = v128.or(s2, v128.load(p, 32));
    s3 = v128.or(s3, v128.load(p, 48));
  }
  const s = v128.or(v128.or(s0, s1), v128.or(s2, s3));
  return i64x2.extract_lane(s, 0) | i64x2.extract_lane(s, 1);
}`;

async function compileRead(): Promise<WebAssembly.Module> {
  const { default: asc } = (await import('assemblyscript/asc')) as unknown as { default: { main(argv: string[], o: object): Promise<{ error: Error | null }> } };
  const files: Record<string, Uint8Array> = {};
  const { error } = await asc.main(['read.ts', '--enable', 'simd', '-O3', '--runtime', 'stub', '--importMemory', '--noAssert', '--use', 'abort=', '--outFile', 'read.wasm'], {
    readFile: (name: string) => (name === 'read.ts' ? READ_SOURCE : null),
    writeFile: (name: string, contents: Uint8Array) => {
      files[name] = contents;
    },
    listFiles: () => [],
    stdout: { write: () => true },
    stderr: { write: () => true },
  });
  if (error) throw error;
  return new WebAssembly.Module(new Uint8Array(files['read.wasm']!));
}

const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;

export async function runGemvFloor(log: (s: string) => void, opts: { model?: string; rounds?: number } = {}): Promise<Record<string, number>> {
  const model = loadModel(readFileSync(opts.model ?? join(root, 'models', 'toeplitz-lm.safetensors')), { backend: 'wasm' });
  const c = model.config;
  const w = model.weights;
  // the model's products, f32 and f64 panels, each in a workspace of its own (as a model holds them)
  const fns: Record<string, GemmFn> = {};
  for (const f32 of [true, false]) fns[f32 ? 'f32' : 'f64'] = packedLinears(c, w, createWasmWorkspace(linearWorkspaceEntries(c, w, GEMM_ROWS, f32)), f32);
  const token = (fn: GemmFn, layers: number): (() => void) => {
    const s = createRunState(c, 1, fn);
    s.a.fill(0.01);
    s.z.fill(0.01);
    const logits = new Float64Array(c.vocab);
    const qk = c.heads * c.keyDim;
    const vd = c.heads * c.valueDim;
    return () => {
      for (let l = 0; l < layers; l++) {
        const L = w.layers[l % w.layers.length]!;
        const g = fn.fused?.get(L.wq);
        if (g) linear(s, s.qkv!, s.a, g.key, 1, g.N, c.dim);
        else {
          linear(s, s.q, s.a, L.wq, 1, qk, c.dim);
          linear(s, s.k, s.a, L.wk, 1, qk, c.dim);
          linear(s, s.v, s.a, L.wv, 1, vd, c.dim);
        }
        linear(s, s.x, s.z, L.wo, 1, c.dim, vd, true);
        const h = fn.fused?.get(L.w1);
        if (h) linear(s, s.h13!, s.a, h.key, 1, h.N, c.dim);
        else {
          linear(s, s.h1, s.a, L.w1, 1, c.hidden, c.dim);
          linear(s, s.h3, s.a, L.w3, 1, c.hidden, c.dim);
        }
        s.h1.fill(0.01);
        linear(s, s.x, s.h1, L.w2, 1, c.dim, c.hidden, true);
      }
      if (layers === c.layers) linear(s, logits, s.a, w.output, 1, c.vocab, c.dim);
    };
  };
  const qk = c.heads * c.keyDim;
  const perLayerMacs = c.dim * (2 * qk + c.heads * c.valueDim) + c.heads * c.valueDim * c.dim + 3 * c.dim * c.hidden;
  const flops = 2 * (c.layers * perLayerMacs + c.vocab * c.dim);
  const weights = c.layers * perLayerMacs + c.vocab * c.dim;
  // the read kernel over as many bytes as the panels (in a memory of its own, touched once first)
  const mod = await compileRead();
  const memory = new WebAssembly.Memory({ initial: Math.ceil((weights * 8 + 65536) / 65536) + 1 });
  const rd = (new WebAssembly.Instance(mod, { env: { memory } }).exports as { reador(p: number, n: number): bigint }).reador;
  new Uint8Array(memory.buffer).fill(1);
  const L2_REPEAT = 4;
  const cases: Record<string, { run: () => void; bytes?: number; flops?: number }> = {
    'read f32 bytes': { run: () => void rd(65536, weights * 4), bytes: weights * 4 },
    'read f64 bytes': { run: () => void rd(65536, weights * 8), bytes: weights * 8 },
    'model products f32': { run: token(fns.f32!, c.layers), flops },
    'model products f64': { run: token(fns.f64!, c.layers), flops },
    'l2 f32 (one layer x 4)': { run: ((t) => () => { for (let i = 0; i < L2_REPEAT; i++) t(); })(token(fns.f32!, 1)), flops: 2 * perLayerMacs * L2_REPEAT },
  };
  const rounds = opts.rounds ?? 9;
  const reps = 200;
  const times: Record<string, number[]> = {};
  for (const k in cases) for (let i = 0; i < 50; i++) cases[k]!.run();
  for (let r = 0; r < rounds; r++) {
    const keys = Object.keys(cases);
    if (r % 2 === 1) keys.reverse();
    for (const k of keys) {
      const t0 = cpu();
      for (let i = 0; i < reps; i++) cases[k]!.run();
      (times[k] ??= []).push((cpu() - t0) / reps);
    }
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cases)) {
    const t = median(times[k]!);
    out[k] = t;
    const rate = v.bytes ? `${(v.bytes / t / 1e9).toFixed(1)} GB/s` : `${(v.flops! / t / 1e9).toFixed(2)} GFLOP/s`;
    log(`${k}: ${(t * 1e6).toFixed(1)} us (${rate})`);
  }
  const bw = weights * 4 / out['read f32 bytes']!;
  const peak = (2 * perLayerMacs * L2_REPEAT) / out['l2 f32 (one layer x 4)']!;
  const memFloor = (weights * 4) / bw;
  const flopFloor = flops / peak;
  log(
    `per token: ${(weights * 4 / 1e6).toFixed(2)} MB of f32 panels (${(weights * 8 / 1e6).toFixed(2)} MB as f64), ${(flops / 1e6).toFixed(2)} MFLOP; ` +
      `memory floor ${(memFloor * 1e6).toFixed(1)} us (at ${(bw / 1e9).toFixed(1)} GB/s), compute floor ${(flopFloor * 1e6).toFixed(1)} us (at the kernel's L2 rate ${(peak / 1e9).toFixed(2)} GFLOP/s); ` +
      `the model's products take ${(out['model products f32']! * 1e6).toFixed(1)} us: ${(out['model products f32']! / Math.max(memFloor, flopFloor)).toFixed(2)}x the binding floor (f64 panels: ${(out['model products f64']! * 1e6).toFixed(1)} us)`,
  );
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  await runGemvFloor(console.log, { model: opt('--model'), rounds: opt('--rounds') === undefined ? undefined : Number(opt('--rounds')) });
}
