// The committed src/backend/wasmBinary.ts is exactly what assembly/*.ts compiles to (asc output is deterministic:
// same sources, flags and compiler version -> same bytes), so `npm test` never needs to run the compiler to trust it.
// In its own file so that vitest runs this compile (a few seconds) beside the kernel tests.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('wasmBinary.ts', () => {
  it('is what the current assembly/ sources compile to', async () => {
    const build = (await import('../../scripts/build-wasm.mjs' as string)) as {
      compileWasm: () => Promise<{ binary: Uint8Array }>;
      renderModule: (binary: Uint8Array) => string;
    };
    const { binary } = await build.compileWasm();
    const committed = readFileSync(new URL('../../src/backend/wasmBinary.ts', import.meta.url), 'utf8');
    expect(build.renderModule(binary) === committed, 'stale: run `node scripts/build-wasm.mjs`').toBe(true);
  });
});
