// The sessions entry bundles for browsers: no Redis client, no Node built-in (DESIGN section 6). The file:
// and redis:// stores are reached only through openStore's dynamic imports; ioredis only by a specifier a
// bundler cannot follow, node:fs only through process.getBuiltinModule at call time.
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('toeplitz-attention/sessions in a browser bundle', () => {
  it('bundles with platform browser, holding neither ioredis nor a Node built-in module', async () => {
    const r = await build({ entryPoints: ['src/sessions/index.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    const packages = new Set(Object.keys(r.metafile.inputs).filter((k) => k.includes('node_modules/')).map((k) => k.split('node_modules/').pop()!.split('/')[0]!));
    expect([...packages].sort()).not.toContain('ioredis');
    for (const p of packages) expect(p).not.toMatch(/redis|^node:/);
    const text = r.outputFiles.map((f) => f.text).join('\n');
    expect(text).not.toMatch(/\bfrom\s*["'](node:)?(fs|path|net|tls|events|url)["']/);
    expect(text).not.toMatch(/\brequire\(["'](node:)?(fs|path|net|tls|events)["']\)/);
    // the IndexedDB store is the one browsers open: it is in the bundle, not left to a runtime import
    expect(Object.keys(r.metafile.inputs)).toContain('src/sessions/indexeddb.ts');
  });

  it('the IndexedDB store alone imports no Node built-in and no package', async () => {
    const r = await build({ entryPoints: ['src/sessions/indexeddb.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', metafile: true });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.filter((k) => k.includes('node_modules/') || /^node:/.test(k))).toEqual([]);
    expect(inputs.every((k) => k.startsWith('src/core/') || k.startsWith('src/sessions/'))).toBe(true);
    expect(r.outputFiles[0]!.text).not.toMatch(/\b(require|import)\s*\(\s*["']|getBuiltinModule/);
  });
});
