// Snapshot files: loadSnapshot refuses what is not a regular file, or is larger than the format allows,
// before reading (no unbounded memory, no hang); saveSnapshot is atomic, keeps the replaced file's mode and
// leaves no temp file behind when it fails.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, readlinkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder, SnapshotError } from '../../src/index.js';
import { loadSnapshot, readSnapshotFile, saveSnapshot, MAX_SNAPSHOT_FILE_BYTES, SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC } from '../../src/codec/index.js';
import { makeCalls, runCalls } from './streams.js';

const posix = process.platform !== 'win32';
const GiB = 2 ** 30;

function decoder(): Decoder {
  const dec = new Decoder({ heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 1 }, rpe: { past: { bias: [0, -0.5, -1], tail: { decay: 0.2 } } } });
  runCalls(dec, makeCalls(5, 2, 3, 2, [1, 4, 1, 2]));
  return dec;
}

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'ta-file-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusal(fn: () => unknown): SnapshotError {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(SnapshotError);
  return error as SnapshotError;
}

/** A sparse file of `size` bytes that starts with `head` (a regular file; no disk blocks for the rest). */
function sparse(path: string, size: number, head: Uint8Array = new Uint8Array(0)): void {
  writeFileSync(path, head);
  truncateSync(path, size);
}

function header(version: number, payloadBytes: number): Uint8Array {
  const h = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  h.set(SNAPSHOT_MAGIC, 0);
  const view = new DataView(h.buffer);
  view.setUint16(8, version, true);
  view.setUint32(10, payloadBytes, true);
  return h;
}

/** Run fn and return how much the process's ArrayBuffer memory grew meanwhile. */
function grown(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

describe('loadSnapshot: bounded reads', () => {
  it('round trip through saveSnapshot / loadSnapshot / readSnapshotFile', () => {
    withDir((dir) => {
      const dec = decoder();
      const path = join(dir, 'a.snap');
      saveSnapshot(path, dec);
      expect(Buffer.from(readSnapshotFile(path)).equals(Buffer.from(dec.snapshot()))).toBe(true);
      expect(Buffer.from(loadSnapshot(path).snapshot()).equals(Buffer.from(dec.snapshot()))).toBe(true);
    });
  });

  it.runIf(posix && existsSync('/dev/zero'))('/dev/zero is refused at once (not a regular file), memory does not grow', () => {
    let e: SnapshotError | null = null;
    expect(grown(() => (e = refusal(() => loadSnapshot('/dev/zero'))))).toBeLessThan(1 << 20);
    expect(e!.code).toBe('not-a-snapshot');
    expect(e!.message).toBe('not-a-snapshot: /dev/zero must be a regular file, got a character device');
  });

  it.runIf(posix)('a FIFO is refused without blocking', () => {
    withDir((dir) => {
      const fifo = join(dir, 'pipe');
      execFileSync('mkfifo', [fifo]);
      const t0 = performance.now();
      const e = refusal(() => loadSnapshot(fifo));
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(e.message).toBe(`not-a-snapshot: ${fifo} must be a regular file, got a FIFO`);
    });
  });

  it('a directory is refused', () => {
    withDir((dir) => expect(refusal(() => loadSnapshot(dir)).message).toBe(`not-a-snapshot: ${dir} must be a regular file, got a directory`));
  });

  it('a file larger than the format allows is refused before reading (sparse file)', () => {
    withDir((dir) => {
      const path = join(dir, 'huge.snap');
      sparse(path, MAX_SNAPSHOT_FILE_BYTES + 1, header(1, 0xffffffff));
      expect(MAX_SNAPSHOT_FILE_BYTES).toBe(18 + 0xffffffff);
      let e: SnapshotError | null = null;
      expect(grown(() => (e = refusal(() => loadSnapshot(path))))).toBeLessThan(1 << 20);
      expect(e!.code).toBe('corrupt');
      expect(e!.message).toBe(`corrupt: ${path} is ${MAX_SNAPSHOT_FILE_BYTES + 1} bytes; a snapshot file is at most ${MAX_SNAPSHOT_FILE_BYTES} bytes (18-byte header + a payload of at most 2^32 - 1 bytes)`);
    });
  });

  it('a 3 GiB file (legal size) that is no snapshot is refused from its header, without reading the rest', () => {
    withDir((dir) => {
      const zeros = join(dir, 'zeros.bin');
      sparse(zeros, 3 * GiB);
      const newer = join(dir, 'newer.snap');
      sparse(newer, 3 * GiB, header(999, 3 * GiB - SNAPSHOT_HEADER_BYTES));
      const t0 = performance.now();
      let a: SnapshotError | null = null;
      let b: SnapshotError | null = null;
      const growth = grown(() => {
        a = refusal(() => loadSnapshot(zeros));
        b = refusal(() => loadSnapshot(newer));
      });
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(growth).toBeLessThan(1 << 20);
      expect(a!.code).toBe('not-a-snapshot');
      expect(b!.code).toBe('unsupported-version');
    });
  });

  it('empty and truncated files are SnapshotErrors from the decoder', () => {
    withDir((dir) => {
      const bytes = decoder().snapshot();
      const empty = join(dir, 'empty.snap');
      writeFileSync(empty, new Uint8Array(0));
      expect(refusal(() => loadSnapshot(empty)).code).toBe('truncated');
      const cut = join(dir, 'cut.snap');
      writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
      expect(refusal(() => loadSnapshot(cut)).code).toBe('truncated');
      const long = join(dir, 'long.snap');
      writeFileSync(long, Buffer.concat([bytes, Buffer.from([0])]));
      expect(refusal(() => loadSnapshot(long)).code).toBe('corrupt');
    });
  });

  it('a missing file is the fs error', () => {
    withDir((dir) => expect(() => loadSnapshot(join(dir, 'nope.snap'))).toThrow(expect.objectContaining({ code: 'ENOENT' })));
  });

  // Reads a 2.5 GiB sparse snapshot-shaped file for real (several 1 GiB reads, past readFileSync's 2 GiB
  // limit): slow and memory hungry, so only on demand (TA_BIG_FILES=1).
  it.runIf(process.env.TA_BIG_FILES === '1')('a file between 2 and 4 GiB is read (chunked) and judged on its contents', { timeout: 600_000 }, () => {
    withDir((dir) => {
      const size = 2.5 * GiB;
      const path = join(dir, 'big.snap');
      sparse(path, size, header(1, size - SNAPSHOT_HEADER_BYTES));
      const bytes = readSnapshotFile(path);
      expect(bytes.length).toBe(size);
      expect(refusal(() => loadSnapshot(path)).code).toBe('corrupt'); // checksum of the zero payload
    });
  });
});

describe('saveSnapshot: atomic, keeps the mode', () => {
  it.runIf(posix)('saving over a 0600 file keeps 0600 (and 0640 keeps 0640)', () => {
    withDir((dir) => {
      for (const mode of [0o600, 0o640, 0o444]) {
        const path = join(dir, `m${mode.toString(8)}.snap`);
        writeFileSync(path, 'old');
        chmodSync(path, mode);
        saveSnapshot(path, decoder());
        expect(statSync(path).mode & 0o777).toBe(mode);
        expect(loadSnapshot(path).position).toBe(8);
      }
    });
  });

  it.runIf(posix)('a new file gets 0644 minus the umask', () => {
    withDir((dir) => {
      const path = join(dir, 'new.snap');
      saveSnapshot(path, decoder());
      const umask = process.umask();
      expect(statSync(path).mode & 0o777).toBe(0o644 & ~umask);
    });
  });

  it('saving onto a directory fails with the fs error and leaves no temp file', () => {
    withDir((dir) => {
      const target = join(dir, 'out.snap');
      mkdirSync(target);
      writeFileSync(join(target, 'inside'), 'x');
      expect(() => saveSnapshot(target, decoder())).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST|EPERM)$/) }));
      expect(readdirSync(dir)).toEqual(['out.snap']);
      expect(readdirSync(target)).toEqual(['inside']);
    });
  });

  it('saving into a missing folder fails with ENOENT and creates nothing', () => {
    withDir((dir) => {
      expect(() => saveSnapshot(join(dir, 'missing', 'a.snap'), decoder())).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(readdirSync(dir)).toEqual([]);
    });
  });

  it.runIf(posix)('saving through a symlink replaces the file it points to; the link stays', () => {
    withDir((dir) => {
      const real = join(dir, 'real.snap');
      const link = join(dir, 'latest.snap');
      writeFileSync(real, 'old');
      chmodSync(real, 0o600);
      symlinkSync('real.snap', link);
      const dec = decoder();
      saveSnapshot(link, dec);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe('real.snap');
      expect(statSync(real).mode & 0o777).toBe(0o600);
      expect(Buffer.from(readFileSync(real)).equals(Buffer.from(dec.snapshot()))).toBe(true);
      expect(loadSnapshot(link).position).toBe(8);
      expect(readdirSync(dir).sort()).toEqual(['latest.snap', 'real.snap']);
    });
  });

  it('replacing keeps the old file intact until the rename (a reader sees old or new bytes, never a mix)', () => {
    withDir((dir) => {
      const path = join(dir, 'a.snap');
      const a = decoder();
      saveSnapshot(path, a);
      const fd = openSync(path, 'r'); // an open reader keeps the old inode
      const b = decoder();
      runCalls(b, makeCalls(6, 2, 3, 2, [3]));
      saveSnapshot(path, b);
      const old = Buffer.alloc(a.snapshot().length + 1);
      const n = readSync(fd, old, 0, old.length, 0);
      closeSync(fd);
      expect(n).toBe(old.length - 1);
      expect(old.subarray(0, n).equals(Buffer.from(a.snapshot()))).toBe(true);
      expect(loadSnapshot(path).position).toBe(11);
    });
  });
});
