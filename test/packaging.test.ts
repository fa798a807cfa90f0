// package.json's exports: the model file is reachable by its package path (Node's resolver, as
// import.meta.resolve uses it, and esbuild), through a self-reference from inside the repository. (The packed
// tarball installed in a fresh project: scripts/consumer-check.mjs and docs/web-basics.md's figures.)
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const spec = 'toeplitz-attention/models/toeplitz-lm.safetensors';
const root = resolve('.');

describe('package exports', () => {
  it('the model file resolves by its package path in Node', () => {
    const path = createRequire(join(root, 'package.json')).resolve(spec);
    expect(path).toBe(join(root, 'models', 'toeplitz-lm.safetensors'));
  });

  it('the model file resolves by its package path in esbuild (as an asset URL, loader file)', async () => {
    const dir = mkdtempSync(join(root, 'test', '.tmp-esbuild-'));
    try {
      writeFileSync(join(dir, 'entry.mjs'), `import url from ${JSON.stringify(spec)};\nexport default url;\n`);
      const r = await build({ entryPoints: [join(dir, 'entry.mjs')], bundle: true, platform: 'browser', format: 'esm', outdir: join(dir, 'out'), loader: { '.safetensors': 'file' }, metafile: true, logLevel: 'silent' });
      const assets = Object.keys(r.metafile.outputs).filter((p) => p.endsWith('.safetensors'));
      expect(assets).toHaveLength(1);
      expect(readFileSync(assets[0]!).equals(readFileSync(join(root, 'models', 'toeplitz-lm.safetensors')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the files list ships the model and the held-out split; the exports keep every code entry', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; exports: Record<string, unknown> };
    expect(pkg.files).toEqual(expect.arrayContaining(['models/*.safetensors', 'data/moby-dick-heldout.txt']));
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['.', './rx', './codec', './model', './model/file', './threads', './models/*.safetensors']));
  });
});

describe('the ./codec entry shows the contract, not the internals', () => {
  it('exports DESIGN section 8\'s functions, the atomic writers, the error and the version constants; no CRC, framing or parsing', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { import: string }> };
    expect(pkg.exports['./codec']!.import).toBe('./dist/codec/public.js');
    const entry = await import('../src/codec/public.js');
    expect(Object.keys(entry).sort()).toEqual(
      ['Decoder', 'MAX_SNAPSHOT_FILE_BYTES', 'SNAPSHOT_FORMAT_VERSION', 'SNAPSHOT_READABLE_VERSIONS', 'SnapshotError', 'decodeSnapshot', 'encodeSnapshot', 'inspectSnapshot', 'loadSnapshot', 'saveSnapshot', 'writeFileAtomic', 'writeFileAtomicAsync'].sort(),
    );
  });
});
