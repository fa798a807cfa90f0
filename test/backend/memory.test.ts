// WebAssembly memory at its limits (issue 22, findings 4 and 11): a refused reservation and the 4 GiB wasm32
// limit are typed errors saying what ran out and what was asked, model.restore does not call a valid snapshot
// damaged because memory ran out, and attention() under backend 'auto' falls back to JS past the limit.
// The failures are injected at the memory-creation seam (wasmMemory), plus one real refusal in a child
// process whose address space is capped (ulimit -v), so nothing here exhausts the machine.
import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { attention, Decoder, ResourceError, ToeplitzAttentionError, type AttentionConfig } from '../../src/index.js';
import { wasmMemory, wasmSupported } from '../../src/backend/wasm.js';
import { ModelError } from '../../src/model/index.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';
import { tinyModel } from '../model/tiny.js';

const WASM = wasmSupported();
const realAllocate = wasmMemory.allocate;
const realMaxPages = wasmMemory.maxPages;
afterEach(() => {
  wasmMemory.allocate = realAllocate;
  wasmMemory.maxPages = realMaxPages;
});

/** Make every later memory creation fail as V8 does when its reservations are exhausted; count the attempts. */
function refuseReservations(): { asked: number[] } {
  const log = { asked: [] as number[] };
  wasmMemory.allocate = (pages: number) => {
    log.asked.push(pages);
    throw new RangeError('WebAssembly.Memory(): could not allocate memory');
  };
  return log;
}

const cfg: AttentionConfig = { heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8, seed: 1 }, rpe: { past: { bias: [0, -0.5, -1], tail: 'clip' } } };

describe.skipIf(!WASM)('a refused WebAssembly memory reservation', () => {
  it('new Decoder: a ResourceError naming WebAssembly memory, the size asked and how many are live, not a raw RangeError', () => {
    const held = [1, 2, 3].map(() => new Decoder(cfg, { backend: 'wasm' }));
    const log = refuseReservations();
    let err: unknown;
    try {
      new Decoder(cfg, { backend: 'wasm' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResourceError);
    expect(err).toBeInstanceOf(ToeplitzAttentionError);
    const r = err as ResourceError;
    expect(r.name).toBe('ResourceError');
    expect(r.resource).toBe('wasm-memory');
    expect(log.asked).toHaveLength(1);
    expect(r.requestedBytes).toBe(log.asked[0]! * 65536);
    expect(r.message).toMatch(/WebAssembly memory/);
    expect(r.message).toContain(`${r.requestedBytes.toLocaleString('en-US')} bytes`);
    expect(r.message).toMatch(/could not allocate memory/); // the runtime's own words
    expect(r.message).toMatch(/backend 'js'/); // and what to do
    const live = Number(/and ([\d,]+) are live in this process/.exec(r.message)![1]!.replace(/,/g, ''));
    expect(live).toBeGreaterThanOrEqual(held.length);
  });

  it('attention() and a decoder growing its rings mid-stream: the same typed error, the decoder unchanged', () => {
    const rng = new Rng(3);
    const q = randomTensor(rng, [2, 40, 4]);
    const k = randomTensor(rng, [2, 40, 4]);
    const v = randomTensor(rng, [2, 40, 3]);
    const long: AttentionConfig = { ...cfg, rpe: { past: { bias: Array.from({ length: 300 }, (_, i) => -i / 100), tail: 'clip' } } };
    const dec = new Decoder(long, { backend: 'wasm' });
    dec.chunk(q.hi(2, 10, 4), k.hi(2, 10, 4), v.hi(2, 10, 3));
    const before = dec.snapshot();
    refuseReservations();
    expect(() => attention(cfg, q, k, v, { backend: 'wasm', method: 'direct' })).toThrow(ResourceError);
    // 30 more tokens outgrow the first ring capacity (64) only later: feed 100 at once to force a new workspace
    const big = [randomTensor(rng, [2, 100, 4]), randomTensor(rng, [2, 100, 4]), randomTensor(rng, [2, 100, 3])] as const;
    expect(() => dec.chunk(big[0], big[1], big[2])).toThrow(ResourceError);
    expect(dec.snapshot()).toEqual(before);
  });

  it('model.restore of a valid snapshot propagates the ResourceError instead of calling the snapshot damaged', () => {
    const model = tinyModel(5); // its matrix products: WASM memory made before the seam refuses
    const s = model.session({ seed: 2 });
    s.feed([72, 105, 33]);
    const bytes = s.snapshot();
    refuseReservations();
    let err: unknown;
    try {
      model.restore(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResourceError);
    expect(err).not.toBeInstanceOf(ModelError);
    // the same bytes restore once memory is available again: they were never damaged
    wasmMemory.allocate = realAllocate;
    expect(model.restore(bytes).position).toBe(3);
  });
});

describe.skipIf(!WASM)('the 4 GiB limit of WebAssembly memory', () => {
  const rng = new Rng(8);
  const n = 300;
  const q = randomTensor(rng, [2, n, 4]);
  const k = randomTensor(rng, [2, n, 4]);
  const v = randomTensor(rng, [2, n, 3]);

  it("attention() with backend 'wasm' past the limit: a ResourceError naming the limit and the size asked", () => {
    wasmMemory.maxPages = 2; // 128 KiB: this call needs more (the size estimate is the seam, not 4 GiB)
    let err: unknown;
    try {
      attention(cfg, q, k, v, { backend: 'wasm' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ResourceError);
    const r = err as ResourceError;
    expect(r.limitBytes).toBe(2 * 65536);
    expect(r.requestedBytes).toBeGreaterThan(2 * 65536);
    expect(r.message).toMatch(/limit of WebAssembly memory/);
    expect(r.message).toContain(`${r.requestedBytes.toLocaleString('en-US')} bytes`);
  });

  it("attention() with backend 'auto' past the limit runs on JS: the JS backend's exact bits", () => {
    const js = attention(cfg, q, k, v, { backend: 'js' });
    wasmMemory.maxPages = 2;
    const log = { asked: 0 };
    wasmMemory.allocate = (pages) => {
      log.asked++;
      return realAllocate(pages);
    };
    const auto = attention(cfg, q, k, v, { backend: 'auto' });
    expect(Array.from(auto.data)).toEqual(Array.from(js.data));
    expect(log.asked).toBe(0); // no WASM memory was even tried
    wasmMemory.maxPages = realMaxPages;
    const wasm = attention(cfg, q, k, v, { backend: 'auto' });
    expect(Array.from(wasm.data)).not.toEqual(Array.from(js.data)); // below the limit 'auto' is WASM (other bits)
  });

  it('a Decoder past the limit: a ResourceError at construction, not a RangeError', () => {
    wasmMemory.maxPages = 1;
    expect(() => new Decoder({ ...cfg, rpe: { past: { bias: new Array(4000).fill(0), tail: 'clip' } } }, { backend: 'wasm' })).toThrow(ResourceError);
  });
});

describe.skipIf(!WASM || process.platform !== 'linux')('a real refusal (child process with its address space capped)', () => {
  it('Decoder, and a WASM model made to restore a session, give a ResourceError when V8 cannot reserve WebAssembly memory (the JS model refuses a WASM snapshot as "backend" first: model.restore\'s own propagation is tested above with the seam)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tz-mem-'));
    try {
      const model = tinyModel(5);
      const s = model.session({ seed: 2 });
      s.feed([72, 105]);
      writeFileSync(join(dir, 'session.bin'), s.snapshot());
      const script = join(dir, 'child.ts');
      const root = process.cwd();
      writeFileSync(
        script,
        `import { Decoder } from '${root}/src/index.js';
import { encodeModel, loadModel, randomWeights } from '${root}/src/model/index.js';
import { tinyConfig } from '${root}/test/model/tiny.js';
import { readFileSync } from 'node:fs';
const out: string[] = [];
for (const f of [() => new Decoder({ heads: 1, keyDim: 2, valueDim: 2, features: { kind: 'relu' }, rpe: { past: { bias: [0] } } }, { backend: 'wasm' }), () => loadModel(encodeModel(tinyConfig(), randomWeights(tinyConfig(), 5), { dtype: 'F64' }), { backend: 'wasm' }).restore(readFileSync('${dir}/session.bin'))]) {
  try { f(); out.push('ok'); } catch (e) { out.push((e as Error).name + ': ' + (e as Error).message); }
}
console.log(JSON.stringify(out));
`,
      );
      // bundled to plain JavaScript: tsx itself would need WebAssembly memory in the capped child
      const bundle = join(dir, 'child.mjs');
      buildSync({ entryPoints: [script], bundle: true, platform: 'node', format: 'esm', outfile: bundle, logLevel: 'silent' });
      // 6 GB of address space: plenty for Node, too little for one V8 WebAssembly memory (it reserves ~10 GiB)
      const r = spawnSync('sh', ['-c', `ulimit -v 6000000 && exec "${process.execPath}" "${bundle}"`], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout) as string[];
      expect(out[0]).toMatch(/^ResourceError: .*WebAssembly memory/);
      expect(out[1]).toMatch(/^ResourceError: .*WebAssembly memory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
