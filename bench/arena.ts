// Many small decoders: each with a WebAssembly memory of its own vs all in one arena (createArena). Each case runs
// in a child process of its own (RSS is per process), cases alternating over the rounds; prints medians.
//   npx tsx bench/arena.ts [rounds=3]
// Per case: RSS growth per decoder, wall time to create one and to step it once, and whether every decoder was made
// (V8 refuses new WebAssembly memories at ~12,800 live, so 'own' is run below that).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createArena, Decoder, resolveConfig, wasmSupported } from '../src/index.js';
import ndarray from 'ndarray';

const CONFIG = { heads: 1, keyDim: 8, valueDim: 8, features: { kind: 'prf' as const, count: 8, seed: 1 }, rpe: { past: { bias: Array.from({ length: 16 }, (_, i) => -i / 8), tail: 'clip' as const } } };

interface Result {
  mode: string;
  n: number;
  made: number;
  rssPerDecoder: number;
  createUs: number;
  stepUs: number;
  arenaPerDecoder: number;
}

function child(mode: 'own' | 'arena', n: number): Result {
  const config = resolveConfig(CONFIG);
  const arena = mode === 'arena' ? createArena({ backend: 'wasm', bytes: Math.ceil((n * 4288) / 65536) * 65536 }) : undefined;
  const q = ndarray(Float64Array.from({ length: 8 }, (_, i) => Math.sin(i)), [1, 8]);
  const rss0 = process.memoryUsage().rss;
  const decoders: Decoder[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < n; i++) decoders.push(new Decoder(config, arena ? { arena } : { backend: 'wasm' }));
  } catch {
    // the runtime refused a memory: report how many were made
  }
  const t1 = performance.now();
  for (const d of decoders) d.step(q, q, q);
  const t2 = performance.now();
  const made = decoders.length;
  return { mode, n, made, rssPerDecoder: (process.memoryUsage().rss - rss0) / made, createUs: ((t1 - t0) * 1000) / made, stepUs: ((t2 - t1) * 1000) / made, arenaPerDecoder: arena ? arena.usedBytes / made : 0 };
}

const [, , a1, a2, a3] = process.argv;
if (a1 === '--child') {
  console.log(JSON.stringify(child(a2 as 'own' | 'arena', Number(a3))));
} else {
  if (!wasmSupported()) throw new Error('needs WebAssembly SIMD');
  const rounds = Number(a1 ?? 3);
  const cases: Array<['own' | 'arena', number]> = [['own', 10_000], ['arena', 10_000], ['arena', 20_000], ['arena', 100_000]];
  const all = new Map<string, Result[]>();
  const self = fileURLToPath(import.meta.url);
  for (let r = 0; r < rounds; r++) {
    for (const [mode, n] of cases) {
      const out = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', mode, String(n)], { encoding: 'utf8' });
      if (out.status !== 0) throw new Error(out.stderr);
      const res = JSON.parse(out.stdout.trim().split('\n').pop()!) as Result;
      const key = `${mode} ${n}`;
      all.set(key, [...(all.get(key) ?? []), res]);
    }
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  console.log(`${rounds} rounds, medians; config: 1 head, d = m = dv = 8, K = 16; Node ${process.version}`);
  console.log('case            made     RSS/decoder   create/decoder  step/decoder  arena/decoder');
  for (const [key, rs] of all) {
    console.log(
      `${key.padEnd(14)} ${String(med(rs.map((r) => r.made))).padStart(7)} ${(med(rs.map((r) => r.rssPerDecoder)) / 1024).toFixed(1).padStart(9)} KiB ${med(rs.map((r) => r.createUs)).toFixed(1).padStart(10)} us ${med(rs.map((r) => r.stepUs)).toFixed(1).padStart(10)} us ${String(med(rs.map((r) => r.arenaPerDecoder))).padStart(8)} B`,
    );
  }
}
