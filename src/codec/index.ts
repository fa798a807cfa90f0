// toeplitz-attention/codec: decoder snapshots (bytes and Node files). The format is in FORMAT.md.
// No static Node imports: the root and ./rx entries (which reach saveSnapshot) must bundle for browsers.
// The file functions get node:fs / node:path at call time via process.getBuiltinModule (Node >= 20.16).
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import { Decoder } from './decoder.js';
import { SnapshotError } from '../core/errors.js';
import { encodeSnapshot, type DecodeOptions } from './snapshot.js';

export { Decoder };

/** Restore a Decoder from snapshot bytes (same as Decoder.restore). */
export function decodeSnapshot(bytes: Uint8Array, options?: DecodeOptions): Decoder {
  return Decoder.restore(bytes, options);
}

export {
  encodeSnapshot,
  encodeState,
  parseSnapshot,
  checkDecodeOptions,
  inspectSnapshot,
  readHeader,
  crc32,
  SNAPSHOT_MAGIC,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_READABLE_VERSIONS,
  SNAPSHOT_HEADER_BYTES,
  LIBRARY_VERSION,
  DEFAULT_MAX_DERIVED_BYTES,
  type DecodeOptions,
  type SnapshotHeader,
  type SnapshotInfo,
  type ParsedSnapshot,
} from './snapshot.js';

type BuiltinGetter = (id: string) => unknown;

function builtin<T>(id: string): T {
  const proc = (globalThis as { process?: { getBuiltinModule?: BuiltinGetter } }).process;
  const mod = proc?.getBuiltinModule?.(id);
  if (mod === undefined) {
    throw new Error(`saveSnapshot/loadSnapshot need Node.js >= 20.16 (process.getBuiltinModule('${id}')); elsewhere store encodeSnapshot's bytes yourself and restore with decodeSnapshot`);
  }
  return mod as T;
}

function randomHex(bytes: number): string {
  const b = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The temp file name saveSnapshot writes before renaming it over `path` (same folder, so rename is atomic). */
export function tempPathFor(path: string): string {
  const { join, dirname, basename } = builtin<typeof Path>('node:path');
  const pid = (globalThis as { process?: { pid?: number } }).process?.pid ?? 0;
  return join(dirname(path), `.${basename(path)}.${pid}.${randomHex(4)}.tmp`);
}

/** Write bytes to `path` atomically: temp file in the same folder, fsync, rename, fsync the folder. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const { openSync, writeSync, fsyncSync, closeSync, renameSync, unlinkSync } = builtin<typeof Fs>('node:fs');
  const { dirname } = builtin<typeof Path>('node:path');
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'wx', 0o644);
  let renamed = false;
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to clean
      }
    }
  }
  // make the rename itself durable (not supported on every platform: best effort)
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // directories cannot be opened or fsynced here (e.g. Windows)
  }
}

/** Snapshot a decoder into a file, atomically: a crash mid-write leaves the previous file intact. */
export function saveSnapshot(path: string, decoder: Decoder): void {
  writeFileAtomic(path, encodeSnapshot(decoder));
}

/** Restore a decoder from a snapshot file; bad contents are a SnapshotError, I/O failures the fs error. */
export function loadSnapshot(path: string, options: DecodeOptions = {}): Decoder {
  const buf = builtin<typeof Fs>('node:fs').readFileSync(path);
  return decodeSnapshot(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), options);
}

export { SnapshotError };
