// The CLI end to end. Most cases call main() in-process (fast; stdout, stderr and the exit code are
// captured); a few spawn the CLI from the sources as a user runs it. The compiled CLI installed from the
// packed tarball is exercised by scripts/consumer-check.mjs.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attention, Decoder, drawProjection } from '../../src/index.js';
import type { AttentionConfig } from '../../src/index.js';
import { saveSnapshot, SNAPSHOT_FORMAT_VERSION } from '../../src/codec/index.js';
import { formatNpy, parseNpy } from '../../src/cli/npy.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';
import { cli, type CliResult } from './runCli.js';


/** The CLI as a separate process, from the sources (through tsx). */
function spawnCli(args: string[]): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/cli/entry.ts', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLine(r: CliResult, code: number, message: RegExp): void {
  expect(r.status, r.stderr).toBe(code);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr).not.toMatch(/unexpected error/);
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

describe('toeplitz-attention CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tza-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const rng = new Rng(8);
  const [heads, n, d, dv] = [2, 300, 4, 3];
  const q = randomTensor(rng, [heads, n, d], 1, 'f32');
  const k = randomTensor(rng, [heads, n, d], 1, 'f32');
  const v = randomTensor(rng, [heads, n, dv]);
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) writeFileSync(join(dir, `${name}.npy`), formatNpy({ shape: t.shape, data: t.data }));
  const files = ['--q', join(dir, 'q.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy')];
  const npy = (name: string, shape: number[], data: Float64Array | Float32Array): string => {
    const path = join(dir, name);
    writeFileSync(path, formatNpy({ shape, data }));
    return path;
  };
  const readZ = (path: string) => parseNpy(readFileSync(path));
  const base = (rpe: AttentionConfig['rpe'], features: AttentionConfig['features'] = { kind: 'prf', count: 8, seed: 3 }): AttentionConfig => ({ heads, keyDim: d, valueDim: dv, features, rpe });

  it('run writes the same result as attention(), whole and streamed in chunks', async () => {
    const want = attention(base({ past: { bias: [0, -1, -2], tail: { decay: 0.5 } } }), q, k, v);
    for (const extra of [[], ['--chunk', '64']]) {
      const out = join(dir, `z${extra.length}.npy`);
      const r = await cli(['run', ...files, '--out', out, '--count', '8', '--seed', '3', '--bias', '0,-1,-2', '--tail', 'decay:0.5', '--quiet', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      const z = readZ(out);
      expect(z.shape).toEqual([heads, n, dv]);
      expect(maxDiff(z.data, want.data)).toBeLessThan(1e-12);
    }
  });

  it('export-projection writes the W a seed gives, and run --projection W equals run --seed', async () => {
    for (const orthogonal of [true, false]) {
      const out = join(dir, `W-${orthogonal}.npy`);
      const r = await cli(['export-projection', '--count', '8', '--key-dim', String(d), '--seed', '3', '--out', out, ...(orthogonal ? [] : ['--no-orthogonal'])]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/wrote .*\[8, 4\] float64 \(seed 3/);
      const w = parseNpy(readFileSync(out));
      expect(w.dtype).toBe('float64');
      expect(w.shape).toEqual([8, d]);
      expect(Array.from(w.data)).toEqual(Array.from(drawProjection(8, d, 3, orthogonal)));
    }
    const seeded = join(dir, 'z-seed.npy');
    const viaW = join(dir, 'z-w.npy');
    expect((await cli(['run', ...files, '--out', seeded, '--count', '8', '--seed', '3', '--bias', '0,-1', '--quiet'])).status).toBe(0);
    const r = await cli(['run', ...files, '--out', viaW, '--projection', join(dir, 'W-true.npy'), '--bias', '0,-1', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(Array.from(readZ(viaW).data)).toEqual(Array.from(readZ(seeded).data)); // bit-identical
  });

  it('run --projection takes a float32 W (as numpy users save it) and checks its shape', async () => {
    const w32 = Float32Array.from(drawProjection(16, d, 11), (x) => x * 0.9);
    const path = npy('W32.npy', [16, d], w32);
    const out = join(dir, 'z-w32.npy');
    const r = await cli(['run', ...files, '--out', out, '--projection', path, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const want = attention(base({ past: { bias: [0] } }, { kind: 'prf', count: 16, projection: w32 }), q, k, v);
    expect(maxDiff(readZ(out).data, want.data)).toBe(0);
    const exported = await cli(['export-projection', '--count', '16', '--key-dim', String(d), '--seed', '11', '--dtype', 'float32', '--out', join(dir, 'W-f32.npy'), '--quiet']);
    expect(exported.status, exported.stderr).toBe(0);
    const back = parseNpy(readFileSync(join(dir, 'W-f32.npy')));
    expect(back.dtype).toBe('float32');
    expect(Array.from(back.data)).toEqual(Array.from(Float32Array.from(drawProjection(16, d, 11))));

    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', npy('W-bad.npy', [16, d + 1], new Float64Array(16 * (d + 1)))]), 1, /--projection .* has shape \[16, 5\] but q has keyDim 4: expected \[count, 4\]/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', npy('W-3d.npy', [1, 16, d], new Float64Array(16 * d))]), 1, /must have shape \[count, keyDim\], got \[1, 16, 4\]/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', path, '--count', '8']), 2, /--count 8 disagrees with --projection/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', path, '--seed', '1']), 2, /cannot be used with/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', path, '--features', 'relu']), 2, /--projection applies to --features prf only/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--projection', join(dir, 'nope.npy')]), 1, /--projection file not found: .*nope\.npy/);
  });

  it('--bias-npy takes [K] for all heads and [heads, K] per head', async () => {
    const out = join(dir, 'z-b.npy');
    const shared = [0, -0.5, -1.25];
    let r = await cli(['run', ...files, '--out', out, '--count', '8', '--seed', '3', '--bias-npy', npy('b1.npy', [3], Float64Array.from(shared)), '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(maxDiff(readZ(out).data, attention(base({ past: { bias: shared } }), q, k, v).data)).toBe(0);

    const perHead = [[0, -0.5, -1], [0.25, -2, -3]];
    r = await cli(['run', ...files, '--out', out, '--count', '8', '--seed', '3', '--bias-npy', npy('b2.npy', [2, 3], Float32Array.from(perHead.flat())), '--tail', 'zero', '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const want = attention(base(perHead.map((bias) => ({ past: { bias, tail: 'zero' as const } }))), q, k, v);
    expect(maxDiff(readZ(out).data, want.data)).toBe(0);
    // per head really differs from one shared table
    expect(maxDiff(want.data, attention(base({ past: { bias: perHead[0]!, tail: 'zero' } }), q, k, v).data)).toBeGreaterThan(1e-3);

    expectOneLine(await cli(['run', ...files, '--out', out, '--bias-npy', npy('b3.npy', [3, 3], new Float64Array(9))]), 1, /has shape \[3, 3\] but q has 2 heads: expected \[K\] or \[2, K\]/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--bias-npy', npy('b0.npy', [0], new Float64Array(0))]), 1, /holds no biases/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--bias-npy', npy('b4.npy', [1, 2, 3], new Float64Array(6))]), 1, /must have shape \[K\] or \[heads, K\], got \[1, 2, 3\]/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--bias-npy', join(dir, 'missing-bias.npy')]), 1, /--bias-npy file not found: .*missing-bias\.npy/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--bias-npy', dir]), 1, /--bias-npy file .* is a directory/);
    expectOneLine(await cli(['run', ...files, '--out', out, '--bias', '0', '--bias-npy', join(dir, 'b1.npy')]), 2, /cannot be used with option '--bias/);
  });

  it('malformed lists and numbers are refused with one line and exit 2', async () => {
    const out = join(dir, 'x.npy');
    for (const bias of ['', ',-1', '0,', '1,,2', ' ', '0x10', '1e', 'nan', 'inf', '+Infinity', '0;1']) {
      expectOneLine(await cli(['run', ...files, '--out', out, '--bias', bias]), 2, /expected comma-separated numbers \(or -inf\)/);
      expectOneLine(await cli(['run', ...files, '--out', out, '--future-bias', bias]), 2, /expected comma-separated numbers/);
    }
    expect((await cli(['run', ...files, '--out', out, '--bias', ' 0, -1.5e-1 ,-inf', '--quiet'])).status).toBe(0);
    const cases: Array<[string[], RegExp]> = [
      [['--tail', 'wobble'], /expected clip, zero or decay:<rate >= 0>, got "wobble"/],
      [['--tail', 'decay:'], /expected clip, zero or decay/],
      [['--tail', 'decay:-1'], /expected clip, zero or decay/],
      [['--count', '0'], /expected a positive integer, got "0"/],
      [['--count', ''], /expected a positive integer/],
      [['--count', '2.5'], /expected a positive integer/],
      [['--seed', ''], /expected a number, got ""/],
      [['--method', 'magic'], /Allowed choices are auto, fft, direct/],
      [['--features', 'softmax'], /Allowed choices are prf, elu\+1, relu/],
      [['--normalize', 'l3'], /Allowed choices are l2, scale, none/],
      [['--chunk', '8', '--bidirectional'], /cannot be combined with --bidirectional/],
    ];
    for (const [extra, message] of cases) expectOneLine(await cli(['run', ...files, '--out', out, ...extra]), 2, message);
    expectOneLine(await cli(['frobnicate']), 2, /unknown command 'frobnicate'/);
    expectOneLine(await cli(['export-projection', '--count', '4', '--out', out]), 2, /required option '--key-dim <d>' not specified/);
  });

  it('bad input files say what is wrong in one line', async () => {
    const out = join(dir, 'x.npy');
    expectOneLine(await cli(['run', '--q', join(dir, 'missing.npy'), '--k', 'a', '--v', 'b', '--out', out]), 1, /q file not found: .*missing\.npy/);
    writeFileSync(join(dir, 'bad.npy'), new Uint8Array([1, 2, 3, 4]));
    expectOneLine(await cli(['run', '--q', join(dir, 'bad.npy'), '--k', join(dir, 'k.npy'), '--v', join(dir, 'v.npy'), '--out', out]), 1, /q file .*bad\.npy: .*magic/);
    const shape = await cli(['run', '--q', join(dir, 'q.npy'), '--k', join(dir, 'q.npy'), '--v', join(dir, 'q.npy'), '--out', out, '--quiet']);
    expect(shape.status).toBe(0); // v may have any valueDim; q as v is valid
    npy('short.npy', [2, 299, 3], new Float64Array(2 * 299 * 3));
    expectOneLine(await cli(['run', ...files.slice(0, 4), '--v', join(dir, 'short.npy'), '--out', out]), 1, /v must have shape \[heads=2, n=300, valueDim=3\], got \[2, 299, 3\]/);
  });

  it('output paths: a missing folder or a directory is refused up front, and no temp file is left', async () => {
    const outDir = join(dir, 'outs');
    mkdirSync(outDir);
    const before = readdirSync(outDir);
    expectOneLine(await cli(['run', ...files, '--out', outDir]), 1, /--out .*outs names a directory; give a file path/);
    expectOneLine(await cli(['export-projection', '--count', '4', '--key-dim', '4', '--out', outDir]), 1, /names a directory/);
    expect(readdirSync(outDir)).toEqual(before);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    expectOneLine(await cli(['run', ...files, '--out', join(dir, 'no', 'such', 'z.npy')]), 1, /output folder does not exist: .*no\/such \(--out /);
    expectOneLine(await cli(['export-projection', '--count', '4', '--key-dim', '4', '--out', join(dir, 'nope', 'W.npy')]), 1, /output folder does not exist/);
    writeFileSync(join(dir, 'plain'), 'x');
    expectOneLine(await cli(['run', ...files, '--out', join(dir, 'plain', 'z.npy')]), 1, /output folder .*plain is not a directory/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('replacing an output file keeps its permission bits', async () => {
    const out = join(dir, 'private.npy');
    writeFileSync(out, 'old');
    chmodSync(out, 0o600);
    const r = await cli(['export-projection', '--count', '4', '--key-dim', '4', '--out', out, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(parseNpy(readFileSync(out)).shape).toEqual([4, 4]);
  });

  it('inspect prints the header and refuses what restore refuses: bad checksum, crafted payloads, non-files', async () => {
    const dec = new Decoder({ heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8, seed: 3 }, rpe: { past: { bias: [0, -1, -2] } } });
    dec.chunk(q.hi(2, 10, 4), k.hi(2, 10, 4), v.hi(2, 10, 3));
    const path = join(dir, 's.snap');
    saveSnapshot(path, dec);
    const ok = await cli(['inspect', path]);
    expect(ok.status, ok.stderr).toBe(0);
    const info = JSON.parse(ok.stdout) as { formatVersion: number; position: number; checksum: { valid: boolean } };
    expect([info.formatVersion, info.position, info.checksum.valid]).toEqual([SNAPSHOT_FORMAT_VERSION, 10, true]);

    const good = readFileSync(path);
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 0xff;
    writeFileSync(join(dir, 'flipped.snap'), flipped);
    expectOneLine(await cli(['inspect', join(dir, 'flipped.snap')]), 1, /corrupt|checksum/);

    // a payload with a correct CRC that restore refuses: config.heads says 3, the state holds 2 heads
    const crafted = Uint8Array.from(good);
    const key = [0xa5, ...Buffer.from('heads'), 0x02];
    const at = crafted.findIndex((_, i) => key.every((b, j) => crafted[i + j] === b));
    expect(at).toBeGreaterThan(18);
    crafted[at + key.length - 1] = 0x03;
    new DataView(crafted.buffer).setUint32(14, crc32(crafted.subarray(18)), true);
    writeFileSync(join(dir, 'crafted.snap'), crafted);
    expect(() => Decoder.restore(crafted)).toThrow();
    const refused = await cli(['inspect', join(dir, 'crafted.snap')]);
    expect(refused.status).not.toBe(0);
    expectOneLine(refused, 1, /refused by restore|inconsistent/);

    expectOneLine(await cli(['inspect', join(dir, 'nothing.snap')]), 1, /snapshot file not found: .*nothing\.snap/);
    expectOneLine(await cli(['inspect', dir]), 1, /is a directory/);
    if (process.platform !== 'win32' && existsSync('/dev/zero')) {
      expectOneLine(await cli(['inspect', '/dev/zero']), 1, /not a regular file/);
    }
    const fifo = join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status === 0) expectOneLine(await cli(['inspect', fifo]), 1, /not a regular file/); // would hang if read
  });

  it('bench is a repository command: the CLI points to npm run bench', async () => {
    expectOneLine(await cli(['bench']), 1, /npm run bench/);
    expectOneLine(await cli(['bench', 'prefill', '--fast']), 1, /npm run bench/);
    expect((await cli(['--help'])).stdout).not.toMatch(/bench/);
  });

  it('--version prints the package version; --help works for every command', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
    for (const args of [['--help'], ['run', '--help'], ['export-projection', '--help'], ['inspect', '--help']]) {
      const r = await cli(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/Usage: toeplitz-attention/);
    }
    expect((await cli(['run', '--help'])).stdout).toMatch(/--projection <file>[\s\S]*--bias-npy <file>/);
  });

  it('as a separate process: exit codes and one-line errors', () => {
    const version = spawnCli(['--version']);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expectOneLine(spawnCli(['run', ...files, '--out', join(dir, 'x.npy'), '--bias', ',-1']), 2, /expected comma-separated numbers/);
    expectOneLine(spawnCli(['run', ...files, '--out', join(dir, 'gone', 'x.npy')]), 1, /output folder does not exist/);
    const ok = spawnCli(['run', ...files, '--out', join(dir, 'spawned.npy'), '--count', '8', '--seed', '3', '--bias', '0,-1,-2', '--tail', 'decay:0.5', '--chunk', '64']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/wrote .*spawned\.npy: \[2, 300, 3\] float64/);
    expect(Array.from(readZ(join(dir, 'spawned.npy')).data)).toEqual(Array.from(readZ(join(dir, 'z2.npy')).data));
  });
});
