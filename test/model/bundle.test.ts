// The ./model entry contains no Node built-ins (file helpers live in ./model/file): bundle it for the browser
// platform, then run the bundle: same logits and same generated tokens as the sources.
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bytesOf, tinyConfig, tinyModel } from './tiny.js';

describe('toeplitz-attention/model bundle', () => {
  it('bundles for the browser with no Node built-ins and computes the same logits and tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzlm-bundle-'));
    try {
      const outfile = join(dir, 'model.mjs');
      const result = await build({ entryPoints: ['src/model/index.ts'], bundle: true, platform: 'browser', format: 'esm', outfile, metafile: true, logLevel: 'silent' });
      expect(Object.keys(result.metafile.inputs).filter((p) => /^node:|(^|\/)(fs|path|child_process|os|crypto)$/.test(p))).toEqual([]);
      const mod = (await import(pathToFileURL(outfile).href)) as typeof import('../../src/model/index.js');
      const cfg = tinyConfig();
      const bundled = mod.loadModel(mod.encodeModel(cfg, mod.randomWeights(cfg, 5), { dtype: 'F64' }));
      const mine = tinyModel(5);
      const text = bytesOf('Ahoy!');
      expect(Array.from(bundled.logits(text))).toEqual(Array.from(mine.logits(text)));
      const tokens = async (m: typeof mine): Promise<number[]> => {
        const out: number[] = [];
        for await (const g of m.session({ seed: 3 }).generate('Ahoy!', { maxTokens: 10 })) out.push(g.token);
        return out;
      };
      expect(await tokens(bundled as unknown as typeof mine)).toEqual(await tokens(mine));
      // snapshots cross between the bundle and the sources
      const s = bundled.session({ seed: 3 });
      s.feed(text);
      expect(mine.restore(s.snapshot()).position).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
