// The WebAssembly SIMD backend (being written: see assembly/). Until it lands, nothing reports it available.
import type { Workspace } from './types.js';

/** True when this runtime validates the library's WASM SIMD module. */
export function wasmSupported(): boolean {
  return false;
}

/** A workspace whose arrays live in its own WebAssembly memory of `capacity` float64 entries. */
export function createWasmWorkspace(_capacity: number): Workspace {
  throw new Error('WASM backend not built yet');
}
