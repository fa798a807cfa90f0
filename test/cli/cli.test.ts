// The CLI end to end, spawned as a user runs it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attention } from '../../src/index.js';
import { formatNpy, parseNpy } from '../../src/cli/npy.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';

function cli(args: string[]) {
  return spawnSync(process.execPath, ['bin/toeplitz-attention.js', ...args], { encoding: 'utf8', timeout: 60_000 });
}

describe('toeplitz-attention CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tza-cli-'));
  const rng = new Rng(8);
  const q = randomTensor(rng, [2, 300, 4], 1, 'f32');
  const k = randomTensor(rng, [2, 300, 4], 1, 'f32');
  const v = randomTensor(rng, [2, 300, 3]);
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) writeFileSync(join(dir, `${name}.npy`), formatNpy({ shape: t.shape, data: t.data }));
  const files = ['--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy')];

  it('run writes the same result as attention(), whole and streamed in chunks', () => {
    const config = { heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf' as const, count: 8, seed: 3 }, rpe: { past: { bias: [0, -1, -2], tail: { decay: 0.5 } } } };
    const want = attention(config, q, k, v);
    for (const extra of [[], ['--chunk', '64']]) {
      const out = join(dir, `z${extra.length}.npy`);
      const r = cli(['run', ...files, '--out', out, '--count', '8', '--seed', '3', '--bias', '0,-1,-2', '--tail', 'decay:0.5', '--quiet', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      const z = parseNpy(readFileSync(out));
      expect(z.shape).toEqual([2, 300, 3]);
      let diff = 0;
      for (let i = 0; i < z.data.length; i++) diff = Math.max(diff, Math.abs(z.data[i]! - want.data[i]!));
      expect(diff).toBeLessThan(1e-12);
    }
  });

  it('bad arguments and bad files give one line and a non-zero exit', () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['run', ...files, '--out', join(dir, 'x.npy'), '--tail', 'wobble'], /expected clip, zero or decay:<rate >= 0>, got "wobble"/, 2],
      [['run', ...files, '--out', join(dir, 'x.npy'), '--count', '0'], /expected a positive integer, got "0"/, 2],
      [['run', '--q', join(dir, 'missing.npy'), '--k', 'a', '--v', 'b', '--out', 'c'], /cannot read q file .*missing\.npy: ENOENT/, 1],
      [['run', ...files, '--out', join(dir, 'x.npy'), '--bias', '0,nan'], /expected comma-separated numbers/, 2],
      [['frobnicate'], /unknown command 'frobnicate'/, 2],
    ];
    for (const [args, message, code] of cases) {
      const r = cli(args);
      expect(r.status).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    writeFileSync(join(dir, 'bad.npy'), new Uint8Array([1, 2, 3, 4]));
    const r = cli(['run', '--q', join(dir, 'bad.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy'), '--out', join(dir, 'x.npy')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/magic/);
    const shape = cli(['run', '--q', join(dir, 'q.npy'), '--k', join(dir, 'q.npy'), '--v', join(dir, 'q.npy'), '--out', join(dir, 'x.npy'), '--quiet']);
    expect(shape.status).toBe(0); // v may have any valueDim; q as v is valid
    writeFileSync(join(dir, 'short.npy'), formatNpy({ shape: [2, 299, 3], data: new Float64Array(2 * 299 * 3) }));
    const mismatch = cli(['run', ...files.slice(0, 4), '--v', join(dir, 'short.npy'), '--out', join(dir, 'x.npy')]);
    expect(mismatch.status).toBe(1);
    expect(mismatch.stderr).toMatch(/v must have shape \[heads=2, n=300, valueDim=3\], got \[2, 299, 3\]/);
  });

  it('inspect prints the header and verifies the checksum; corrupt files give one line', async () => {
    const { Decoder } = await import('../../src/index.js');
    const { saveSnapshot } = await import('../../src/codec/index.js');
    const dec = new Decoder({ heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8, seed: 3 }, rpe: { past: { bias: [0, -1, -2] } } });
    dec.chunk(q.hi(2, 10, 4), k.hi(2, 10, 4), v.hi(2, 10, 3));
    const path = join(dir, 's.snap');
    saveSnapshot(path, dec);
    const ok = cli(['inspect', path]);
    expect(ok.status, ok.stderr).toBe(0);
    const info = JSON.parse(ok.stdout) as { formatVersion: number; position: number; checksum: { valid: boolean } };
    expect([info.formatVersion, info.position, info.checksum.valid]).toEqual([1, 10, true]);
    const bytes = readFileSync(path);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0xff;
    writeFileSync(path, bytes);
    const bad = cli(['inspect', path]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/corrupt|checksum/);
  });

  it('--help works for every command', () => {
    for (const args of [['--help'], ['run', '--help'], ['bench', '--help'], ['inspect', '--help']]) {
      const r = cli(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: toeplitz-attention/);
    }
  });
});
