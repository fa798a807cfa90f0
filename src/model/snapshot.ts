// Session snapshot bytes: a small binary layout of its own (all little-endian), checked on the way in.
//
//   offset  size  field
//   0       8     magic "\x89TZLMSS\n" (toeplitz-lm session)
//   8       2     format version (uint16): 2 is written; 1 and 2 are read
//   10      2     flags (uint16): bit 0 = the sampler's validUtf8 (snapshots from before it have 0: restored
//                 with the mask off, as they ran); other bits 0
//   12      4     payload length N (uint32)
//   16      4     CRC-32 of the payload (uint32, zlib's)
//   20      N     payload:
//                   32 bytes  model fingerprint (SHA-256 of config and weights)
//                   f64 x 6   position, seed, draws, temperature, topK, topP
//                   [v2 only] u32 x 4  the sampler generator's state (xoshiro128** words), so restore is O(1)
//                   [v2 only] u8 backend the session ran on (0 'js', 1 'wasm'), u8 dtype (0 'float64', 1
//                             'float32'; snapshots from before the option have 0: float64, as they ran), 2 bytes 0
//                   u8        pending UTF-8 byte count (0..3), then 3 bytes (unused ones 0)
//                   u32       V: length of the last logits (0 before the first token, else vocab)
//                   f64 x V   last logits (what the next token is sampled from)
//                   u32       layers
//                   per layer: u32 length, then that many bytes of decoder.snapshot()
// The file is exactly 20 + N bytes. Version 1 has no generator state (restore advances a generator from the
// seed by `draws`, in O(log draws)) and no backend (the layers' decoder snapshots record theirs).
import { crc32 } from '../codec/index.js';
import { describe, ModelError } from '../core/errors.js';

export const SESSION_MAGIC = Uint8Array.of(0x89, 0x54, 0x5a, 0x4c, 0x4d, 0x53, 0x53, 0x0a);
export const SESSION_FORMAT_VERSION = 2;
/** Versions restore reads. */
export const SESSION_READABLE_VERSIONS: readonly number[] = [1, 2];
const BACKENDS = ['js', 'wasm'] as const;
/** the dtype byte's values (index = byte) */
const DTYPES = ['float64', 'float32'] as const;
export const SESSION_HEADER_BYTES = 20;
/** flags bit 0: the sampler masks bytes that would make the output invalid UTF-8 */
const FLAG_VALID_UTF8 = 1;

/** Everything a session snapshot holds, as plain data. */
export interface SessionParts {
  fingerprint: Uint8Array; // [32]
  position: number;
  seed: number;
  draws: number;
  temperature: number;
  topK: number;
  topP: number;
  validUtf8: boolean; // flags bit 0
  pending: Uint8Array; // [0..3]
  lastLogits: Float64Array; // [0] or [vocab]
  decoders: Uint8Array[]; // one decoder snapshot per layer
  /** v2: the generator's 4 state words; null in a v1 snapshot */
  rngWords: readonly number[] | null;
  /** v2: the backend the session ran on; null in a v1 snapshot */
  backend: 'js' | 'wasm' | null;
  /** the session's dtype ('float64' for v1 and for v2 snapshots from before the option: their byte is 0) */
  dtype: 'float64' | 'float32';
  version: number;
}

/** What encodeSession writes (version 1 only for compatibility fixtures and tests). */
export type SessionWrite = Omit<SessionParts, 'version' | 'rngWords' | 'backend' | 'dtype'> & { rngWords: readonly number[]; backend: 'js' | 'wasm'; dtype?: 'float64' | 'float32' };

export function encodeSession(p: SessionWrite, version = SESSION_FORMAT_VERSION): Uint8Array {
  const v2 = version >= 2;
  const dtype = p.dtype ?? 'float64';
  if (!v2 && dtype !== 'float64') throw new RangeError('a version 1 session snapshot cannot record a float32 session');
  const N = 32 + 6 * 8 + (v2 ? 20 : 0) + 4 + 4 + 8 * p.lastLogits.length + 4 + p.decoders.reduce((s, d) => s + 4 + d.length, 0);
  const out = new Uint8Array(SESSION_HEADER_BYTES + N);
  const view = new DataView(out.buffer);
  out.set(SESSION_MAGIC, 0);
  view.setUint16(8, version, true);
  view.setUint16(10, p.validUtf8 ? FLAG_VALID_UTF8 : 0, true);
  view.setUint32(12, N, true);
  let at = SESSION_HEADER_BYTES;
  out.set(p.fingerprint, at);
  at += 32;
  for (const x of [p.position, p.seed, p.draws, p.temperature, p.topK, p.topP]) {
    view.setFloat64(at, x, true);
    at += 8;
  }
  if (v2) {
    for (let i = 0; i < 4; i++, at += 4) view.setUint32(at, p.rngWords[i]!, true);
    out[at] = BACKENDS.indexOf(p.backend);
    out[at + 1] = DTYPES.indexOf(dtype);
    at += 4;
  }
  out[at] = p.pending.length;
  out.set(p.pending, at + 1);
  at += 4;
  view.setUint32(at, p.lastLogits.length, true);
  at += 4;
  for (let i = 0; i < p.lastLogits.length; i++, at += 8) view.setFloat64(at, p.lastLogits[i]!, true);
  view.setUint32(at, p.decoders.length, true);
  at += 4;
  for (const d of p.decoders) {
    view.setUint32(at, d.length, true);
    out.set(d, at + 4);
    at += 4 + d.length;
  }
  view.setUint32(16, crc32(out.subarray(SESSION_HEADER_BYTES)), true);
  return out;
}

function bad(message: string): never {
  throw new ModelError('snapshot', message);
}

/**
 * Check a session snapshot's header (the first SESSION_HEADER_BYTES of `head`) against the snapshot's
 * total size: magic, version, flags, and a payload length that accounts for every byte. A file reader
 * calls it before reading the payload. Returns the payload length.
 */
export function checkSessionHeader(head: Uint8Array, total: number): number {
  if (head.length < SESSION_HEADER_BYTES || total < SESSION_HEADER_BYTES) throw new ModelError('truncated', `a session snapshot starts with a ${SESSION_HEADER_BYTES}-byte header, got ${Math.min(head.length, total)} bytes in all`);
  for (let i = 0; i < SESSION_MAGIC.length; i++) {
    if (head[i] !== SESSION_MAGIC[i]) bad(`not a toeplitz-lm session snapshot: expected the magic bytes 89 54 5a 4c 4d 53 53 0a, got ${Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ')}`);
  }
  const view = new DataView(head.buffer, head.byteOffset, SESSION_HEADER_BYTES);
  const version = view.getUint16(8, true);
  if (!SESSION_READABLE_VERSIONS.includes(version)) bad(`unsupported session snapshot version: expected one of ${SESSION_READABLE_VERSIONS.join(', ')}, got ${version}`);
  const flags = view.getUint16(10, true);
  if ((flags & ~FLAG_VALID_UTF8) !== 0) bad(`session snapshot flags must be 0 or 1 (bit 0: validUtf8), got ${flags}`);
  const N = view.getUint32(12, true);
  if (total < SESSION_HEADER_BYTES + N) throw new ModelError('truncated', `the session snapshot declares a ${N}-byte payload, but only ${total - SESSION_HEADER_BYTES} bytes follow the header`);
  if (total > SESSION_HEADER_BYTES + N) bad(`the session snapshot declares a ${N}-byte payload, got ${total - SESSION_HEADER_BYTES - N} extra bytes after it`);
  return N;
}

/**
 * Parse session snapshot bytes: header, exact length, checksum, then every field in bounds. Sizes are
 * checked against what the bytes hold before anything is allocated; `vocab` and `layers` are the model's.
 */
export function decodeSession(bytes: Uint8Array, vocab: number, layers: number): SessionParts {
  if (!(bytes instanceof Uint8Array)) bad(`a session snapshot must be a Uint8Array, got ${describe(bytes)}`);
  checkSessionHeader(bytes, bytes.length);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(8, true);
  const flags = view.getUint16(10, true);
  const stored = view.getUint32(16, true);
  const computed = crc32(bytes.subarray(SESSION_HEADER_BYTES));
  if (stored !== computed) bad(`checksum mismatch: the header says CRC-32 ${stored.toString(16).padStart(8, '0')}, the payload has ${computed.toString(16).padStart(8, '0')} (corrupted bytes)`);
  let at = SESSION_HEADER_BYTES;
  const end = bytes.length;
  const need = (n: number, what: string): void => {
    if (at + n > end) bad(`the payload ends before ${what} (${n} bytes needed at offset ${at}, ${end - at} left)`);
  };
  need(32 + 48 + (version >= 2 ? 20 : 0) + 8, 'the fixed fields');
  const fingerprint = bytes.slice(at, at + 32);
  at += 32;
  const f = (): number => {
    const x = view.getFloat64(at, true);
    at += 8;
    return x;
  };
  const [position, seed, draws, temperature, topK, topP] = [f(), f(), f(), f(), f(), f()] as [number, number, number, number, number, number];
  let rngWords: number[] | null = null;
  let backend: 'js' | 'wasm' | null = null;
  let dtype: 'float64' | 'float32' = 'float64';
  if (version >= 2) {
    rngWords = [];
    for (let i = 0; i < 4; i++, at += 4) rngWords.push(view.getUint32(at, true));
    if (rngWords.every((w) => w === 0)) bad('the sampler generator state must not be all zero');
    const b = bytes[at]!;
    if (b >= BACKENDS.length) bad(`the backend byte must be 0 ('js') or 1 ('wasm'), got ${b}`);
    backend = BACKENDS[b]!;
    const t = bytes[at + 1]!;
    if (t >= DTYPES.length) bad(`the dtype byte must be 0 ('float64') or 1 ('float32'), got ${t}`);
    dtype = DTYPES[t]!;
    if (bytes[at + 2] !== 0 || bytes[at + 3] !== 0) bad('the 2 bytes after the dtype byte must be 0');
    at += 4;
  }
  const count = bytes[at]!;
  if (count > 3) bad(`the pending UTF-8 byte count must be 0..3, got ${count}`);
  for (let i = count; i < 3; i++) if (bytes[at + 1 + i] !== 0) bad(`the ${3 - count} unused pending UTF-8 byte slots must be 0, got [${Array.from(bytes.subarray(at + 1 + count, at + 4)).join(', ')}]`);
  const pending = bytes.slice(at + 1, at + 1 + count);
  at += 4;
  const V = view.getUint32(at, true);
  at += 4;
  if (V !== 0 && V !== vocab) bad(`the last logits must hold 0 or ${vocab} (vocab) values, got ${V}`);
  need(8 * V + 4, 'the last logits');
  const lastLogits = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const x = f();
    if (!Number.isFinite(x)) bad(`the last logits must be finite, got ${describe(x)} at index ${i}`);
    lastLogits[i] = x;
  }
  const L = view.getUint32(at, true);
  at += 4;
  if (L !== layers) bad(`the model has ${layers} layers, the snapshot holds ${L} decoder states`);
  const decoders: Uint8Array[] = [];
  for (let l = 0; l < L; l++) {
    need(4, `layer ${l}'s length`);
    const n = view.getUint32(at, true);
    at += 4;
    need(n, `layer ${l}'s decoder snapshot`);
    decoders.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at !== end) bad(`${end - at} unexplained bytes after the last decoder snapshot`);
  return { fingerprint, position, seed, draws, temperature, topK, topP, validUtf8: (flags & FLAG_VALID_UTF8) !== 0, pending, lastLogits, decoders, rngWords, backend, dtype, version };
}
