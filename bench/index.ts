// Benchmark suites: npm run bench -- [prefill|decode|snapshot|kernels|pytorch|calibrate]  (no argument: every suite
// but calibrate, then bench/results/latest.json and SVG plots). SMALL=1 runs tiny sizes.
import { mkdirSync, writeFileSync } from 'node:fs';
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
  calibrate: () => { results.calibrate = { js: calibrate('js'), wasm: calibrate('wasm') }; console.log(results.calibrate); },
  snapshot: async () => {
    // the snapshot suite lives with the codec
    const mod = (await import('./snapshot.js' as string)) as { runSnapshotBench: (log: (s: string) => void) => Promise<unknown> | unknown };
    results.snapshot = await mod.runSnapshotBench(console.log);
  },
};
const names = suite === 'all' ? ['prefill', 'decode', 'snapshot', 'kernels', 'pytorch'] : [suite];
for (const name of names) {
  const run = suites[name];
  if (run === undefined) {
    console.error(`unknown suite ${JSON.stringify(name)}; expected one of ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  await run();
}

if (suite === 'all') {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('latest.json', dir), JSON.stringify(results, null, 2));
  const rows = results.prefill as PrefillRow[];
  const torch = (results.pytorch ?? null) as VersusRow[] | null;
  writeFileSync(new URL('prefill.svg', dir), await lineChartSvg({
    title: 'Whole-sequence attention, m = dv = d = 64, full RPE table', xLabel: 'sequence length n', yLabel: 'seconds', logX: true, logY: true,
    series: [
      { name: 'FFT (S-form), WASM', points: rows.map((r) => ({ x: r.n, y: r.fftSeconds })) },
      { name: 'FFT (S-form), JS', points: rows.map((r) => ({ x: r.n, y: r.fftJsSeconds })) },
      { name: 'direct (A-form), WASM', points: rows.map((r) => ({ x: r.n, y: r.directSeconds })) },
      { name: 'O(n^2) reference', points: rows.filter((r) => r.referenceSeconds !== null).map((r) => ({ x: r.n, y: r.referenceSeconds! })) },
      // the paper's algorithm in PyTorch, one thread, from the pytorch suite of the same run (absent without PyTorch)
      ...(torch === null ? [] : [
        { name: "paper's algorithm, PyTorch float32", points: torch.map((r) => ({ x: r.n, y: r.torchFloat32Seconds })) },
        { name: "paper's algorithm, PyTorch float64", points: torch.map((r) => ({ x: r.n, y: r.torchFloat64Seconds })) },
      ]),
    ],
  }));
  const curve = (results.decode as { curve: Array<{ position: number; seconds: number }> }).curve;
  writeFileSync(new URL('decode.svg', dir), await lineChartSvg({
    title: 'Decoder.step per-token time, K = 512, m = dv = d = 64', xLabel: 'position', yLabel: 'microseconds per token', logX: true,
    series: [{ name: 'step', points: curve.map((c) => ({ x: c.position, y: c.seconds * 1e6 })) }],
  }));
  console.log('\nwrote bench/results/latest.json, prefill.svg, decode.svg');
}
