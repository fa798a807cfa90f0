// The root, ./rx and ./model entries contain no Node built-ins: bundle them for the browser platform and run
// the bundle. A minified bundle keeps the error classes' names, and a bundle of attention() alone leaves the
// snapshot codec (msgpackr) out. (The packed package in real headless Chromium: scripts/consumer-check.mjs.)
import { afterAll, describe, expect, it } from 'vitest';
import { build, type Metafile } from 'esbuild';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ndarray from 'ndarray';
import { attention as nodeAttention } from '../src/index.js';

/** Files that contribute bytes to the output (the metafile's inputs also list files parsed, then shaken off). */
function included(meta: Metafile): string[] {
  return Object.values(meta.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([p]) => p));
}

describe('browser bundles', () => {
  const dirs: string[] = [];
  const tempDir = (prefix: string): string => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  // every entry is bundled: a missing one fails here (it is never skipped)
  for (const entry of ['src/index.ts', 'src/stream/index.ts', 'src/model/index.ts']) {
    it(`${entry} bundles for the browser platform with no Node built-ins`, async () => {
      expect(existsSync(entry), `${entry} is missing`).toBe(true);
      const dir = tempDir('tza-browser-');
      const outfile = join(dir, 'bundle.mjs');
      const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', outfile, metafile: true, logLevel: 'silent' });
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.filter((p) => /^node:|(^|\/)(fs|path|child_process|os|worker_threads)$/.test(p))).toEqual([]);
      if (entry === 'src/index.ts') {
        const mod = (await import(pathToFileURL(outfile).href)) as typeof import('../src/index.js');
        const config = { heads: 1, keyDim: 2, valueDim: 2, features: { kind: 'prf' as const, count: 4 }, rpe: { past: { bias: [0, -1] } } };
        const t = () => ndarray(Float64Array.from({ length: 20 }, (_, i) => Math.sin(i)), [1, 10, 2]);
        const a = mod.attention(config, t(), t(), t());
        const b = nodeAttention(config, t(), t(), t());
        expect(Array.from(a.data)).toEqual(Array.from(b.data));
      }
    });
  }

  it('a minified bundle keeps the error names; attention() alone does not pull in msgpackr', async () => {
    const dir = tempDir('tza-browser-min-');
    const index = resolve('src/index.ts').replace(/\\/g, '/');
    writeFileSync(join(dir, 'entry.ts'), `import { attention, ConfigError } from ${JSON.stringify(index)};
export function run(): string[] {
  try {
    attention({ heads: 0 } as never, null as never, null as never, null as never);
    return ['no error'];
  } catch (e) {
    return [(e as Error).name, String(e instanceof ConfigError), (e as Error).constructor.name];
  }
}
`);
    const outfile = join(dir, 'bundle.mjs');
    const result = await build({ entryPoints: [join(dir, 'entry.ts')], bundle: true, platform: 'browser', format: 'esm', minify: true, outfile, metafile: true, logLevel: 'silent' });
    const files = included(result.metafile);
    expect(files.filter((p) => p.includes('node_modules/msgpackr/'))).toEqual([]);
    expect(files.filter((p) => p.includes('node_modules/rxjs/'))).toEqual([]);
    const { run } = (await import(pathToFileURL(outfile).href)) as { run: () => string[] };
    const [name, isConfigError, className] = run();
    expect([name, isConfigError]).toEqual(['ConfigError', 'true']);
    expect(className).not.toBe('ConfigError'); // minification did rename the class: the name survives anyway
  });
});
