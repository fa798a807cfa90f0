// NumPy .npy reader and writer, so researchers can hand tensors to the CLI from Python and check
// the outputs there. Format spec: numpy/lib/format.py ("NEP 1"). Only plain float32/float64
// arrays in C order are supported; that is all the attention engine consumes or produces.
//
// Layout: magic "\x93NUMPY", major and minor version bytes, header length (uint16 LE for 1.0,
// uint32 LE for 2.0 and 3.0), then the header — a Python dict literal such as
// {'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } padded with spaces and ending in
// '\n' — then the raw data.

import { HOST_LITTLE_ENDIAN } from '../core/bytes.js';
import { ToeplitzAttentionError } from '../core/errors.js';

/** A .npy file's bytes are refused, or an array cannot be written as .npy. */
export class NpyError extends ToeplitzAttentionError {
  constructor(message: string) {
    super(message);
    this.name = 'NpyError';
  }
}

export interface NpyArray {
  dtype: 'float32' | 'float64';
  shape: number[];
  data: Float32Array | Float64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] as const; // \x93NUMPY
const MAGIC_LEN = MAGIC.length + 2; // magic plus the two version bytes
const ARRAY_ALIGN = 64;
/** NumPy pads headers so the first axis can grow to this many digits in place (np.lib.format). */
const GROWTH_AXIS_MAX_DIGITS = 21;


// ---------------------------------------------------------------------------------------------
// Reading

export function parseNpy(bytes: Uint8Array): NpyArray {
  if (!(bytes instanceof Uint8Array)) {
    throw new NpyError(`expected the bytes of a .npy file as a Uint8Array, got ${typeName(bytes)}`);
  }
  for (let i = 0; i < Math.min(MAGIC.length, bytes.length); i++) {
    if (bytes[i] !== MAGIC[i]) {
      const head = hexBytes(bytes.subarray(0, MAGIC.length));
      const hint =
        bytes[0] === 0x50 && bytes[1] === 0x4b ? ' (this looks like a zip archive, e.g. an .npz: extract the .npy members first)' : '';
      throw new NpyError(
        `expected the .npy magic \\x93NUMPY, got bytes ${head}${hint}`,
      );
    }
  }
  if (bytes.length === 0) throw new NpyError('expected the .npy magic \\x93NUMPY, got an empty file');
  if (bytes.length < MAGIC_LEN) {
    throw new NpyError(
      `truncated header: expected at least ${MAGIC_LEN} bytes for the magic and version, got ${bytes.length}`,
    );
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!((major === 1 || major === 2 || major === 3) && minor === 0)) {
    throw new NpyError(`expected .npy format version 1.0, 2.0 or 3.0, got ${major}.${minor}`);
  }
  const lengthBytes = major === 1 ? 2 : 4;
  const prefixLen = MAGIC_LEN + lengthBytes;
  if (bytes.length < prefixLen) {
    throw new NpyError(
      `truncated header: expected a ${lengthBytes}-byte header length after the version, ` +
        `got ${bytes.length - MAGIC_LEN} byte${bytes.length - MAGIC_LEN === 1 ? '' : 's'}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(MAGIC_LEN, true) : view.getUint32(MAGIC_LEN, true);
  const dataOffset = prefixLen + headerLen;
  if (bytes.length < dataOffset) {
    throw new NpyError(
      `truncated header: the header length field says ${headerLen} bytes, but only ${bytes.length - prefixLen} follow it`,
    );
  }
  const headerText = decodeHeader(bytes.subarray(prefixLen, dataOffset), major);
  const header = interpretHeader(headerText);

  const itemSize = header.dtype === 'float64' ? 8 : 4;
  const count = header.shape.reduce((a, b) => a * b, 1);
  const needed = count * itemSize;
  if (!Number.isSafeInteger(needed)) {
    throw new NpyError(`expected a shape whose size fits in memory, got shape ${pyTuple(header.shape)} of ${header.descr}`);
  }
  const available = bytes.length - dataOffset;
  if (available !== needed) {
    throw new NpyError(
      `data holds ${available} bytes but shape ${pyTuple(header.shape)} of ${header.descr} needs ${needed}` +
        (available < needed ? ' (truncated file?)' : ' (trailing bytes after the array)'),
    );
  }

  // Copy into a fresh, aligned buffer: the payload offset inside `bytes` need not be a multiple
  // of the item size, and the caller's buffer may be reused.
  const data = header.dtype === 'float64' ? new Float64Array(count) : new Float32Array(count);
  if (header.littleEndian === HOST_LITTLE_ENDIAN) {
    new Uint8Array(data.buffer).set(bytes.subarray(dataOffset, dataOffset + needed));
  } else if (header.dtype === 'float64') {
    for (let i = 0; i < count; i++) data[i] = view.getFloat64(dataOffset + i * 8, header.littleEndian);
  } else {
    for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataOffset + i * 4, header.littleEndian);
  }
  return { dtype: header.dtype, shape: header.shape, data };
}

interface Header {
  descr: string;
  dtype: 'float32' | 'float64';
  littleEndian: boolean;
  shape: number[];
}

function decodeHeader(raw: Uint8Array, major: number): string {
  if (major === 3) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new NpyError('expected a UTF-8 header in a version 3.0 .npy file, got invalid UTF-8 bytes');
    }
  }
  // Versions 1.0 and 2.0 are latin-1. (TextDecoder('latin1') is windows-1252, so map by hand.)
  let text = '';
  for (let i = 0; i < raw.length; i++) text += String.fromCharCode(raw[i]!);
  return text;
}

function interpretHeader(text: string): Header {
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    if (err instanceof PyParseError) {
      throw new NpyError(`expected the header to be a Python dict literal, but ${err.message} in ${quoteHeader(text)}`);
    }
    throw err;
  }
  if (dict.kind !== 'dict') {
    throw new NpyError(`expected the header to be a Python dict literal, got ${dict.source}`);
  }
  const entries = new Map<string, PyValue>();
  for (const [key, value] of dict.entries) {
    if (key.kind !== 'str') throw new NpyError(`expected the header's keys to be strings, got ${key.source}`);
    entries.set(key.value, value);
  }
  const keys = [...entries.keys()];
  const wanted = ['descr', 'fortran_order', 'shape'];
  if (keys.length !== wanted.length || !wanted.every((k) => entries.has(k))) {
    throw new NpyError(
      `expected the header to have exactly the keys 'descr', 'fortran_order', 'shape', got ${
        keys.length === 0 ? 'none' : keys.map((k) => `'${k}'`).join(', ')
      }`,
    );
  }
  const descr = entries.get('descr')!;
  const fortran = entries.get('fortran_order')!;
  const shapeValue = entries.get('shape')!;

  if (descr.kind !== 'str') {
    throw new NpyError(
      `expected 'descr' to be a float dtype string '<f4' or '<f8', got ${descr.source}` +
        (descr.kind === 'list' ? ' (a structured dtype)' : ''),
    );
  }
  const m = /^([<>=|])(f4|f8)$/.exec(descr.value);
  if (!m) {
    throw new NpyError(
      `unsupported dtype: expected '<f4' (float32) or '<f8' (float64), got '${descr.value}'` +
        (/^[<>=|]?[iu]\d$/.test(descr.value) ? ' (an integer array: convert it with .astype(np.float64) first)' : ''),
    );
  }
  const order = m[1]!;
  if (order === '|') {
    throw new NpyError(`expected a byte order '<', '>' or '=' for a multi-byte dtype, got '${descr.value}'`);
  }
  // '>' (big-endian) is converted to host order while copying; '=' is the writer's native order,
  // which we can only take to be ours.
  const littleEndian = order === '<' ? true : order === '>' ? false : HOST_LITTLE_ENDIAN;
  const dtype = m[2] === 'f8' ? 'float64' : 'float32';

  if (fortran.kind !== 'bool') {
    throw new NpyError(`expected 'fortran_order' to be False, got ${fortran.source}`);
  }
  if (fortran.value) {
    throw new NpyError(
      "expected 'fortran_order': False (C order), got True: save the array with np.save(path, np.ascontiguousarray(a))",
    );
  }

  if (shapeValue.kind !== 'tuple') {
    throw new NpyError(`expected 'shape' to be a tuple of non-negative integers like (2, 3), got ${shapeValue.source}`);
  }
  const shape: number[] = [];
  for (const item of shapeValue.items) {
    if (item.kind !== 'int' || !Number.isSafeInteger(item.value) || item.value < 0) {
      throw new NpyError(
        `expected 'shape' to be a tuple of non-negative integers like (2, 3), got ${shapeValue.source} (bad entry ${item.source})`,
      );
    }
    shape.push(item.value);
  }
  return { descr: descr.value, dtype, littleEndian, shape };
}

// ---------------------------------------------------------------------------------------------
// A small parser for the Python literals a .npy header may hold (no eval).

type PyValue = { source: string } & (
  | { kind: 'str'; value: string }
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'none' }
  | { kind: 'tuple'; items: PyValue[] }
  | { kind: 'list'; items: PyValue[] }
  | { kind: 'dict'; entries: Array<[PyValue, PyValue]> }
);

class PyParseError extends Error {}

function parsePyLiteral(text: string): PyValue {
  let pos = 0;

  const fail = (what: string): never => {
    const snippet = text.slice(pos, pos + 12).trimEnd();
    const found = snippet === '' ? 'the end of the header' : JSON.stringify(snippet);
    throw new PyParseError(`expected ${what} at offset ${pos}, got ${found}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length && /[ \t\r\n\f\v]/.test(text[pos]!)) pos++;
  };
  const peek = (): string | undefined => {
    skipSpace();
    return text[pos];
  };
  const expect = (ch: string): void => {
    if (peek() !== ch) fail(`'${ch}'`);
    pos++;
  };

  const parseSequence = (close: string, what: string): { items: PyValue[]; trailingComma: boolean } => {
    const items: PyValue[] = [];
    let trailingComma = false;
    for (;;) {
      if (peek() === close) break;
      items.push(parseValue());
      trailingComma = false;
      const next = peek();
      if (next === ',') {
        pos++;
        trailingComma = true;
      } else if (next !== close) {
        fail(`',' or '${close}' in ${what}`);
      }
    }
    pos++;
    return { items, trailingComma };
  };

  const parseString = (quote: string): string => {
    const start = pos++;
    let out = '';
    for (;;) {
      const ch = text[pos];
      if (ch === undefined || ch === '\n') fail(`a closing ${quote} for the string that opens at offset ${start}`);
      pos++;
      if (ch === quote) return out;
      if (ch === '\\') {
        const esc = text[pos];
        if (esc === undefined) fail('an escaped character');
        pos++;
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"' };
        out += simple[esc!] ?? '\\' + esc;
      } else {
        out += ch;
      }
    }
  };

  const parseValue = (): PyValue => {
    const start = (skipSpace(), pos);
    const ch = text[pos];
    const done = <T extends object>(v: T): T & { source: string } => ({ ...v, source: text.slice(start, pos) });
    if (ch === '{') {
      pos++;
      const entries: Array<[PyValue, PyValue]> = [];
      for (;;) {
        if (peek() === '}') break;
        const key = parseValue();
        expect(':');
        const value = parseValue();
        entries.push([key, value]);
        const next = peek();
        if (next === ',') pos++;
        else if (next !== '}') fail("',' or '}' in the dict");
      }
      pos++;
      return done({ kind: 'dict' as const, entries });
    }
    if (ch === '(') {
      pos++;
      const { items, trailingComma } = parseSequence(')', 'the tuple');
      // "(3)" is just the number 3 in Python; "(3,)" is a tuple.
      if (items.length === 1 && !trailingComma) return { ...items[0]!, source: text.slice(start, pos) };
      return done({ kind: 'tuple' as const, items });
    }
    if (ch === '[') {
      pos++;
      return done({ kind: 'list' as const, items: parseSequence(']', 'the list').items });
    }
    if (ch === "'" || ch === '"') {
      const value = parseString(ch);
      return done({ kind: 'str' as const, value });
    }
    const num = /^[+-]?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)([lL]?)/.exec(text.slice(pos));
    if (num && num[0] !== '' && /\d/.test(num[0])) {
      pos += num[0].length;
      const literal = num[0].replace(/[lL]$/, ''); // Python 2 wrote long integers as "3L"
      const isInt = /^[+-]?\d+$/.test(literal);
      if (!isInt && num[1]) fail('a number');
      return isInt
        ? done({ kind: 'int' as const, value: Number(literal) })
        : done({ kind: 'float' as const, value: Number(literal) });
    }
    const word = /^[A-Za-z_]\w*/.exec(text.slice(pos));
    if (word) {
      pos += word[0].length;
      if (word[0] === 'True') return done({ kind: 'bool' as const, value: true });
      if (word[0] === 'False') return done({ kind: 'bool' as const, value: false });
      if (word[0] === 'None') return done({ kind: 'none' as const });
      pos = start;
      fail('a literal (True, False, None, a number, a string, a tuple, a list or a dict)');
    }
    return fail('a value');
  };

  const value = parseValue();
  skipSpace();
  if (pos !== text.length) fail('nothing after the dict but padding');
  return value;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Serialize a C-order float32/float64 array as .npy version 1.0, byte for byte as np.save writes it. */
export function formatNpy(array: { shape: readonly number[]; data: Float32Array | Float64Array }): Uint8Array {
  const { shape, data } = array;
  let itemSize: number;
  let descr: string;
  if (data instanceof Float64Array) {
    itemSize = 8;
    descr = '<f8';
  } else if (data instanceof Float32Array) {
    itemSize = 4;
    descr = '<f4';
  } else {
    throw new NpyError(`expected data as a Float32Array or Float64Array, got ${typeName(data)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new NpyError(
      `expected shape to be an array of non-negative integers, got ${Array.isArray(shape) ? `[${shape.join(', ')}]` : typeName(shape)}`,
    );
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new NpyError(`expected ${count} elements for shape ${pyTuple(shape)}, got data of length ${data.length}`);
  }

  // Same text as numpy.lib.format._write_array_header: sorted keys, repr'd values, growth padding.
  let dictText = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${pyTuple(shape)}, }`;
  if (shape.length > 0) dictText += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);

  // _wrap_header: pad so magic + length + header is a multiple of 64; padlen is in 1..64.
  let major = 1;
  let lengthBytes = 2;
  const hlen = dictText.length + 1;
  let padLen = ARRAY_ALIGN - ((MAGIC_LEN + lengthBytes + hlen) % ARRAY_ALIGN);
  if (hlen + padLen > 0xffff) {
    // Only a header for thousands of dimensions gets here; NumPy switches to 2.0 the same way.
    major = 2;
    lengthBytes = 4;
    padLen = ARRAY_ALIGN - ((MAGIC_LEN + lengthBytes + hlen) % ARRAY_ALIGN);
  }
  const headerLen = hlen + padLen;
  const dataOffset = MAGIC_LEN + lengthBytes + headerLen;
  const out = new Uint8Array(dataOffset + count * itemSize);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (lengthBytes === 2) view.setUint16(MAGIC_LEN, headerLen, true);
  else view.setUint32(MAGIC_LEN, headerLen, true);
  let p = MAGIC_LEN + lengthBytes;
  for (let i = 0; i < dictText.length; i++) out[p++] = dictText.charCodeAt(i);
  out.fill(0x20, p, dataOffset - 1);
  out[dataOffset - 1] = 0x0a;

  if (HOST_LITTLE_ENDIAN) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataOffset);
  } else if (itemSize === 8) {
    for (let i = 0; i < count; i++) view.setFloat64(dataOffset + i * 8, data[i]!, true);
  } else {
    for (let i = 0; i < count; i++) view.setFloat32(dataOffset + i * 4, data[i]!, true);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Python's repr of a tuple of ints: (), (3,), (2, 3). */
function pyTuple(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function hexBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function quoteHeader(text: string): string {
  const trimmed = text.trimEnd();
  return JSON.stringify(trimmed.length > 120 ? trimmed.slice(0, 120) + '…' : trimmed);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `a ${(value as object).constructor?.name ?? 'object'}`;
  return typeof value;
}
