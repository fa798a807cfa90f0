// toeplitz-attention/codec: decoder snapshots (bytes and Node files). The format is in FORMAT.md.
// No static Node imports: the root and ./rx entries (which reach saveSnapshot) must bundle for browsers.
// The file functions get node:fs / node:path at call time via process.getBuiltinModule (Node >= 20.16).
import { Decoder } from './decoder.js';
import { SnapshotError } from '../core/errors.js';
import type { DecodeOptions } from './snapshot.js';

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

export { saveSnapshot, loadSnapshot, readSnapshotFile, readFileBounded, writeFileAtomic, writeFileAtomicAsync, tempPathFor, MAX_SNAPSHOT_FILE_BYTES, type AtomicWriteOptions, type BoundedRead } from './file.js';

export { SnapshotError };
