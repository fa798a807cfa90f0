// The codec's barrel for the library's own layers (model, sessions, cli): the public entry, plus the internals
// they share (CRC-32, framing, bounded reads). The package's ./codec is public.ts. The format is in FORMAT.md.
// No static Node imports: the root and ./rx entries (which reach saveSnapshot) must bundle for browsers.
// The file functions get node:fs / node:path at call time via process.getBuiltinModule (Node >= 20.16).
export * from './public.js';

export {
  encodeState,
  parseSnapshot,
  checkDecodeOptions,
  readHeader,
  frameSnapshot,
  crc32,
  SNAPSHOT_MAGIC,
  SNAPSHOT_HEADER_BYTES,
  LIBRARY_VERSION,
  DEFAULT_MAX_DERIVED_BYTES,
  type SnapshotHeader,
  type ParsedSnapshot,
} from './snapshot.js';

export { readSnapshotFile, readFileBounded, tempPathFor, type BoundedRead } from './file.js';
