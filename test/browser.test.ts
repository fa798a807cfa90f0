// The root and ./rx entries contain no Node built-ins: bundle them for the browser platform and run the bundle.
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ndarray from 'ndarray';
import { attention as nodeAttention } from '../src/index.js';

describe('browser bundles', () => {
  const entries = ['src/index.ts', ...(existsSync('src/stream/index.ts') ? ['src/stream/index.ts'] : [])];
  for (const entry of entries) {
    it(`${entry} bundles for the browser platform with no Node built-ins`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tza-browser-'));
      const outfile = join(dir, 'bundle.mjs');
      const result = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', outfile, metafile: true, logLevel: 'silent' });
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.filter((p) => /^node:|(^|\/)(fs|path|child_process|os)$/.test(p))).toEqual([]);
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
});
