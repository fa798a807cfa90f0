// Snapshot files (Node only): atomic save, bounded load. No static Node imports: the root and ./rx entries
// (which reach writeFileAtomic through checkpoint file sinks) must bundle for browsers, so node:fs and
// node:path are fetched at call time via process.getBuiltinModule (Node >= 20.16).
//
// Reading: the file is stat-ed first; anything but a regular file (a FIFO would block forever, /dev/zero
// would never end) and anything larger than the format allows is refused before one byte is read. The
// format stores the payload length as a uint32, so a snapshot file is at most 18 + (2^32 - 1) bytes; every
// size up to that limit is read (in pieces of at most 1 GiB, since one read(2) call and readFileSync stop
// at 2 GiB), provided the runtime can hold it in one Uint8Array.
//
// Writing: temp file in the same folder (so rename is atomic), fsync, rename, fsync the folder. The
// replaced file keeps its permission bits (and owner, where allowed); a new file gets 0644 minus the umask.
// A symlink is followed: the file it points to is replaced and the link stays.
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import type * as NodeBuffer from 'node:buffer';
import { Decoder } from './decoder.js';
import { SnapshotError } from '../core/errors.js';
import { readHeader, SNAPSHOT_HEADER_BYTES, type DecodeOptions } from './snapshot.js';

/** The largest snapshot file the format allows: the header plus a payload whose length is a uint32. */
export const MAX_SNAPSHOT_FILE_BYTES = SNAPSHOT_HEADER_BYTES + 0xffffffff;
/** Bytes per read call (one read(2) moves at most 2^31 - 1 bytes). */
const READ_PIECE = 1 << 30;
/** Permission bits of a new file, before the umask. */
const NEW_FILE_MODE = 0o644;

type BuiltinGetter = (id: string) => unknown;

function builtin<T>(id: string): T {
  const proc = (globalThis as { process?: { getBuiltinModule?: BuiltinGetter } }).process;
  const mod = proc?.getBuiltinModule?.(id);
  if (mod === undefined) {
    throw new Error(`saveSnapshot/loadSnapshot need Node.js >= 20.16 (process.getBuiltinModule('${id}')); elsewhere store the snapshot bytes yourself and restore with Decoder.restore`);
  }
  return mod as T;
}

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function kindOf(st: Fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Refuse what cannot be a snapshot file, from its stat alone (nothing read yet). */
function checkStat(path: string, st: Fs.Stats, maxBytes: number): void {
  if (!st.isFile()) throw new SnapshotError('not-a-snapshot', `${path} must be a regular file, got ${kindOf(st)}`);
  if (st.size > MAX_SNAPSHOT_FILE_BYTES) {
    throw new SnapshotError('corrupt', `${path} is ${st.size} bytes; a snapshot file is at most ${MAX_SNAPSHOT_FILE_BYTES} bytes (${SNAPSHOT_HEADER_BYTES}-byte header + a payload of at most 2^32 - 1 bytes)`);
  }
  if (st.size > maxBytes) {
    throw new SnapshotError('corrupt', `${path} is ${st.size} bytes, more than this runtime can hold in one buffer (${maxBytes} bytes)`);
  }
}

/**
 * The bytes of a snapshot file, read with bounded memory: refuses non-regular files and files larger than
 * the format allows (SnapshotError) before reading, and files that do not start with a snapshot header
 * before reading past it. I/O failures are the fs error (ENOENT, EACCES, ...).
 */
export function readSnapshotFile(path: string): Uint8Array {
  const fs = builtin<typeof Fs>('node:fs');
  const maxBytes = Math.min(MAX_SNAPSHOT_FILE_BYTES, builtin<typeof NodeBuffer>('node:buffer').constants.MAX_LENGTH);
  checkStat(path, fs.statSync(path), maxBytes); // before open: opening a FIFO blocks, opening a device may act
  // O_NONBLOCK: if the path was swapped for a FIFO since the stat, open returns at once (fstat refuses it)
  const fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    checkStat(path, st, maxBytes);
    const size = st.size;
    // the header first: a file that is no snapshot is refused before its bulk is allocated or read
    const head = new Uint8Array(Math.min(size, SNAPSHOT_HEADER_BYTES));
    const got = readFully(fs, fd, head, 0);
    try {
      readHeader(head.subarray(0, got));
    } catch (error) {
      const code = (error as SnapshotError).code;
      if (code === 'not-a-snapshot' || code === 'unsupported-version') throw error;
      // 'truncated' / 'corrupt' need the whole file: decided by the decoder below
    }
    if (got < head.length) return head.slice(0, got);
    const bytes = new Uint8Array(size);
    bytes.set(head, 0);
    const n = readFully(fs, fd, bytes, head.length);
    if (n < size) return bytes.subarray(0, n); // shrank while read: the decoder reports it truncated
    if (fs.readSync(fd, new Uint8Array(1), 0, 1, size) !== 0) {
      throw new SnapshotError('corrupt', `${path} grew while it was read (${size} bytes at first)`);
    }
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** Read into bytes from offset `from` until full or end of file; returns the end offset. */
function readFully(fs: typeof Fs, fd: number, bytes: Uint8Array, from: number): number {
  let off = from;
  while (off < bytes.length) {
    const n = fs.readSync(fd, bytes, off, Math.min(READ_PIECE, bytes.length - off), off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

/** The temp file name writeFileAtomic writes before renaming it over `path` (same folder, so rename is atomic). */
export function tempPathFor(path: string): string {
  const { join, dirname, basename } = builtin<typeof Path>('node:path');
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  return join(dirname(path), `.${basename(path)}.${pid}.${randomHex(4)}.tmp`);
}

/** The file a write to `path` replaces (a symlink's target), and its stat if it exists. */
function targetOf(fs: typeof Fs, path: string): { target: string; existing: Fs.Stats | null } {
  const link = fs.lstatSync(path, { throwIfNoEntry: false });
  if (link === undefined) return { target: path, existing: null };
  if (!link.isSymbolicLink()) return { target: path, existing: link };
  const target = fs.realpathSync(path); // a dangling link throws ENOENT naming it
  return { target, existing: fs.statSync(target, { throwIfNoEntry: false }) ?? null };
}

/**
 * Write bytes to `path` atomically: a crash at any point leaves either the old file or the new one, never
 * a mix. The temp file is removed when anything fails (e.g. `path` is a directory: the rename's EISDIR).
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const fs = builtin<typeof Fs>('node:fs');
  const { dirname } = builtin<typeof Path>('node:path');
  const { target, existing } = targetOf(fs, path);
  const keep = existing !== null && existing.isFile() ? existing : null;
  const tmp = tempPathFor(target);
  const fd = fs.openSync(tmp, 'wx', keep !== null ? keep.mode & 0o777 : NEW_FILE_MODE);
  let closed = false;
  let renamed = false;
  try {
    if (keep !== null) {
      fs.fchmodSync(fd, keep.mode & 0o777); // exactly the old bits, whatever the umask
      const proc = globalThis.process;
      if (typeof proc.getuid === 'function' && (keep.uid !== proc.getuid() || keep.gid !== proc.getgid?.())) {
        try {
          fs.fchownSync(fd, keep.uid, keep.gid);
        } catch {
          // only a privileged process may give a file away: the new file is then ours
        }
      }
    }
    let off = 0;
    while (off < bytes.length) off += fs.writeSync(fd, bytes, off, Math.min(READ_PIECE, bytes.length - off));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    closed = true;
    fs.renameSync(tmp, target);
    renamed = true;
  } finally {
    if (!renamed) {
      if (!closed) {
        try {
          fs.closeSync(fd);
        } catch {
          // already closed
        }
      }
      try {
        fs.unlinkSync(tmp);
      } catch {
        // nothing to clean
      }
    }
  }
  // make the rename itself durable (not supported on every platform: best effort)
  try {
    const dfd = fs.openSync(dirname(target), 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // directories cannot be opened or fsynced here (e.g. Windows)
  }
}

/** Snapshot a decoder into a file, atomically: a crash mid-write leaves the previous file intact. */
export function saveSnapshot(path: string, decoder: Decoder): void {
  writeFileAtomic(path, decoder.snapshot());
}

/** Restore a decoder from a snapshot file; bad contents are a SnapshotError, I/O failures the fs error. */
export function loadSnapshot(path: string, options: DecodeOptions = {}): Decoder {
  return Decoder.restore(readSnapshotFile(path), options);
}
