// Weights packed once (packPanels) and the one-row kernel (gemvPacked, reached through gemmPacked with M = 1) in
// WASM SIMD: bit-identical to the WASM gemm on the unpacked W (the same sums in the same order), within 1e-12 of
// the plain JS reference per row, the same bits whether a and c are views of the workspace or plain arrays copied
// through it, and no workspace memory taken per call. Also the model's packed GEMM (packedLinears).
import { describe, expect, it } from 'vitest';
import { JsWorkspace } from '../../src/backend/js.js';
import { createWasmWorkspace, wasmSupported } from '../../src/backend/wasm.js';
import type { GemmArgs, Workspace } from '../../src/backend/types.js';
import { packedLength, packPanels } from '../../src/math/gemm.js';
import { Rng } from '../../src/math/rng.js';
import { GEMM_ROWS, linearMatrices, linearWorkspaceEntries, packedLinears } from '../../src/model/forward.js';
import { createModel, randomWeights } from '../../src/model/index.js';
import { checkModelConfig } from '../../src/model/config.js';

const js = new JsWorkspace();

function rand(rng: Rng, n: number): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.nextFloat64() * 2 - 1;
  return a;
}

function put(ws: Workspace, src: Float64Array): Float64Array {
  const a = ws.f64(src.length);
  a.set(src);
  return a;
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** max over rows of max |a - b| / max |b|, over entries [off, off + len) of b and [off - shift, ...) of a */
function rowError(a: Float64Array, b: Float64Array, cols: number, off: number, len: number, shift = 0): number {
  let worst = 0;
  for (let r = off; r < off + len; r += cols) {
    let e = 0;
    let n = 0;
    for (let j = r; j < r + cols; j++) {
      e = Math.max(e, Math.abs(a[j - shift]! - b[j]!));
      n = Math.max(n, Math.abs(b[j]!));
    }
    if (Number.isNaN(e)) return Infinity;
    if (e > 0) worst = Math.max(worst, e / n);
  }
  return worst;
}

// odd sizes, one and two panels per pass with a tail, edge panels of 1-3 columns, depth blocks (K > 256)
const SHAPES: ReadonlyArray<readonly [number, number, number]> = [
  [1, 1, 1],
  [1, 2, 3],
  [1, 3, 5],
  [1, 4, 4],
  [1, 5, 2],
  [1, 8, 7],
  [1, 11, 9],
  [1, 12, 16],
  [1, 128, 128],
  [1, 344, 128],
  [1, 128, 344],
  [1, 257, 600],
  [2, 9, 3],
  [5, 13, 17],
  [64, 67, 129],
  [65, 30, 300],
];

describe.skipIf(!wasmSupported())('WASM gemmPacked / gemvPacked', () => {
  it('is bit-identical to the WASM gemm on the unpacked W, and within 1e-12 per row of the JS reference', () => {
    const rng = new Rng(31);
    const ws = createWasmWorkspace(1 << 21);
    for (const [M, N, K] of SHAPES) {
      for (const accumulate of [false, true]) {
        const mark = ws.mark();
        const [aOff, bOff, cOff] = [3, 8, 5];
        const a = rand(rng, aOff + M * K);
        const W = rand(rng, N * K);
        const c0 = rand(rng, cOff + M * N + 3);
        const packed = ws.f64(bOff + packedLength(N, K));
        ws.packPanels(put(ws, W), 0, N, K, packed.subarray(bOff));
        const plain = { a: put(ws, a), aOff, b: put(ws, W), bOff: 0, c: put(ws, c0), cOff, M, N, K, accumulate };
        ws.gemm(plain);
        const g: GemmArgs = { a: put(ws, a), aOff, b: packed, bOff, c: put(ws, c0), cOff, M, N, K, accumulate };
        ws.gemmPacked(g);
        const what = `${M}x${N}x${K} accumulate ${accumulate}`;
        expect(sameBits(g.c, plain.c), what).toBe(true);
        expect(g.c.every(Number.isFinite), what).toBe(true);
        // the plain JS kernel over the JS packing
        const ref = c0.slice();
        const jsPacked = new Float64Array(packedLength(N, K));
        packPanels(W, 0, N, K, jsPacked);
        js.gemmPacked({ a, aOff, b: jsPacked, bOff: 0, c: ref, cOff, M, N, K, accumulate });
        expect(rowError(g.c, ref, N, cOff, M * N), what).toBeLessThan(1e-12);
        if (K <= 256) expect(sameBits(g.c, ref), `${what}: one depth block sums in the JS order`).toBe(true);
        // outside c untouched
        expect(sameBits(g.c.subarray(0, cOff), c0.subarray(0, cOff)) && sameBits(g.c.subarray(cOff + M * N), c0.subarray(cOff + M * N)), what).toBe(true);
        ws.release(mark);
      }
    }
  });

  it('packs in WASM exactly as the JS packing, and the strided source (offset into a larger array) too', () => {
    const rng = new Rng(32);
    const ws = createWasmWorkspace(1 << 18);
    for (const [N, K] of [[1, 1], [3, 5], [4, 3], [10, 7], [129, 33]] as const) {
      const W = rand(rng, 6 + N * K);
      const inMem = ws.f64(packedLength(N, K));
      ws.packPanels(put(ws, W), 6, N, K, inMem); // the kernel
      const fromJs = ws.f64(packedLength(N, K));
      ws.packPanels(W, 6, N, K, fromJs); // W outside the memory: the plain packing into the view
      const ref = new Float64Array(packedLength(N, K));
      packPanels(W, 6, N, K, ref);
      expect(sameBits(inMem, ref) && sameBits(fromJs, ref), `${N}x${K}`).toBe(true);
    }
  });

  it('gives the same bits with a and c outside the workspace (copied through it), taking no workspace memory', () => {
    const rng = new Rng(33);
    const ws = createWasmWorkspace(1 << 18);
    for (const [M, N, K] of [[1, 13, 9], [1, 344, 128], [3, 10, 300], [40, 50, 300]] as const) { // short and long copies
      for (const accumulate of [false, true]) {
        const mark = ws.mark();
        const packed = ws.f64(packedLength(N, K));
        ws.packPanels(rand(rng, N * K), 0, N, K, packed);
        const a = rand(rng, 2 + M * K);
        const c0 = rand(rng, 1 + M * N + 2);
        const inside = { a: put(ws, a), aOff: 2, b: packed, bOff: 0, c: put(ws, c0), cOff: 1, M, N, K, accumulate };
        ws.gemmPacked(inside);
        const before = ws.available;
        const top = ws.mark();
        const outside = { a: a.slice(), aOff: 2, b: packed, bOff: 0, c: c0.slice(), cOff: 1, M, N, K, accumulate };
        ws.gemmPacked(outside);
        expect(ws.available).toBe(before);
        expect(ws.mark()).toBe(top);
        expect(sameBits(outside.c, inside.c), `${M}x${N}x${K} accumulate ${accumulate}`).toBe(true);
        // the space the copies used is zeroed for the next array taken
        expect(ws.f64(64).every((x) => x === 0)).toBe(true);
        ws.release(mark);
      }
    }
  });

  it('refuses operands out of range', () => {
    const ws = createWasmWorkspace(4096);
    const packed = ws.f64(packedLength(5, 3));
    const g: GemmArgs = { a: ws.f64(3), aOff: 1, b: packed, bOff: 0, c: ws.f64(5), cOff: 0, M: 1, N: 5, K: 3, accumulate: false };
    expect(() => ws.gemmPacked(g)).toThrow(RangeError);
    expect(() => ws.gemmPacked({ ...g, aOff: 0, b: ws.f64(packedLength(5, 3) - 1) })).toThrow(/gemmPacked b/);
    expect(() => ws.packPanels(new Float64Array(15), 0, 5, 3, new Float64Array(packedLength(5, 3)))).toThrow(/view of this workspace/);
  });
});

describe("the model's packed GEMM (packedLinears)", () => {
  const config = checkModelConfig({ format: 'toeplitz-lm/1', vocab: 256, dim: 12, layers: 2, heads: 2, keyDim: 4, valueDim: 3, hidden: 19, features: { kind: 'prf', count: 5, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true });
  const weights = randomWeights(config, 5);
  for (const backend of ['js', 'wasm'] as const) {
    it.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}: every linear layer runs packed, bit-identical to the unpacked gemm, with no workspace memory per call`, () => {
      const ws = backend === 'wasm' ? createWasmWorkspace(linearWorkspaceEntries(config, weights, GEMM_ROWS)) : new JsWorkspace();
      const gemmFn = packedLinears(config, weights, ws);
      const plain = backend === 'wasm' ? createWasmWorkspace(1 << 16) : new JsWorkspace();
      const rng = new Rng(34);
      const mats = linearMatrices(config, weights);
      expect(mats.length).toBe(7 * config.layers + 1);
      for (const { W, N, K } of mats) {
        for (const M of [1, 3]) {
          const a = rand(rng, M * K);
          const c0 = rand(rng, M * N);
          const got = c0.slice();
          const g: GemmArgs = { a, aOff: 0, b: W, bOff: 0, c: got, cOff: 0, M, N, K, accumulate: true };
          const free = ws.available;
          gemmFn(g);
          expect(ws.available).toBe(free);
          expect(g.b).toBe(W); // the record is handed back as given
          const want = c0.slice();
          plain.gemm({ a, aOff: 0, b: W, bOff: 0, c: want, cOff: 0, M, N, K, accumulate: true });
          expect(sameBits(got, want), `${N}x${K} M=${M}`).toBe(true);
        }
      }
    });
  }
});

describe('sessions sharing the model-owned one-row state', () => {
  for (const backend of ['js', 'wasm'] as const) {
    it.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}: two sessions interleaved token by token generate what each generates alone, and one-token feeds match a chunked feed's rows`, async () => {
      const config = checkModelConfig({ format: 'toeplitz-lm/1', vocab: 256, dim: 16, layers: 2, heads: 2, keyDim: 4, valueDim: 4, hidden: 24, features: { kind: 'prf', count: 6, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true });
      const model = createModel(config, randomWeights(config, 9), { backend });
      const prompt = new TextEncoder().encode('Call me Ishmael.');
      const alone = async (seed: number): Promise<number[]> => {
        const s = model.session({ seed });
        const out: number[] = [];
        for await (const g of s.generate(prompt, { maxTokens: 40 })) out.push(g.token);
        return out;
      };
      const a = await alone(1);
      const b = await alone(2);
      const sa = model.session({ seed: 1 });
      const sb = model.session({ seed: 2 });
      const ia = sa.generate(prompt, { maxTokens: 40 })[Symbol.asyncIterator]();
      const ib = sb.generate(prompt, { maxTokens: 40 })[Symbol.asyncIterator]();
      const ta: number[] = [];
      const tb: number[] = [];
      for (let i = 0; i < 40; i++) {
        ta.push((await ia.next()).value!.token);
        tb.push((await ib.next()).value!.token);
      }
      expect(ta).toEqual(a);
      expect(tb).toEqual(b);
      // one token at a time (the one-row path, Decoder.step) against one chunk (the many-row path, Decoder.chunk:
      // another summation order in attention, so to rounding), with another session stepping in between
      const one = model.session();
      const other = model.session();
      const rows = model.session().feed(prompt);
      for (let i = 0; i < prompt.length; i++) {
        const got = one.feed(prompt.subarray(i, i + 1));
        other.feed(prompt.subarray(prompt.length - 1 - i, prompt.length - i));
        expect(rowError(got, rows, 256, i * 256, 256, i * 256), `row ${i}`).toBeLessThan(1e-12);
      }
    });
  }
});
