// toeplitz-attention/codec, the package entry: decoder snapshots as bytes and as Node files (DESIGN section 8),
// and the atomic file writers the stream sinks and session stores use. The format is in FORMAT.md.
// Internals (framing, CRC-32, header parsing, bounded reads) stay in ./index.ts for the library's own layers.
import { Decoder } from './decoder.js';
import type { DecodeOptions } from './snapshot.js';

export { Decoder };
export { SnapshotError } from '../core/errors.js';
export { encodeSnapshot, inspectSnapshot, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_READABLE_VERSIONS, type DecodeOptions, type SnapshotInfo } from './snapshot.js';
export { saveSnapshot, loadSnapshot, writeFileAtomic, writeFileAtomicAsync, MAX_SNAPSHOT_FILE_BYTES, type AtomicWriteOptions } from './file.js';

/** Restore a Decoder from snapshot bytes (same as Decoder.restore). */
export function decodeSnapshot(bytes: Uint8Array, options?: DecodeOptions): Decoder {
  return Decoder.restore(bytes, options);
}
