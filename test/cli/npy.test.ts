import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatNpy, NpyError, parseNpy } from '../../src/cli/npy.js';
import { ToeplitzAttentionError } from '../../src/core/errors.js';

// Fixtures were written by np.save (see test/fixtures/npy/generate.py); the values below are
// the ones that script saved, hard-coded so the tests never need Python.
function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fileURLToPath(new URL(`../fixtures/npy/${name}`, import.meta.url))));
}

const F8_2X3 = [1.5, -2.0, 0.1, 4.0, 5.25, -6e-300];
const F4_4 = [1.0, 2.5, -3.0, Math.fround(0.1)];

/** Build .npy bytes by hand from a header dict text, padded the way NumPy pads it. */
function npyBytes(dict: string, payload: Uint8Array = new Uint8Array(0), major = 1): Uint8Array {
  const lengthBytes = major === 1 ? 2 : 4;
  const prefix = 8 + lengthBytes;
  const unpadded = prefix + dict.length + 1;
  const headerLen = dict.length + 1 + ((64 - (unpadded % 64)) % 64);
  const out = new Uint8Array(prefix + headerLen + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerLen, true);
  else view.setUint32(8, headerLen, true);
  const header = new TextEncoder().encode(dict.padEnd(headerLen - 1, ' ') + '\n');
  out.set(header, prefix);
  out.set(payload, prefix + headerLen);
  return out;
}

function f8Payload(values: number[]): Uint8Array {
  return new Uint8Array(new Float64Array(values).buffer);
}

function header(descr: string, shape: string, fortran = 'False'): string {
  return `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
}

function errorOf(fn: () => unknown): NpyError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NpyError);
    expect(err).toBeInstanceOf(ToeplitzAttentionError);
    expect((err as Error).name).toBe('NpyError');
    return err as NpyError;
  }
  throw new Error('expected an NpyError, nothing was thrown');
}

describe('parseNpy on files written by np.save', () => {
  it('reads a float64 (2, 3) array', () => {
    const a = parseNpy(fixture('f8_2x3.npy'));
    expect(a.dtype).toBe('float64');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float64Array);
    expect(Array.from(a.data)).toEqual(F8_2X3);
  });

  it('reads a float32 (4,) array', () => {
    const a = parseNpy(fixture('f4_4.npy'));
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([4]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data)).toEqual(F4_4);
  });

  it('reads a 0-d array', () => {
    const a = parseNpy(fixture('f8_0d.npy'));
    expect(a.dtype).toBe('float64');
    expect(a.shape).toEqual([]);
    expect(Array.from(a.data)).toEqual([Math.PI]);
  });

  it('reads format versions 2.0 and 3.0', () => {
    for (const name of ['f8_2x3_v2.npy', 'f8_2x3_v3.npy']) {
      const bytes = fixture(name);
      expect(bytes[6]).toBe(name.includes('v2') ? 2 : 3);
      const a = parseNpy(bytes);
      expect(a.shape).toEqual([2, 3]);
      expect(Array.from(a.data)).toEqual(F8_2X3);
    }
  });

  it('converts big-endian >f8 and >f4 to host order', () => {
    const f8 = parseNpy(fixture('f8_2x3_be.npy'));
    expect(f8.dtype).toBe('float64');
    expect(f8.shape).toEqual([2, 3]);
    expect(Array.from(f8.data)).toEqual(F8_2X3);
    const f4 = parseNpy(fixture('f4_4_be.npy'));
    expect(f4.dtype).toBe('float32');
    expect(Array.from(f4.data)).toEqual(F4_4);
  });

  it('copies the payload into an aligned array even from an odd offset in a larger buffer', () => {
    const bytes = fixture('f8_2x3.npy');
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const slice = big.subarray(3);
    const a = parseNpy(slice);
    expect(a.data.byteOffset).toBe(0);
    expect(a.data.buffer).not.toBe(big.buffer);
    expect(Array.from(a.data)).toEqual(F8_2X3);
    big.fill(0);
    expect(Array.from(a.data)).toEqual(F8_2X3);
  });

  it('accepts native "=" byte order, double quotes, Python 2 long ints and extra whitespace', () => {
    const values = [1, 2, 3, 4, 5, 6];
    const a = parseNpy(npyBytes(`{"descr": "=f8", "fortran_order": False, "shape": ( 2L ,3L ) }`, f8Payload(values)));
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual(values);
    const b = parseNpy(npyBytes(`{'shape': (6,), 'fortran_order': False, 'descr': '<f8'}`, f8Payload(values)));
    expect(b.shape).toEqual([6]);
  });

  it('reads empty arrays', () => {
    const a = parseNpy(npyBytes(header('<f4', '(0, 3)')));
    expect(a.shape).toEqual([0, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(a.data.length).toBe(0);
  });
});

describe('formatNpy', () => {
  it('reproduces the exact bytes of np.save', () => {
    expect(formatNpy({ shape: [2, 3], data: new Float64Array(F8_2X3) })).toEqual(fixture('f8_2x3.npy'));
    expect(formatNpy({ shape: [4], data: new Float32Array(F4_4) })).toEqual(fixture('f4_4.npy'));
    expect(formatNpy({ shape: [], data: new Float64Array([Math.PI]) })).toEqual(fixture('f8_0d.npy'));
    for (const name of ['f8_2x3.npy', 'f4_4.npy', 'f8_0d.npy']) {
      expect(formatNpy(parseNpy(fixture(name)))).toEqual(fixture(name));
    }
  });

  it('writes version 1.0 with a header padded to a multiple of 64 bytes and ending in a newline', () => {
    for (const shape of [[], [1], [7, 1, 3], [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3]]) {
      const count = shape.reduce((a, b) => a * b, 1);
      const bytes = formatNpy({ shape, data: new Float64Array(count) });
      expect(bytes[6]).toBe(1);
      expect(bytes[7]).toBe(0);
      const headerLen = bytes[8]! | (bytes[9]! << 8);
      expect((10 + headerLen) % 64).toBe(0);
      expect(bytes[10 + headerLen - 1]).toBe(0x0a);
      expect(bytes.length).toBe(10 + headerLen + count * 8);
    }
  });

  it('writes only the viewed part of a subarray', () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const bytes = formatNpy({ shape: [3], data: backing.subarray(1, 4) });
    expect(Array.from(parseNpy(bytes).data)).toEqual([1, 2, 3]);
  });

  it('refuses data that does not match the shape', () => {
    expect(errorOf(() => formatNpy({ shape: [2, 3], data: new Float64Array(5) })).message).toBe(
      'expected 6 elements for shape (2, 3), got data of length 5',
    );
    expect(errorOf(() => formatNpy({ shape: [2, -1], data: new Float64Array(2) })).message).toBe(
      'expected shape to be an array of non-negative integers, got [2, -1]',
    );
    expect(
      errorOf(() => formatNpy({ shape: [3], data: new Int32Array(3) as unknown as Float64Array })).message,
    ).toBe('expected data as a Float32Array or Float64Array, got a Int32Array');
  });
});

describe('round trips', () => {
  it('formatNpy then parseNpy gives back shape, dtype and bits for random arrays', () => {
    const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 5 });
    fc.assert(
      fc.property(shapeArb, fc.boolean(), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (shape, f64, seed) => {
        const count = shape.reduce((a, b) => a * b, 1);
        const data = f64 ? new Float64Array(count) : new Float32Array(count);
        let s = seed;
        const special = [0, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, 1e300];
        for (let i = 0; i < count; i++) {
          s = (s * 1103515245 + 12345) % 2 ** 31;
          data[i] = s % 7 === 0 ? special[s % special.length]! : (s / 2 ** 31 - 0.5) * 10 ** ((s % 20) - 10);
        }
        const bytes = formatNpy({ shape, data });
        const back = parseNpy(bytes);
        expect(back.dtype).toBe(f64 ? 'float64' : 'float32');
        expect(back.shape).toEqual(shape);
        expect(back.data.constructor).toBe(data.constructor);
        // Compare bit patterns so NaN and -0 count.
        expect(new Uint8Array(back.data.buffer)).toEqual(new Uint8Array(data.buffer));
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseNpy errors', () => {
  const good = fixture('f8_2x3.npy');

  it('bad magic', () => {
    expect(errorOf(() => parseNpy(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00]))).message).toBe(
      'expected the .npy magic \\x93NUMPY, got bytes 50 4b 03 04 14 00 ' +
        '(this looks like a zip archive, e.g. an .npz: extract the .npy members first)',
    );
    expect(errorOf(() => parseNpy(new TextEncoder().encode('hello world'))).message).toBe(
      'expected the .npy magic \\x93NUMPY, got bytes 68 65 6c 6c 6f 20',
    );
    expect(errorOf(() => parseNpy(new Uint8Array(0))).message).toBe(
      'expected the .npy magic \\x93NUMPY, got an empty file',
    );
  });

  it('unsupported version', () => {
    const bytes = good.slice();
    bytes[6] = 4;
    expect(errorOf(() => parseNpy(bytes)).message).toBe('expected .npy format version 1.0, 2.0 or 3.0, got 4.0');
    bytes[6] = 1;
    bytes[7] = 1;
    expect(errorOf(() => parseNpy(bytes)).message).toBe('expected .npy format version 1.0, 2.0 or 3.0, got 1.1');
  });

  it('truncated header', () => {
    expect(errorOf(() => parseNpy(good.subarray(0, 4))).message).toBe(
      'truncated header: expected at least 8 bytes for the magic and version, got 4',
    );
    expect(errorOf(() => parseNpy(good.subarray(0, 9))).message).toBe(
      'truncated header: expected a 2-byte header length after the version, got 1 byte',
    );
    expect(errorOf(() => parseNpy(fixture('f8_2x3_v2.npy').subarray(0, 10))).message).toBe(
      'truncated header: expected a 4-byte header length after the version, got 2 bytes',
    );
    expect(errorOf(() => parseNpy(good.subarray(0, 50))).message).toBe(
      'truncated header: the header length field says 118 bytes, but only 40 follow it',
    );
  });

  it('truncated or overlong data', () => {
    expect(errorOf(() => parseNpy(good.subarray(0, good.length - 8))).message).toBe(
      'data holds 40 bytes but shape (2, 3) of <f8 needs 48 (truncated file?)',
    );
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expect(errorOf(() => parseNpy(longer)).message).toBe(
      'data holds 52 bytes but shape (2, 3) of <f8 needs 48 (trailing bytes after the array)',
    );
    expect(errorOf(() => parseNpy(npyBytes(header('<f4', '()')))).message).toBe(
      'data holds 0 bytes but shape () of <f4 needs 4 (truncated file?)',
    );
  });

  it('fortran order', () => {
    expect(errorOf(() => parseNpy(fixture('f8_2x3_fortran.npy'))).message).toBe(
      "expected 'fortran_order': False (C order), got True: save the array with np.save(path, np.ascontiguousarray(a))",
    );
    expect(errorOf(() => parseNpy(npyBytes(header('<f8', '(1,)', '0'), f8Payload([1])))).message).toBe(
      "expected 'fortran_order' to be False, got 0",
    );
  });

  it('unsupported dtypes', () => {
    expect(errorOf(() => parseNpy(fixture('i4_3.npy'))).message).toBe(
      "unsupported dtype: expected '<f4' (float32) or '<f8' (float64), got '<i4' " +
        '(an integer array: convert it with .astype(np.float64) first)',
    );
    expect(errorOf(() => parseNpy(npyBytes(header('<c16', '(1,)'), new Uint8Array(16)))).message).toBe(
      "unsupported dtype: expected '<f4' (float32) or '<f8' (float64), got '<c16'",
    );
    expect(errorOf(() => parseNpy(npyBytes(header('|f8', '(1,)'), f8Payload([1])))).message).toBe(
      "expected a byte order '<', '>' or '=' for a multi-byte dtype, got '|f8'",
    );
    expect(
      errorOf(() =>
        parseNpy(npyBytes(`{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }`, f8Payload([1]))),
      ).message,
    ).toBe("expected 'descr' to be a float dtype string '<f4' or '<f8', got [('a', '<f8')] (a structured dtype)");
  });

  it('bad shape literals', () => {
    const cases: Array<[string, string]> = [
      ['(2, -3)', "expected 'shape' to be a tuple of non-negative integers like (2, 3), got (2, -3) (bad entry -3)"],
      ['(2.5,)', "expected 'shape' to be a tuple of non-negative integers like (2, 3), got (2.5,) (bad entry 2.5)"],
      ["'6'", "expected 'shape' to be a tuple of non-negative integers like (2, 3), got '6'"],
      ['[2, 3]', "expected 'shape' to be a tuple of non-negative integers like (2, 3), got [2, 3]"],
      ['(6)', "expected 'shape' to be a tuple of non-negative integers like (2, 3), got (6)"],
      ['None', "expected 'shape' to be a tuple of non-negative integers like (2, 3), got None"],
    ];
    for (const [shape, message] of cases) {
      expect(errorOf(() => parseNpy(npyBytes(header('<f8', shape), f8Payload([1, 2, 3, 4, 5, 6])))).message).toBe(message);
    }
    expect(errorOf(() => parseNpy(npyBytes(header('<f8', '(2, 3'), f8Payload([1, 2, 3, 4, 5, 6])))).message).toBe(
      'expected the header to be a Python dict literal, but expected a value at offset 57, ' +
        `got "}" in "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, }"`,
    );
    expect(errorOf(() => parseNpy(npyBytes(header('<f8', '(2 3)'), f8Payload([1, 2, 3, 4, 5, 6])))).message).toMatch(
      /^expected the header to be a Python dict literal, but expected ',' or '\)' in the tuple at offset 53, got "3\), }" in /,
    );
  });

  it('malformed header dicts', () => {
    expect(errorOf(() => parseNpy(npyBytes(`{'descr': '<f8', 'shape': (1,), }`, f8Payload([1])))).message).toBe(
      "expected the header to have exactly the keys 'descr', 'fortran_order', 'shape', got 'descr', 'shape'",
    );
    expect(
      errorOf(() => parseNpy(npyBytes(`{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}`, f8Payload([1]))))
        .message,
    ).toBe("expected the header to have exactly the keys 'descr', 'fortran_order', 'shape', got 'descr', 'fortran_order', 'shape', 'x'");
    expect(errorOf(() => parseNpy(npyBytes(`('<f8', False, (1,))`, f8Payload([1])))).message).toBe(
      "expected the header to be a Python dict literal, got ('<f8', False, (1,))",
    );
    expect(errorOf(() => parseNpy(npyBytes(`{'descr': np.float64}`))).message).toBe(
      'expected the header to be a Python dict literal, but expected a literal (True, False, None, a number, a string, ' +
        `a tuple, a list or a dict) at offset 10, got "np.float64}" in "{'descr': np.float64}"`,
    );
    expect(errorOf(() => parseNpy(npyBytes(`{'descr': '<f8}`))).message).toBe(
      `expected the header to be a Python dict literal, but expected a closing ' for the string that opens at offset 10 at offset 53, got the end of the header in "{'descr': '<f8}"`,
    );
    expect(errorOf(() => parseNpy(npyBytes(`{'descr': '<f8'} junk`))).message).toMatch(
      /^expected the header to be a Python dict literal, but expected nothing after the dict but padding at offset 17/,
    );
    expect(errorOf(() => parseNpy(npyBytes(`{1: 2}`))).message).toBe("expected the header's keys to be strings, got 1");
  });

  it('invalid UTF-8 in a version 3.0 header', () => {
    const bytes = fixture('f8_2x3_v3.npy').slice();
    bytes[13] = 0xff; // inside 'descr'
    expect(errorOf(() => parseNpy(bytes)).message).toBe(
      'expected a UTF-8 header in a version 3.0 .npy file, got invalid UTF-8 bytes',
    );
  });
});
