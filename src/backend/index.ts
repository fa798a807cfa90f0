// Backend selection: 'js' (plain TypeScript), 'wasm' (WebAssembly SIMD) or 'auto' (WASM where the runtime
// validates the module, else JS). A workspace is made per owner. Module-global state: the compiled module
// (immutable) and one idle WASM workspace that calls hand back for the next call (see acquireWorkspace).
import { ConfigError, describe } from '../core/errors.js';
import { JsWorkspace } from './js.js';
import { createWasmWorkspace, wasmFftPlanEntries, wasmSupported, wasmUnavailableMessage, wasmWorkspaceFits, type WasmWorkspace } from './wasm.js';
import type { BackendName, BackendOption, Workspace } from './types.js';
import { Arena, createArenaWith, type ArenaOptions } from './arena.js';

export type { BackendName, BackendOption, Workspace, FftPlan } from './types.js';
export { Arena, checkArenaOption, OwnedMemory, type ArenaOptions, type Region } from './arena.js';

/** Validate a backend option (the one place that knows the names). */
export function checkBackendOption(value: unknown, where = 'options.backend'): BackendOption {
  const b = value ?? 'auto';
  if (b !== 'auto' && b !== 'js' && b !== 'wasm') {
    throw new ConfigError(`${where} must be 'auto', 'js' or 'wasm', got ${describe(b)}`);
  }
  return b;
}

/**
 * The backend an option selects here: 'auto' -> 'wasm' when the module is compiled (synchronously on first use
 * where the runtime allows it, else after `await initWasm()`), else 'js'.
 */
export function resolveBackend(option: BackendOption): BackendName {
  if (option === 'js') return 'js';
  if (option === 'wasm') {
    if (!wasmSupported()) throw new ConfigError(`backend 'wasm' is not available: ${wasmUnavailableMessage()}`);
    return 'wasm';
  }
  return wasmSupported() ? 'wasm' : 'js';
}

/**
 * An arena of `options.bytes` for many owners on one backend (backend/arena.ts): `new Decoder(config, { arena })`
 * takes its state from it, dispose() gives it back. Bad options: ConfigError; memory refused: ResourceError.
 */
export function createArena(options: ArenaOptions): Arena {
  return createArenaWith(options, (b) => resolveBackend(checkBackendOption(b)));
}

/** A new workspace of the given backend; `capacity` (float64 entries) sizes WASM memory up front. */
export function createWorkspace(backend: BackendName, capacity: number): Workspace {
  return backend === 'wasm' ? createWasmWorkspace(capacity) : new JsWorkspace();
}

/** Float64 entries an FFT plan of `size` takes from a workspace of `backend` (JS plans live outside it: 0). */
export function fftPlanEntries(backend: BackendName, size: number): number {
  return backend === 'wasm' ? wasmFftPlanEntries(size) : 0;
}

/** Whether a workspace of `capacity` float64 entries can exist on `backend` (WASM: under the 4 GiB wasm32 limit). */
export function workspaceFits(backend: BackendName, capacity: number): boolean {
  return backend !== 'wasm' || wasmWorkspaceFits(capacity);
}

/** Largest WASM workspace kept idle between calls: 64M float64 entries (512 MiB; n = 65536 at m = dv = 64 takes 300 MiB). */
export const IDLE_WORKSPACE_LIMIT = 64 * 1024 * 1024;

/** The idle workspace, taken by acquireWorkspace (so nested or concurrent owners never share one). */
let idle: WasmWorkspace | null = null;

/**
 * A workspace for one short-lived owner (an attention() call), given back with releaseWorkspace. WASM: the idle
 * workspace of an earlier call when it is large enough, else a new one. Fresh WebAssembly memory is paid for
 * in page faults on first touch (measured here: ~3 ms per MB, a fifth of attention() at n = 16384), so reusing
 * it is worth one idle workspace of at most IDLE_WORKSPACE_LIMIT. Results never depend on reuse: arrays are
 * zeroed when taken.
 */
export function acquireWorkspace(backend: BackendName, capacity: number): Workspace {
  if (backend !== 'wasm') return new JsWorkspace();
  const ws = idle;
  idle = null;
  if (ws !== null && ws.capacity >= capacity) {
    ws.reset(true);
    if (ws.available >= capacity) return ws;
    ws.reset(false); // its plans are in the way: drop them
    return ws;
  }
  return createWasmWorkspace(capacity);
}

/** Give a workspace from acquireWorkspace back (its arrays must no longer be used). */
export function releaseWorkspace(ws: Workspace): void {
  if (ws.backend === 'wasm' && (ws as WasmWorkspace).capacity <= IDLE_WORKSPACE_LIMIT) idle = ws as WasmWorkspace;
}
