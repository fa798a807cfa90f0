// Starting the WASM backend: compiled synchronously on first use where the runtime allows it (Node; Chromium's
// main thread for this ~27 KB module, checked by bench/web-basics.ts), else after `await initWasm()`. The error
// for backend 'wasm' says what is wrong: not initialized yet (and how to fix it) vs no SIMD vs no WebAssembly.
// Each test imports a fresh copy of the modules (the compiled module is per-process state).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tinyConfig } from '../model/tiny.js';

type ModelEntry = typeof import('../../src/model/index.js');
type BackendEntry = typeof import('../../src/backend/index.js');

async function fresh(): Promise<{ model: ModelEntry; backend: BackendEntry }> {
  vi.resetModules();
  const model = (await import('../../src/model/index.js')) as ModelEntry;
  const backend = (await import('../../src/backend/index.js')) as BackendEntry;
  return { model, backend };
}

/** WebAssembly as the real one, with some members replaced. */
function stubWebAssembly(over: Record<string, unknown>): void {
  const props = Object.fromEntries(Object.entries(over).map(([k, v]) => [k, { value: v, enumerable: true }]));
  vi.stubGlobal('WebAssembly', Object.create(WebAssembly, props));
}

const chromiumRefusal = 'WebAssembly.Module(): Compiling a WebAssembly module is disallowed on the main thread, if the buffer size is larger than 8MB. Use WebAssembly.compile, or compile on a background thread.';

function modelBytes(m: ModelEntry): Uint8Array {
  const cfg = tinyConfig();
  return m.encodeModel(cfg, m.randomWeights(cfg, 1), { dtype: 'F64' });
}

afterEach(() => {
  vi.unstubAllGlobals();
  vi.resetModules();
});

describe('WASM start-up', () => {
  it("Node: compiled synchronously on first use, so 'auto' picks wasm with no ready step", async () => {
    const { model, backend } = await fresh();
    expect(model.wasmStatus()).toEqual({ state: 'ready', reason: 'compiled' });
    expect(backend.resolveBackend('auto')).toBe('wasm');
    expect(model.loadModel(modelBytes(model)).backend).toBe('wasm');
    expect(await model.initWasm()).toBe(true);
  });

  it("a refused synchronous compile: 'auto' is js until await initWasm(), 'wasm' says 'not initialized yet', not 'no SIMD'", async () => {
    let syncCompiles = 0;
    stubWebAssembly({
      Module: function Module() {
        syncCompiles++;
        throw new RangeError(chromiumRefusal);
      },
    });
    const { model, backend } = await fresh();
    expect(model.wasmSupported()).toBe(false);
    const status = model.wasmStatus();
    expect(status.state).toBe('pending');
    expect(status.reason).toContain('refused to compile it synchronously (RangeError: WebAssembly.Module(): Compiling');
    expect(backend.resolveBackend('auto')).toBe('js');
    expect(model.loadModel(modelBytes(model)).backend).toBe('js');
    const err = (() => {
      try {
        model.loadModel(modelBytes(model), { backend: 'wasm' });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.name).toBe('ConfigError'); // (a fresh copy of the module: another class object than this file's import)
    expect(err!.message).toMatch(/^backend 'wasm' is not available: the WebAssembly module is not initialized yet: .*; await initWasm\(\) \(from 'toeplitz-attention' or 'toeplitz-attention\/model'\) before creating the model or decoder$/);
    expect(err!.message).not.toMatch(/SIMD/);
    expect(syncCompiles).toBe(1); // tried once, not on every call
    expect(await model.initWasm()).toBe(true); // WebAssembly.compile (asynchronous) is the real one
    expect(model.wasmStatus().state).toBe('ready');
    expect(backend.resolveBackend('auto')).toBe('wasm');
    expect(model.loadModel(modelBytes(model)).backend).toBe('wasm');
    expect(model.loadModel(modelBytes(model), { backend: 'wasm' }).backend).toBe('wasm');
  });

  it("no SIMD (validate refuses the module): 'auto' is js, 'wasm' says SIMD is missing; initWasm() resolves false", async () => {
    stubWebAssembly({ validate: () => false });
    const { model, backend } = await fresh();
    expect(model.wasmSupported()).toBe(false);
    expect(model.wasmStatus().state).toBe('unsupported');
    expect(backend.resolveBackend('auto')).toBe('js');
    expect(() => backend.resolveBackend('wasm')).toThrow(
      "backend 'wasm' is not available: this runtime cannot run the WebAssembly SIMD backend: WebAssembly.validate() refused the module: this runtime lacks 128-bit WebAssembly SIMD; use backend 'js' or 'auto'",
    );
    expect(await model.initWasm()).toBe(false);
    expect(() => backend.resolveBackend('wasm')).toThrow(/lacks 128-bit WebAssembly SIMD/);
  });

  it('no WebAssembly at all, and an asynchronous compile that fails too (e.g. a CSP), say so', async () => {
    vi.stubGlobal('WebAssembly', undefined);
    let { model, backend } = await fresh();
    expect(backend.resolveBackend('auto')).toBe('js');
    expect(() => backend.resolveBackend('wasm')).toThrow(/this runtime cannot run the WebAssembly SIMD backend: this runtime has no WebAssembly; use backend 'js' or 'auto'/);
    vi.unstubAllGlobals();
    const csp = "WebAssembly.compile(): Refused to compile or instantiate WebAssembly module because 'unsafe-eval' is not an allowed source of script";
    stubWebAssembly({
      Module: function Module() {
        throw new WebAssembly.CompileError(csp);
      },
      compile: () => Promise.reject(new WebAssembly.CompileError(csp)),
    });
    ({ model, backend } = await fresh());
    expect(model.wasmStatus().state).toBe('pending'); // a synchronous refusal alone does not tell
    expect(await model.initWasm()).toBe(false);
    expect(model.wasmStatus()).toEqual({ state: 'unsupported', reason: `compiling the module failed (CompileError: ${csp})` });
    expect(() => backend.resolveBackend('wasm')).toThrow(/cannot run the WebAssembly SIMD backend: compiling the module failed \(CompileError: .*unsafe-eval/);
  });

  it('initWasm, wasmSupported and wasmStatus are exported from the root and ./model', async () => {
    const root = await import('../../src/index.js');
    const model = await import('../../src/model/index.js');
    for (const name of ['initWasm', 'wasmSupported', 'wasmStatus'] as const) {
      expect(typeof root[name]).toBe('function');
      expect(model[name]).toBe(root[name]);
    }
  });
});
