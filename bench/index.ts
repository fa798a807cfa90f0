// Benchmark suites: npm run bench -- [prefill|decode|snapshot|sessions|serve|kernels|pytorch|calibrate|generation|model]
// (no argument: every suite but calibrate, generation, serve and model, then bench/results/latest.json and SVG plots;
// `replot` redraws the plots from latest.json). `model` is bench/model.ts (the language models side by side, a
// 1M-byte stream each: ~10 minutes; its flags follow the suite name).
// SMALL=1 runs tiny sizes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { runPrefill, type PrefillRow } from './prefill.js';
import { runDecode } from './decode.js';
import { calibrate } from './calibrate.js';
import { lineChartSvg } from './plot.js';
import type { VersusRow } from './pytorch.js';

const suite = process.argv[2] ?? 'all';
const small = process.env.SMALL === '1';
const results: Record<string, unknown> = {
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  date: new Date().toISOString(),
};
const suites: Record<string, () => Promise<void> | void> = {
  prefill: () => { results.prefill = runPrefill(small ? [1024, 4096] : [1024, 4096, 16384, 65536]); },
  decode: () => { results.decode = runDecode(console.log, small); },
  kernels: async () => {
    const mod = await import('./kernels.js');
    results.kernels = mod.runKernels(console.log);
  },
  pytorch: async () => {
    const mod = await import('./pytorch.js');
    results.pytorch = mod.runVersusPytorch(small ? [1024] : [1024, 4096, 16384, 65536]);
  },
  generation: async () => {
    // model generation, this tree against the base commit of issue 21 item 5, in one process (bench/generation.ts)
    const mod = await import('./generation.js');
    results.generation = await mod.runGeneration(console.log, small ? { tokens: 200, rounds: 3 } : {});
  },
  model: async () => {
    await import('./model.js'); // reads its own flags from process.argv, writes bench/results/model.*
  },
  calibrate: () => { results.calibrate = { js: calibrate('js'), wasm: calibrate('wasm') }; console.log(results.calibrate); },
  sessions: async () => {
    const mod = await import('./sessions.js');
    results.sessions = await mod.runSessionsBench(console.log, small);
  },
  serve: async () => {
    // the HTTP server under load: 64 sessions x 256 tokens, 1 worker vs 2 side by side (bench/serve.ts)
    const mod = await import('./serve.js');
    results.serve = await mod.runServeBench(console.log, small);
  },
  snapshot: async () => {
    // the snapshot suite lives with the codec
    const mod = (await import('./snapshot.js' as string)) as { runSnapshotBench: (log: (s: string) => void) => Promise<unknown> | unknown };
    results.snapshot = await mod.runSnapshotBench(console.log);
  },
};
if (suite === 'replot') {
  // redraw the plots from the last full run (bench/results/latest.json), e.g. after a change to the plot code
  await writePlots(JSON.parse(readFileSync(new URL('./results/latest.json', import.meta.url), 'utf8')) as Record<string, unknown>, new URL('./results/', import.meta.url));
  console.log('wrote bench/results/prefill.svg, decode.svg from latest.json');
  process.exit(0);
}
const names = suite === 'all' ? ['prefill', 'decode', 'snapshot', 'sessions', 'kernels', 'pytorch'] : [suite];
for (const name of names) {
  const run = suites[name];
  if (run === undefined) {
    console.error(`unknown suite ${JSON.stringify(name)}; expected one of ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  await run();
}

/** The two plots of the README, from a results record (this run's, or latest.json for `replot`). */
async function writePlots(res: Record<string, unknown>, dir: URL): Promise<void> {
  const rows = res.prefill as PrefillRow[];
  const torch = (res.pytorch ?? null) as VersusRow[] | null;
  writeFileSync(new URL('prefill.svg', dir), await lineChartSvg({
    title: 'Whole-sequence attention, m = dv = d = 64, full RPE table', xLabel: 'sequence length n', yLabel: 'seconds', logX: true, logY: true,
    series: [
      { name: 'FFT (S-form), WASM', points: rows.map((r) => ({ x: r.n, y: r.fftSeconds })) },
      { name: 'FFT (S-form), JS', points: rows.map((r) => ({ x: r.n, y: r.fftJsSeconds })) },
      { name: 'direct (A-form), WASM', points: rows.map((r) => ({ x: r.n, y: r.directSeconds })) },
      { name: 'O(n^2) reference', points: rows.filter((r) => r.referenceSeconds !== null).map((r) => ({ x: r.n, y: r.referenceSeconds! })) },
      // the paper's algorithm in PyTorch, one thread, from the pytorch suite of the same run (absent without PyTorch)
      ...(torch === null ? [] : [
        { name: 'PyTorch float32, 1 thread', points: torch.map((r) => ({ x: r.n, y: r.torchFloat32Seconds })) },
        { name: 'PyTorch float64, 1 thread', points: torch.map((r) => ({ x: r.n, y: r.torchFloat64Seconds })) },
      ]),
    ],
  }));
  const curve = (res.decode as { curve: Array<{ position: number; seconds: number }> }).curve;
  writeFileSync(new URL('decode.svg', dir), await lineChartSvg({
    title: 'Decoder.step per-token time, K = 512, m = dv = d = 64', xLabel: 'position', yLabel: 'microseconds per token', logX: true,
    series: [{ name: 'step', points: curve.map((c) => ({ x: c.position, y: c.seconds * 1e6 })) }],
  }));
}

const dir = new URL('./results/', import.meta.url);
if (suite === 'all') {
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('latest.json', dir), JSON.stringify(results, null, 2));
  await writePlots(results, dir);
  console.log('\nwrote bench/results/latest.json, prefill.svg, decode.svg');
}
