// Backend selection: 'js' (plain TypeScript), 'wasm' (WebAssembly SIMD) or 'auto' (WASM where the runtime
// validates the module, else JS). A workspace is made per owner; nothing here is module-global state
// except the compiled module, which is immutable and safe to share.
import { ConfigError, describe } from '../core/errors.js';
import { JsWorkspace } from './js.js';
import { createWasmWorkspace, wasmSupported } from './wasm.js';
import type { BackendName, BackendOption, Workspace } from './types.js';

export type { BackendName, BackendOption, Workspace, FftPlan } from './types.js';

/** Validate a backend option (the one place that knows the names). */
export function checkBackendOption(value: unknown, where = 'options.backend'): BackendOption {
  const b = value ?? 'auto';
  if (b !== 'auto' && b !== 'js' && b !== 'wasm') {
    throw new ConfigError(`${where} must be 'auto', 'js' or 'wasm', got ${describe(b)}`);
  }
  return b;
}

/** The backend an option selects here: 'auto' -> 'wasm' when supported, else 'js'. */
export function resolveBackend(option: BackendOption): BackendName {
  if (option === 'js') return 'js';
  if (option === 'wasm') {
    if (!wasmSupported()) throw new ConfigError(`backend 'wasm' needs WebAssembly SIMD, which this runtime does not provide; use 'js' or 'auto'`);
    return 'wasm';
  }
  return wasmSupported() ? 'wasm' : 'js';
}

/** A new workspace of the given backend; `capacity` (float64 entries) sizes WASM memory up front. */
export function createWorkspace(backend: BackendName, capacity: number): Workspace {
  return backend === 'wasm' ? createWasmWorkspace(capacity) : new JsWorkspace();
}
