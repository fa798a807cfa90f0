// Declared memory layouts. An owner (a decoder, one chunk's scratch, a pass) lists its arrays once: name, element
// type, length. The layout places them with the one alignment rule of WASM memory (every array starts on a
// 64-byte line: a ring of rows starting mid-line touches one more line per row, measured 5-14% slower), gives
// the exact byte total an owner's memory needs, and makes the views. No owner counts alignment slack by hand.
export type ElementType = 'f64' | 'f32';

export interface ArrayDecl {
  readonly name: string;
  readonly type: ElementType;
  /** elements */
  readonly length: number;
}

/** Every array starts on a line of this many bytes (a cache line; WASM workspaces hand out views so aligned). */
export const LINE_BYTES = 64;

const ELEMENT_BYTES: Record<ElementType, number> = { f64: 8, f32: 4 };

/** `bytes` rounded up to whole lines. */
export function roundToLines(bytes: number): number {
  return Math.ceil(bytes / LINE_BYTES) * LINE_BYTES;
}

/** Bytes an array of `length` elements of `type` takes in a layout: its size rounded up to whole lines. */
export function lineBytes(type: ElementType, length: number): number {
  return roundToLines(length * ELEMENT_BYTES[type]);
}

export interface Placed extends ArrayDecl {
  /** bytes from the start of the region (a multiple of LINE_BYTES) */
  readonly offset: number;
}

export interface Layout {
  readonly arrays: readonly Placed[];
  /** bytes of the whole region (a multiple of LINE_BYTES) */
  readonly bytes: number;
}

/** Place arrays one after the other, each on its own line. Names must be distinct, lengths integers >= 0. */
export function declare(decls: readonly ArrayDecl[]): Layout {
  const names = new Set<string>();
  const arrays: Placed[] = [];
  let at = 0;
  for (const d of decls) {
    if (!Number.isInteger(d.length) || d.length < 0) throw new RangeError(`layout: array '${d.name}' needs an integer length >= 0, got ${d.length}`);
    if (ELEMENT_BYTES[d.type] === undefined) throw new RangeError(`layout: array '${d.name}' has type ${String(d.type)}, expected 'f64' or 'f32'`);
    if (names.has(d.name)) throw new RangeError(`layout: array '${d.name}' is declared twice`);
    names.add(d.name);
    arrays.push({ name: d.name, type: d.type, length: d.length, offset: at });
    at += lineBytes(d.type, d.length);
  }
  return { arrays, bytes: at };
}

/** Float64 entries of a layout's region (what a workspace's f64() stack gives up for it). */
export function layoutFloats(layout: Layout): number {
  return layout.bytes / 8;
}

/** The views of a layout placed at `byteOffset` of `buffer` (a multiple of LINE_BYTES for the alignment to hold). */
export class LayoutViews {
  private readonly byName = new Map<string, Float64Array | Float32Array>();
  constructor(
    readonly layout: Layout,
    buffer: ArrayBuffer,
    byteOffset: number,
  ) {
    for (const a of layout.arrays) {
      const at = byteOffset + a.offset;
      this.byName.set(a.name, a.type === 'f64' ? new Float64Array(buffer, at, a.length) : new Float32Array(buffer, at, a.length));
    }
  }

  /** The float64 array declared as `name`. */
  f64(name: string): Float64Array {
    const v = this.byName.get(name);
    if (!(v instanceof Float64Array)) throw new RangeError(`layout: no f64 array '${name}' (declared: ${[...this.byName.keys()].join(', ')})`);
    return v;
  }

  /** The float32 array declared as `name`. */
  f32(name: string): Float32Array {
    const v = this.byName.get(name);
    if (!(v instanceof Float32Array)) throw new RangeError(`layout: no f32 array '${name}' (declared: ${[...this.byName.keys()].join(', ')})`);
    return v;
  }
}
