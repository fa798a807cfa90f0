// Arenas: one memory shared by many owners (a pool of decoders, the decoders of a model's sessions). Without
// one, every WASM decoder makes a WebAssembly.Memory of its own, and V8 refuses new ones once ~12,800 are live
// (each reserves address space). An arena is one memory, sized once (never grown); owners take line-aligned
// regions sized from their declared layouts and give them back when disposed.
//
// OwnedMemory is how an owner holds its regions: from an arena (exhausted -> ResourceError), or from memory of its
// own, replaced by a right-sized one when a new layout or a call's scratch does not fit (the owner moves over).
import { ConfigError, ResourceError, describe } from '../core/errors.js';
import { createJsPool } from './js.js';
import { createWasmPool, wasmMemory, WASM_HEADER_BYTES } from './wasm.js';
import type { Pool, Region } from './regions.js';
import type { BackendName, BackendOption, Workspace } from './types.js';

export type { Region } from './regions.js';

const bytesText = (b: number): string => `${b.toLocaleString('en-US')} bytes`;

/** Options of createArena: the backend its owners run on, and the bytes their regions may take in all. */
export interface ArenaOptions {
  /** 'auto' (default: WASM SIMD where supported), 'js' or 'wasm'; every owner on the arena runs on it */
  backend?: BackendOption;
  /** bytes for the owners' regions (WASM: the memory is this plus a 64 KiB header, in whole 64 KiB pages, made now) */
  bytes: number;
}

const MADE_HERE = Symbol('createArena');

/** Memory shared by many owners (see the top of arena.ts). Make one with createArena. */
export class Arena {
  readonly backend: BackendName;
  /** @internal where the regions come from */
  readonly pool: Pool;

  /** @internal use createArena */
  constructor(pool: Pool, token: symbol) {
    if (token !== MADE_HERE) throw new ConfigError('an Arena is made by createArena({ backend?, bytes }), not with new');
    this.backend = pool.backend;
    this.pool = pool;
  }

  /** Bytes the owners' regions may take in all. */
  get bytes(): number {
    return this.pool.capacity;
  }

  /** Bytes taken by live regions. */
  get usedBytes(): number {
    return this.pool.usedBytes;
  }

  /** Live regions (a decoder holds one between calls, two during a chunk). */
  get regions(): number {
    return this.pool.regions;
  }
}

/**
 * createArena (backend/index.ts, where the backend resolver lives) with that resolver passed in. Bad options:
 * ConfigError; memory the runtime refuses: ResourceError.
 */
export function createArenaWith(options: ArenaOptions, resolve: (b: BackendOption) => BackendName): Arena {
  if (options === null || typeof options !== 'object') throw new ConfigError(`arena options must be an object { backend?, bytes }, got ${describe(options)}`);
  const { bytes } = options;
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes <= 0 || bytes > 2 ** 32) {
    throw new ConfigError(`options.bytes must be an integer in [1, 2^32] (the arena's size in bytes), got ${describe(bytes)}`);
  }
  const backend = resolve(options.backend ?? 'auto');
  return new Arena(backend === 'wasm' ? createWasmPool(bytes, `an arena of ${bytesText(bytes)}`) : createJsPool(bytes), MADE_HERE);
}

/**
 * Validate an owner's arena option against its backend option: the arena, or null when absent. `backend`
 * undefined or 'auto' takes the arena's backend; 'js' or 'wasm' must be it.
 */
export function checkArenaOption(value: unknown, backend: BackendOption | undefined, where = 'options.arena'): Arena | null {
  if (value === undefined) return null;
  if (!(value instanceof Arena)) throw new ConfigError(`${where} must be an Arena (from createArena), got ${describe(value)}`);
  if (backend !== undefined && backend !== 'auto' && backend !== value.backend) {
    throw new ConfigError(`${where} is an arena of backend '${value.backend}', but the backend asked for is '${backend}'; pass an arena of backend '${backend}' or leave options.backend out`);
  }
  return value;
}

/** The regions an owner needs live after a place(): its persistent region, and scratch for one call (or none). */
export interface Placed {
  persist: Region;
  scratch: Region | null;
}

/**
 * The memory of one owner. With an arena, regions come from it; without, from a pool of the owner's own, made to
 * fit exactly what is live (whole pages) and replaced by one at least twice as large when a request does not fit.
 */
export class OwnedMemory {
  private own: Pool | null = null;
  private live = new Set<Region>();

  constructor(
    readonly backend: BackendName,
    private readonly arena: Arena | null,
    /** names the owner in errors */
    private readonly what: string,
  ) {}

  /**
   * Regions for a persistent layout of `persistBytes` (a new region unless `keep`, the current one, still serves:
   * pass it to keep it) and `scratchBytes` of scratch (0: none). On an arena with no room: ResourceError, and the
   * owner's regions are as they were. On memory of its own that has no room: a new memory for both, so `keep` is
   * NOT kept (the owner copies its state over from its old views, which stay readable). The caller frees the old
   * persistent region when it is done with it (free()).
   */
  place(keep: Region | null, persistBytes: number, scratchBytes: number): Placed {
    const pool = this.arena?.pool ?? this.own;
    if (pool !== null && (keep === null || keep.pool === pool)) {
      const got = tryPlace(pool, keep, persistBytes, scratchBytes);
      if (got !== null) return this.track(got, keep);
      if (this.arena !== null) {
        const need = (keep === null ? persistBytes : 0) + scratchBytes;
        throw new ResourceError(
          'arena', need, pool.capacity,
          `the arena (${this.arena.backend}, ${bytesText(pool.capacity)}) has no room for ${this.what}: it needs ${bytesText(need)} ` +
            `(${keep === null ? `state ${bytesText(persistBytes)}` : 'state kept'}${scratchBytes > 0 ? `, scratch ${bytesText(scratchBytes)}` : ''}) but ${bytesText(pool.capacity - pool.usedBytes)} are free ` +
            `(largest piece ${bytesText(pool.largestFree)}, live regions: ${pool.regions.toLocaleString('en-US')}); dispose() owners you no longer use, or make a larger arena`,
        );
      }
    }
    // memory of its own: exactly what will be live the first time; a replacement at least doubles, so a stream of
    // growing chunks makes O(log) memories, not one per call (measured: 121 for chunks of 1..120 tokens, 1.8x the time)
    const need = roundRegion(persistBytes) + roundRegion(scratchBytes);
    const doubled = this.own === null ? need : Math.max(need, 2 * this.own.capacity);
    const bytes = WASM_HEADER_BYTES + doubled <= wasmMemory.maxPages * 65536 ? doubled : need;
    const next = this.backend === 'wasm' ? createWasmPool(bytes, this.what, true) : createJsPool(Infinity);
    const got = tryPlace(next, null, persistBytes, scratchBytes);
    if (got === null) throw new Error(`OwnedMemory: a pool made for ${persistBytes} + ${scratchBytes} bytes has no room for them`);
    this.own = next;
    this.live = new Set();
    return this.track(got, null);
  }

  /** A workspace over a region this owner holds. */
  workspace(region: Region): Workspace {
    return region.pool.workspace(region);
  }

  /** Bytes an FFT plan of `size` takes from a scratch region on this owner's backend. */
  planBytes(size: number): number {
    return (this.arena?.pool ?? this.own)?.planBytes(size) ?? 0;
  }

  /** Give a region back (no-op for one of a replaced memory of its own). */
  free(region: Region | null): void {
    if (region === null || !this.live.delete(region)) return;
    region.pool.free(region);
  }

  /** Give every region back: the owner is done (its views must no longer be used). */
  dispose(): void {
    for (const r of this.live) r.pool.free(r);
    this.live.clear();
    this.own = null;
  }

  /** Regions held now (for a finalizer: freed if the owner is collected without dispose()). */
  get held(): ReadonlySet<Region> {
    return this.live;
  }

  private track(p: Placed, keep: Region | null): Placed {
    if (p.persist !== keep) this.live.add(p.persist);
    if (p.scratch !== null) this.live.add(p.scratch);
    return p;
  }
}

function roundRegion(bytes: number): number {
  return bytes === 0 ? 0 : Math.ceil(bytes / 64) * 64;
}

/** Both regions from `pool`, or null (nothing taken) when one does not fit. */
function tryPlace(pool: Pool, keep: Region | null, persistBytes: number, scratchBytes: number): Placed | null {
  const persist = keep ?? pool.alloc(persistBytes);
  if (persist === null) return null;
  if (scratchBytes === 0) return { persist, scratch: null };
  const scratch = pool.alloc(scratchBytes);
  if (scratch === null) {
    if (persist !== keep) pool.free(persist);
    return null;
  }
  return { persist, scratch };
}
