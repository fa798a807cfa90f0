// Regions of one memory, for owners that share it (an arena) or replace it (a decoder's own memory). A pool
// hands out line-aligned regions [offset, offset + bytes) of its buffer and makes workspaces over them; the
// bookkeeping here is plain byte offsets, first fit over a free list kept sorted and coalesced.
import { LINE_BYTES, roundToLines } from './layout.js';
import type { BackendName, Workspace } from './types.js';

export interface Region {
  readonly pool: Pool;
  /** bytes from the start of the pool's memory (a multiple of LINE_BYTES) */
  readonly offset: number;
  readonly bytes: number;
}

/** Where regions come from: one WebAssembly memory (WASM), or ordinary buffers counted against a limit (JS). */
export interface Pool {
  readonly backend: BackendName;
  /** bytes regions may take in all */
  readonly capacity: number;
  readonly usedBytes: number;
  readonly regions: number;
  /** the largest region alloc() could give now */
  readonly largestFree: number;
  /** A region of `bytes` (rounded up to whole lines), or null when there is no room. Its contents are unspecified. */
  alloc(bytes: number): Region | null;
  /** Give a region of this pool back (once). */
  free(region: Region): void;
  /**
   * A workspace whose f64(), take() and mark()/release() carve the region (a stack from its start, FFT plans from
   * its end on WASM) and whose kernels run on the pool's memory. The region must stay allocated while it is used.
   */
  workspace(region: Region): Workspace;
  /** Bytes an FFT plan of `size` takes from a workspace's region (0 where plans live outside it). */
  planBytes(size: number): number;
}

/** Bytes a region asked for `bytes` takes: whole lines, at least one. */
export function regionBytes(bytes: number): number {
  return Math.max(LINE_BYTES, roundToLines(bytes));
}

/** First-fit allocation of line-aligned byte ranges in [start, end). */
export class RegionAllocator {
  /** free ranges, sorted by offset, never adjacent (coalesced) */
  private readonly starts: number[] = [];
  private readonly sizes: number[] = [];
  used = 0;
  count = 0;

  constructor(
    readonly start: number,
    readonly end: number,
  ) {
    if (start % LINE_BYTES !== 0 || end < start) throw new RangeError(`RegionAllocator: need a line-aligned start <= end, got [${start}, ${end})`);
    if (end > start) {
      this.starts.push(start);
      this.sizes.push(end - start);
    }
  }

  get capacity(): number {
    return this.end - this.start;
  }

  get largestFree(): number {
    let best = 0;
    for (const s of this.sizes) if (s > best) best = s;
    return best;
  }

  /** Offset of a new range of `bytes` (rounded up to lines), or -1 when none is free. */
  alloc(bytes: number): number {
    const need = regionBytes(bytes);
    for (let i = 0; i < this.starts.length; i++) {
      const size = this.sizes[i]!;
      if (size < need) continue;
      const at = this.starts[i]!;
      if (size === need) {
        this.starts.splice(i, 1);
        this.sizes.splice(i, 1);
      } else {
        this.starts[i] = at + need;
        this.sizes[i] = size - need;
      }
      this.used += need;
      this.count++;
      return at;
    }
    return -1;
  }

  /** Return the range alloc(bytes) gave at `at`. */
  free(at: number, bytes: number): void {
    const size = regionBytes(bytes);
    // binary search: first free range after `at`
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    const prevEnd = lo > 0 ? this.starts[lo - 1]! + this.sizes[lo - 1]! : -1;
    const next = lo < this.starts.length ? this.starts[lo]! : Infinity;
    if (at < this.start || at + size > this.end || prevEnd > at || next < at + size) {
      throw new RangeError(`free: [${at}, ${at + size}) is not an allocated range of this pool`);
    }
    this.used -= size;
    this.count--;
    if (prevEnd === at && next === at + size) {
      this.sizes[lo - 1]! += size + this.sizes[lo]!;
      this.starts.splice(lo, 1);
      this.sizes.splice(lo, 1);
    } else if (prevEnd === at) {
      this.sizes[lo - 1]! += size;
    } else if (next === at + size) {
      this.starts[lo] = at;
      this.sizes[lo]! += size;
    } else {
      this.starts.splice(lo, 0, at);
      this.sizes.splice(lo, 0, size);
    }
  }
}
