// safetensors, read and written (https://github.com/huggingface/safetensors, the format of DESIGN section 9):
//   [8 bytes: header length N, unsigned little-endian]
//   [N bytes: JSON header, UTF-8 (writers pad it with spaces so the data starts 8-byte aligned)]
//   [data: every tensor raw little-endian, C order, back to back, no gaps, nothing after the last]
// The header maps each tensor name to { dtype, shape, data_offsets: [begin, end] } (relative to the start
// of the data) and "__metadata__" to a { string: string } map.
//
// The reader checks the whole layout (lengths, JSON, entries, offsets in bounds, contiguous, covering the
// data) before anything is allocated from the declared sizes; values are checked finite as they are read.
// Only F32 and F64 are supported: a model runs in float64, and F32 widens exactly.
import { describe, ModelError } from '../core/errors.js';

export type DType = 'F32' | 'F64';

const ITEM_BYTES: Record<DType, number> = { F32: 4, F64: 8 };

/** Headers larger than this are refused (a real one is a few KB; the reference implementation caps at 100 MB). */
export const MAX_HEADER_BYTES = 16 << 20;
const MAX_RANK = 8;

/** One tensor's place in the file. `begin`/`end` are byte offsets relative to the data section. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** number of elements (product of shape) */
  readonly size: number;
  readonly begin: number;
  readonly end: number;
}

/** A parsed file: the layout, checked; the bytes, not yet converted. */
export interface SafetensorsFile {
  readonly bytes: Uint8Array;
  /** absolute offset of the data section: 8 + header length */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** in data order */
  readonly tensors: readonly TensorEntry[];
  readonly byName: ReadonlyMap<string, TensorEntry>;
}

function headerError(message: string): never {
  throw new ModelError('header', message);
}

function tensorError(message: string): never {
  throw new ModelError('tensor', message);
}

const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function parseEntry(name: string, value: unknown, dataBytes: number): TensorEntry {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    headerError(`header entry "${name}" must be an object { dtype, shape, data_offsets }, got ${describe(value)}`);
  }
  const e = value as Record<string, unknown>;
  for (const key of Object.keys(e)) if (!ENTRY_KEYS.has(key)) headerError(`header entry ${someNames([name])} has an unknown key ${someNames([key])} (expected dtype, shape, data_offsets)`);
  const dtype = e.dtype;
  if (dtype !== 'F32' && dtype !== 'F64') tensorError(`tensor "${name}" must have dtype "F32" or "F64", got ${describe(dtype)}`);
  const shape = e.shape;
  if (!Array.isArray(shape) || shape.length > MAX_RANK) headerError(`tensor "${name}" must have a shape array of rank <= ${MAX_RANK}, got ${describe(shape)}`);
  const item = ITEM_BYTES[dtype];
  let size = 1;
  for (const s of shape as unknown[]) {
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 0) headerError(`tensor "${name}" has a shape entry that is not an integer >= 0: ${JSON.stringify(shape)}`);
    size *= s;
    // bounded by the data section at every step, so the product stays exact
    if (size * item > dataBytes) tensorError(`tensor "${name}" of shape [${(shape as number[]).join(', ')}] ${dtype} needs more bytes than the data section holds (${dataBytes})`);
  }
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) headerError(`tensor "${name}" must have data_offsets [begin, end], got ${describe(offsets)}`);
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin || end > dataBytes) {
    tensorError(`tensor "${name}" must have data_offsets 0 <= begin <= end <= ${dataBytes} (the data section), got ${JSON.stringify(offsets)}`);
  }
  if (end - begin !== size * item) {
    tensorError(`tensor "${name}" of shape [${(shape as number[]).join(', ')}] ${dtype} must span ${size * item} bytes, got data_offsets [${begin}, ${end}] (${end - begin} bytes)`);
  }
  return { name, dtype, shape: (shape as number[]).slice(), size, begin, end };
}

/** Most keys `__metadata__` may hold, and the longest key and value (characters): a real file has one key, "config". */
export const MAX_METADATA_KEYS = 256;
export const MAX_METADATA_KEY_CHARS = 1024;
export const MAX_METADATA_VALUE_CHARS = 4 * 2 ** 20;
/** Most tensors a header may list (a toeplitz-lm file has 11 per layer + 3, at most 1024 layers). */
export const MAX_TENSORS = 1 << 14;
/** Most JSON keys a header may hold (each tensor entry has 4, the metadata its own, 1 for "__metadata__"), counted before it is parsed. */
export const MAX_HEADER_KEYS = 4 * MAX_TENSORS + MAX_METADATA_KEYS + 1;

/**
 * JSON object keys in a header (a ':' outside strings), counted over the bytes before JSON.parse: a 16 MiB
 * header of a million keys takes seconds to parse into objects, a byte scan takes milliseconds.
 */
function countKeys(bytes: Uint8Array, from: number, to: number): number {
  let keys = 0;
  let inString = false;
  for (let i = from; i < to; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x3a) keys++;
  }
  return keys;
}

/** At most `max` names of a list for a message, then how many there are in all. */
export function someNames(names: readonly string[], max = 8): string {
  const shown = names.slice(0, max).map((n) => JSON.stringify(n.length > 64 ? n.slice(0, 64) + '…' : n));
  return names.length > max ? `${shown.join(', ')}, … (${names.length} in all)` : shown.join(', ');
}

/**
 * The header length a file's first 8 bytes announce, checked against the file's size and the cap
 * (`first8` may be shorter when the file is: then it is 'truncated').
 */
export function safetensorsHeaderLength(first8: Uint8Array, fileBytes: number, maxHeaderBytes = MAX_HEADER_BYTES): number {
  if (first8.length < 8 || fileBytes < 8) throw new ModelError('truncated', `a safetensors file starts with an 8-byte header length, got ${Math.min(first8.length, fileBytes)} bytes in all`);
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const headerBytes = view.getUint32(4, true) * 0x100000000 + view.getUint32(0, true);
  if (headerBytes > fileBytes - 8) {
    throw new ModelError('truncated', `the header length field says ${headerBytes} bytes, but only ${fileBytes - 8} bytes follow it`);
  }
  if (headerBytes > maxHeaderBytes) headerError(`the header length must be at most ${maxHeaderBytes} bytes, got ${headerBytes}`);
  if (headerBytes < 2) headerError(`the header must be a JSON object of at least 2 bytes, got a length of ${headerBytes}`);
  return headerBytes;
}

/** A file's layout, from its header alone. */
export type SafetensorsLayout = Omit<SafetensorsFile, 'bytes'>;

/**
 * Parse and check the layout from the file's first 8 + N bytes (at least; the rest is not looked at) and
 * the file's total size: so a file reader can refuse a file, or learn it is exactly as long as its header
 * says, before reading the data.
 */
export function parseSafetensorsLayout(head: Uint8Array, fileBytes: number, maxHeaderBytes = MAX_HEADER_BYTES): SafetensorsLayout {
  const headerBytes = safetensorsHeaderLength(head, fileBytes, maxHeaderBytes);
  if (head.length < 8 + headerBytes) throw new ModelError('truncated', `the header length field says ${headerBytes} bytes, but only ${head.length - 8} were given`);
  const keyCount = countKeys(head, 8, 8 + headerBytes);
  if (keyCount > MAX_HEADER_KEYS) {
    headerError(`the header must hold at most ${MAX_HEADER_KEYS} JSON keys (${MAX_TENSORS} tensors of 4 keys, ${MAX_METADATA_KEYS} metadata keys), got ${keyCount}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + headerBytes));
  } catch {
    headerError(`the ${headerBytes}-byte header must be UTF-8 text, got invalid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    headerError(`the header must be JSON, got a parse error: ${(e as Error).message.slice(0, 200)}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) headerError(`the header must be a JSON object, got ${describe(json)}`);
  const dataStart = 8 + headerBytes;
  const dataBytes = fileBytes - dataStart;
  // a null-prototype copy: names such as "__proto__" or "constructor" are plain keys, and nothing inherited is read
  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const names = Object.keys(json);
  if (names.length > MAX_TENSORS + 1) headerError(`the header must list at most ${MAX_TENSORS} tensors, got ${names.length - 1} or more`);
  const tensors: TensorEntry[] = [];
  for (const name of names) {
    const value = (json as Record<string, unknown>)[name];
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) headerError(`__metadata__ must be an object of strings, got ${describe(value)}`);
      const keys = Object.keys(value);
      if (keys.length > MAX_METADATA_KEYS) headerError(`__metadata__ must hold at most ${MAX_METADATA_KEYS} keys, got ${keys.length} (${someNames(keys)})`);
      for (const k of keys) {
        const v = (value as Record<string, unknown>)[k];
        if (k.length > MAX_METADATA_KEY_CHARS) headerError(`__metadata__ keys must be at most ${MAX_METADATA_KEY_CHARS} characters, got one of ${k.length} (${someNames([k])})`);
        if (typeof v !== 'string') headerError(`__metadata__[${someNames([k])}] must be a string, got ${describe(v)}`);
        if (v.length > MAX_METADATA_VALUE_CHARS) headerError(`__metadata__[${someNames([k])}] must be at most ${MAX_METADATA_VALUE_CHARS} characters, got ${v.length}`);
        metadata[k] = v;
      }
      continue;
    }
    if (name.length > MAX_METADATA_KEY_CHARS) headerError(`tensor names must be at most ${MAX_METADATA_KEY_CHARS} characters, got one of ${name.length} (${someNames([name])})`);
    tensors.push(parseEntry(name, value, dataBytes));
  }
  // the data is the tensors back to back: sorted by begin, each starts where the previous ended
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let previous = 'the start of the data';
  for (const t of tensors) {
    if (t.begin !== at) {
      tensorError(`tensor "${t.name}" starts at data byte ${t.begin}, expected ${at} (the end of ${previous}): the tensors ${t.begin < at ? 'overlap' : 'leave a gap'}`);
    }
    at = t.end;
    previous = `tensor "${t.name}"`;
  }
  if (at !== dataBytes) headerError(`the data section must end with the last tensor at byte ${at}, got ${dataBytes - at} extra bytes after it`);
  metadata = Object.freeze(metadata);
  return { dataStart, metadata, tensors, byName: new Map(tensors.map((t) => [t.name, t])) };
}

/** Parse and check a safetensors file's layout; no tensor is converted yet. */
export function parseSafetensors(bytes: Uint8Array, maxHeaderBytes = MAX_HEADER_BYTES): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new ModelError('header', `model bytes must be a Uint8Array, got ${describe(bytes)}`);
  return { bytes, ...parseSafetensorsLayout(bytes, bytes.length, maxHeaderBytes) };
}

/** The largest float32: the toeplitz-lm format promises weights in its range, whatever the file's dtype. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** The values of one tensor as float64 (F32 widens exactly), checked finite and, when given, |x| <= maxAbs. */
export function readTensor(file: SafetensorsFile, entry: TensorEntry, maxAbs = Infinity): Float64Array {
  const { bytes } = file;
  const view = new DataView(bytes.buffer, bytes.byteOffset + file.dataStart + entry.begin, entry.end - entry.begin);
  const out = new Float64Array(entry.size);
  const f32 = entry.dtype === 'F32';
  for (let i = 0; i < entry.size; i++) {
    const x = f32 ? view.getFloat32(4 * i, true) : view.getFloat64(8 * i, true);
    if (!Number.isFinite(x)) tensorError(`tensor "${entry.name}" must hold finite values, got ${describe(x)} at flat index ${i}`);
    if (Math.abs(x) > maxAbs) tensorError(`tensor "${entry.name}" must hold values with |x| <= ${maxAbs}, got ${x} at flat index ${i}`);
    out[i] = x;
  }
  return out;
}

/** A tensor to write: values in C order. dtype defaults to the array's own (Float32Array -> F32, else F64). */
export interface TensorInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array;
  readonly dtype?: DType;
}

/** Encode tensors (in the given order) and string metadata as safetensors bytes (data 8-byte aligned). */
export function encodeSafetensors(tensors: readonly TensorInput[], metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  // null prototype: a tensor named "constructor" or "toString" is a name like any other (the reader agrees)
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  const keys = Object.keys(metadata);
  if (keys.length > MAX_METADATA_KEYS) throw new ModelError('header', `metadata must hold at most ${MAX_METADATA_KEYS} keys, got ${keys.length}`);
  for (const k of keys) if (typeof metadata[k] !== 'string') throw new ModelError('header', `metadata[${someNames([k])}] must be a string, got ${describe(metadata[k])}`);
  if (keys.length > 0) header.__metadata__ = Object.assign(Object.create(null) as Record<string, string>, metadata);
  let offset = 0;
  const dtypes: DType[] = [];
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new ModelError('tensor', `tensor names must be unique and not "__metadata__", got "${t.name}" twice or reserved`);
    const dtype = t.dtype ?? (t.data instanceof Float32Array ? 'F32' : 'F64');
    if (dtype !== 'F32' && dtype !== 'F64') throw new ModelError('tensor', `tensor "${t.name}" dtype must be "F32" or "F64", got ${describe(dtype)}`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((s) => Number.isInteger(s) && s >= 0) || size !== t.data.length) {
      throw new ModelError('tensor', `tensor "${t.name}" of shape [${t.shape.join(', ')}] needs ${size} values, got ${t.data.length}`);
    }
    const bytes = size * ITEM_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape.slice(), data_offsets: [offset, offset + bytes] };
    dtypes.push(dtype);
    offset += bytes;
  }
  let text = JSON.stringify(header);
  const encoder = new TextEncoder();
  let headerBytes = encoder.encode(text).length;
  text += ' '.repeat((8 - ((8 + headerBytes) % 8)) % 8);
  const head = encoder.encode(text);
  headerBytes = head.length;
  const out = new Uint8Array(8 + headerBytes + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes % 0x100000000, true);
  view.setUint32(4, Math.floor(headerBytes / 0x100000000), true);
  out.set(head, 8);
  let at = 8 + headerBytes;
  tensors.forEach((t, i) => {
    if (dtypes[i] === 'F32') for (let j = 0; j < t.data.length; j++, at += 4) view.setFloat32(at, t.data[j]!, true);
    else for (let j = 0; j < t.data.length; j++, at += 8) view.setFloat64(at, t.data[j]!, true);
  });
  return out;
}
