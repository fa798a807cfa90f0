// Snapshot files (Node only): atomic save, bounded load. No static Node imports: the root and ./rx entries
// (which reach writeFileAtomic through checkpoint file sinks) must bundle for browsers, so node:fs and
// node:path are fetched at call time via process.getBuiltinModule (Node >= 20.16).
//
// Reading (readFileBounded, shared with the model's files): the file is stat-ed first; anything but a regular
// file (a FIFO would block forever, /dev/zero would never end) and anything larger than the format allows
// is refused before one byte is read, then its header before the rest. The
// format stores the payload length as a uint32, so a snapshot file is at most 18 + (2^32 - 1) bytes; every
// size up to that limit is read (in pieces of at most 1 GiB, since one read(2) call and readFileSync stop
// at 2 GiB), provided the runtime can hold it in one Uint8Array.
//
// Writing: temp file in the same folder (so rename is atomic), fsync, rename, fsync the folder. The
// replaced file keeps its permission bits (and owner, where allowed); a new file gets 0644 minus the umask.
// A symlink is followed: the file it points to is replaced and the link stays. This is the library's one
// atomic writer (the CLI's outputs and the file: session store use it too), written once as a sequence of
// steps with a sync and an async driver.
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

/** How readFileBounded refuses a file and decides, from its first bytes, how much of it to read. */
export interface BoundedRead {
  /** largest file accepted (from its stat, before anything is read) */
  maxBytes: number;
  /** what maxBytes is, for the message (e.g. 'a snapshot file is at most ... bytes') */
  limit: string;
  /** bytes of the format's fixed header, read first */
  headBytes: number;
  /**
   * Called with the first bytes read (at most `want` of them: fewer when the file ends) and the file's
   * size; throws to refuse the file before its bulk is read, returns a larger count to read more of the
   * head first (e.g. a header whose length the fixed part announces), or undefined to read the rest.
   */
  checkHead(head: Uint8Array, size: number): number | undefined;
  /** the error for a path that is not a regular file ('not-regular') or is larger than allowed ('too-large') */
  refuse(reason: 'not-regular' | 'too-large', message: string): Error;
}

/** Refuse what cannot be read, from its stat alone (nothing read yet). */
function checkStat(path: string, st: Fs.Stats, maxBytes: number, o: BoundedRead): void {
  if (!st.isFile()) throw o.refuse('not-regular', `${path} must be a regular file, got ${kindOf(st)}`);
  if (st.size > o.maxBytes) throw o.refuse('too-large', `${path} is ${st.size} bytes; ${o.limit}`);
  if (st.size > maxBytes) throw o.refuse('too-large', `${path} is ${st.size} bytes, more than this runtime can hold in one buffer (${maxBytes} bytes)`);
}

/**
 * A file's bytes read with bounded memory and time: stat first, and anything but a regular file (a FIFO
 * would block forever, /dev/zero would never end) or larger than `o.maxBytes` refused before one byte is
 * read; then its head, which `o.checkHead` may refuse (or extend) before the bulk is allocated or read.
 * A file that shrinks while read is returned short (the format's decoder reports it truncated); one that
 * grows is refused. I/O failures are the fs error (ENOENT, EACCES, ...).
 */
export function readFileBounded(path: string, o: BoundedRead): Uint8Array {
  const fs = builtin<typeof Fs>('node:fs');
  const maxBytes = Math.min(o.maxBytes, builtin<typeof NodeBuffer>('node:buffer').constants.MAX_LENGTH);
  checkStat(path, fs.statSync(path), maxBytes, o); // before open: opening a FIFO blocks, opening a device may act
  // O_NONBLOCK: if the path was swapped for a FIFO since the stat, open returns at once (fstat refuses it)
  const fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    checkStat(path, st, maxBytes, o);
    const size = st.size;
    // the head first: a file that is not of the format is refused before its bulk is allocated or read
    let head = new Uint8Array(0);
    let want: number | undefined = Math.min(size, o.headBytes);
    while (want !== undefined) {
      const more = new Uint8Array(Math.min(size, want));
      more.set(head, 0);
      const got = readFully(fs, fd, more, head.length);
      head = more.subarray(0, got);
      if (got < more.length) return head.slice(); // shrank while read
      const next = o.checkHead(head, size);
      want = next !== undefined && next > head.length && head.length < size ? next : undefined;
    }
    if (head.length >= size) return head;
    const bytes = new Uint8Array(size);
    bytes.set(head, 0);
    const n = readFully(fs, fd, bytes, head.length);
    if (n < size) return bytes.subarray(0, n); // shrank while read
    if (fs.readSync(fd, new Uint8Array(1), 0, 1, size) !== 0) throw o.refuse('too-large', `${path} grew while it was read (${size} bytes at first)`);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

const SNAPSHOT_READ: BoundedRead = {
  maxBytes: MAX_SNAPSHOT_FILE_BYTES,
  limit: `a snapshot file is at most ${MAX_SNAPSHOT_FILE_BYTES} bytes (${SNAPSHOT_HEADER_BYTES}-byte header + a payload of at most 2^32 - 1 bytes)`,
  headBytes: SNAPSHOT_HEADER_BYTES,
  checkHead(head) {
    try {
      readHeader(head);
    } catch (error) {
      const code = (error as SnapshotError).code;
      if (code === 'not-a-snapshot' || code === 'unsupported-version') throw error;
      // 'truncated' / 'corrupt' need the whole file: decided by the decoder
    }
    return undefined;
  },
  refuse: (reason, message) => new SnapshotError(reason === 'not-regular' ? 'not-a-snapshot' : 'corrupt', message),
};

/**
 * The bytes of a snapshot file, read with bounded memory: refuses non-regular files and files larger than
 * the format allows (SnapshotError) before reading, and files that do not start with a snapshot header
 * before reading past it. I/O failures are the fs error (ENOENT, EACCES, ...).
 */
export function readSnapshotFile(path: string): Uint8Array {
  return readFileBounded(path, SNAPSHOT_READ);
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

/** One file-system call of the atomic write, run by a sync or an async driver (see atomicSteps). */
type Step =
  | { fs: 'lstat' | 'realpath' | 'stat' | 'open' | 'fchmod' | 'fchown' | 'write' | 'fsync' | 'close' | 'rename' | 'link' | 'unlink'; args: unknown[] }
  | { call: () => unknown };

/** Options of writeFileAtomic / writeFileAtomicAsync. */
export interface AtomicWriteOptions {
  /** fail with EEXIST instead of replacing an existing file (published with link(2), which never replaces) */
  noReplace?: boolean;
  /**
   * Called after the bytes are durable in the temp file, just before they are published (renamed or
   * linked into place); throwing cancels the write (the temp file is removed). A store checks its lease
   * here. With writeFileAtomic (sync) it must not return a promise.
   */
  beforePublish?: () => unknown;
}

function errno(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

/**
 * The atomic write as a sequence of file-system calls, written once for both drivers: a temp file in
 * the target's folder (so the rename is atomic), the replaced file's mode (and owner where allowed)
 * kept, fsync, publish (rename over the target, or link for noReplace), fsync the folder. A symlink is
 * followed: the file it points to is replaced and the link stays. On any failure the temp file is removed.
 */
function* atomicSteps(path: string, bytes: Uint8Array, o: AtomicWriteOptions): Generator<Step, void, any> {
  const { dirname } = builtin<typeof Path>('node:path');
  // the file a write to `path` replaces (a symlink's target), and its stat if it exists
  let target = path;
  let keep: Fs.Stats | null = null;
  let link: Fs.Stats | null = null;
  try {
    link = yield { fs: 'lstat', args: [path] };
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
  if (link !== null) {
    if (link.isSymbolicLink()) {
      target = yield { fs: 'realpath', args: [path] }; // a dangling link throws ENOENT naming it
      try {
        const st: Fs.Stats = yield { fs: 'stat', args: [target] };
        keep = st.isFile() ? st : null;
      } catch (e) {
        if (errno(e) !== 'ENOENT') throw e;
      }
    } else keep = link.isFile() ? link : null;
  }
  const tmp = tempPathFor(target);
  const fd: number = yield { fs: 'open', args: [tmp, 'wx', keep !== null ? keep.mode & 0o777 : NEW_FILE_MODE] };
  let closed = false;
  let published = false;
  try {
    if (keep !== null) {
      yield { fs: 'fchmod', args: [fd, keep.mode & 0o777] }; // exactly the old bits, whatever the umask
      const proc = globalThis.process;
      if (typeof proc.getuid === 'function' && (keep.uid !== proc.getuid() || keep.gid !== proc.getgid?.())) {
        try {
          yield { fs: 'fchown', args: [fd, keep.uid, keep.gid] };
        } catch {
          // only a privileged process may give a file away: the new file is then ours
        }
      }
    }
    let off = 0;
    while (off < bytes.length) off += (yield { fs: 'write', args: [fd, bytes, off, Math.min(READ_PIECE, bytes.length - off)] }) as number;
    yield { fs: 'fsync', args: [fd] };
    yield { fs: 'close', args: [fd] };
    closed = true;
    if (o.beforePublish !== undefined) yield { call: o.beforePublish };
    if (o.noReplace === true) {
      yield { fs: 'link', args: [tmp, target] }; // EEXIST when taken: never replaces
      published = true;
      yield { fs: 'unlink', args: [tmp] };
    } else {
      yield { fs: 'rename', args: [tmp, target] };
      published = true;
    }
  } finally {
    if (!published) {
      if (!closed) {
        try {
          yield { fs: 'close', args: [fd] };
        } catch {
          // already closed
        }
      }
      try {
        yield { fs: 'unlink', args: [tmp] };
      } catch {
        // nothing to clean
      }
    }
  }
  // make the rename itself durable (not supported on every platform: best effort)
  try {
    const dfd: number = yield { fs: 'open', args: [dirname(target), 'r'] };
    try {
      yield { fs: 'fsync', args: [dfd] };
    } finally {
      yield { fs: 'close', args: [dfd] };
    }
  } catch {
    // directories cannot be opened or fsynced here (e.g. Windows)
  }
}

/**
 * Write bytes to `path` atomically: a crash at any point leaves either the old file or the new one, never
 * a mix. The temp file is removed when anything fails (e.g. `path` is a directory: the rename's EISDIR).
 */
export function writeFileAtomic(path: string, bytes: Uint8Array, options: AtomicWriteOptions = {}): void {
  const fs = builtin<typeof Fs>('node:fs') as unknown as Record<string, (...a: unknown[]) => unknown>;
  const steps = atomicSteps(path, bytes, options);
  let r = steps.next();
  while (!r.done) {
    const s = r.value;
    let value: unknown;
    try {
      value = 'call' in s ? s.call() : fs[`${s.fs}Sync`]!(...s.args);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
}

/** writeFileAtomic without blocking the thread: the same steps through the async fs calls (libuv's pool). */
export async function writeFileAtomicAsync(path: string, bytes: Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const fs = builtin<typeof Fs>('node:fs') as unknown as Record<string, (...a: unknown[]) => unknown>;
  const call = (name: string, args: unknown[]): Promise<unknown> =>
    new Promise((resolve, reject) => fs[name]!(...args, (err: unknown, value: unknown) => (err ? reject(err) : resolve(value))));
  const steps = atomicSteps(path, bytes, options);
  let r = steps.next();
  while (!r.done) {
    const s = r.value;
    let value: unknown;
    try {
      value = 'call' in s ? await s.call() : await call(s.fs, s.fs === 'write' ? [...s.args, null] : s.args);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
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
