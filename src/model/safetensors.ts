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
import { describe } from '../core/errors.js';
import { ModelError } from './errors.js';

export type Dtype = 'F32' | 'F64';

const ITEM_BYTES: Record<Dtype, number> = { F32: 4, F64: 8 };

/** Headers larger than this are refused (a real one is a few KB; the reference implementation caps at 100 MB). */
export const MAX_HEADER_BYTES = 16 << 20;
const MAX_RANK = 8;

/** One tensor's place in the file. `begin`/`end` are byte offsets relative to the data section. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
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
  for (const key of Object.keys(e)) if (!ENTRY_KEYS.has(key)) headerError(`header entry "${name}" has an unknown key "${key}" (expected dtype, shape, data_offsets)`);
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

/** Parse and check a safetensors file's layout; no tensor is converted yet. */
export function parseSafetensors(bytes: Uint8Array, maxHeaderBytes = MAX_HEADER_BYTES): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) throw new ModelError('header', `model bytes must be a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8) throw new ModelError('truncated', `a safetensors file starts with an 8-byte header length, got ${bytes.length} bytes in all`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerBytes = hi * 0x100000000 + lo;
  if (headerBytes > bytes.length - 8) {
    throw new ModelError('truncated', `the header length field says ${headerBytes} bytes, but only ${bytes.length - 8} bytes follow it`);
  }
  if (headerBytes > maxHeaderBytes) headerError(`the header length must be at most ${maxHeaderBytes} bytes, got ${headerBytes}`);
  if (headerBytes < 2) headerError(`the header must be a JSON object of at least 2 bytes, got a length of ${headerBytes}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes));
  } catch {
    headerError(`the ${headerBytes}-byte header must be UTF-8 text, got invalid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    headerError(`the header must be JSON, got a parse error: ${(e as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) headerError(`the header must be a JSON object, got ${describe(json)}`);
  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) headerError(`__metadata__ must be an object of strings, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') headerError(`__metadata__.${k} must be a string, got ${describe(v)}`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
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
  return { bytes, dataStart, metadata, tensors, byName: new Map(tensors.map((t) => [t.name, t])) };
}

/** The values of one tensor as float64 (F32 widens exactly), checked finite. */
export function readTensor(file: SafetensorsFile, entry: TensorEntry): Float64Array {
  const { bytes } = file;
  const view = new DataView(bytes.buffer, bytes.byteOffset + file.dataStart + entry.begin, entry.end - entry.begin);
  const out = new Float64Array(entry.size);
  const f32 = entry.dtype === 'F32';
  for (let i = 0; i < entry.size; i++) {
    const x = f32 ? view.getFloat32(4 * i, true) : view.getFloat64(8 * i, true);
    if (!Number.isFinite(x)) tensorError(`tensor "${entry.name}" must hold finite values, got ${describe(x)} at flat index ${i}`);
    out[i] = x;
  }
  return out;
}

/** A tensor to write: values in C order. dtype defaults to the array's own (Float32Array -> F32, else F64). */
export interface TensorInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array | Float64Array;
  readonly dtype?: Dtype;
}

/** Encode tensors (in the given order) and string metadata as safetensors bytes (data 8-byte aligned). */
export function encodeSafetensors(tensors: readonly TensorInput[], metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = { ...metadata };
  let offset = 0;
  const dtypes: Dtype[] = [];
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new ModelError('tensor', `tensor names must be unique and not "__metadata__", got "${t.name}" twice or reserved`);
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
