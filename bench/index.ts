// Benchmark suites: npm run bench -- [prefill|decode|snapshot|calibrate]  (no argument: prefill and decode)
import { runPrefill } from './prefill';
import { runDecode } from './decode';
import { calibrate } from './calibrate';

const suite = process.argv[2] ?? 'all';
const small = process.env.SMALL === '1';
const suites: Record<string, () => Promise<void> | void> = {
  prefill: () => void runPrefill(small ? [1024, 4096] : [1024, 4096, 16384, 65536]),
  decode: () => void runDecode(console.log, small),
  calibrate: () => console.log(calibrate()),
  snapshot: async () => {
    // the snapshot suite lives with the codec
    const mod = (await import('./snapshot' as string)) as { runSnapshotBench: (log: (s: string) => void) => Promise<unknown> | unknown };
    await mod.runSnapshotBench(console.log);
  },
};
const names = suite === 'all' ? ['prefill', 'decode'] : [suite];
for (const name of names) {
  const run = suites[name];
  if (run === undefined) {
    console.error(`unknown suite ${JSON.stringify(name)}; expected one of ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n## ${name}`);
  await run();
}
