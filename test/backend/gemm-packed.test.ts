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
import { GEMM_ROWS, createRunState, forward, linearMatrices, linearWorkspaceEntries, packedLinears, type AttendFn, type GemmFn } from '../../src/model/forward.js';
import type { ModelWeights } from '../../src/model/weights.js';
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

/** f32 panels of W in ws: a Float32Array view of ws memory, `off` floats in (unaligned offsets included). */
function put32(ws: Workspace, W: Float64Array, N: number, K: number, off: number): Float32Array {
  const f = ws.f64(Math.ceil((off + packedLength(N, K)) / 2));
  const p = new Float32Array(f.buffer, f.byteOffset, off + packedLength(N, K));
  ws.packPanels(W, 0, N, K, p.subarray(off));
  return p;
}

describe.skipIf(!wasmSupported())('WASM gemmPacked / gemvPacked on float32 panels', () => {
  const f32 = (a: Float64Array): Float64Array => a.map(Math.fround);

  it('are bit-identical to the WASM gemm on W (every shape: edge panels, four-panel passes, depth blocks, M > 4)', () => {
    const rng = new Rng(41);
    const ws = createWasmWorkspace(1 << 21);
    for (const [M, N, K] of [...SHAPES, [1, 16, 3], [1, 20, 9], [1, 688, 128], [4, 21, 33], [3, 344, 300]] as const) {
      for (const accumulate of [false, true]) {
        const mark = ws.mark();
        const [aOff, bOff, cOff] = [3, 5, 2];
        const a = rand(rng, aOff + M * K);
        const W = f32(rand(rng, N * K));
        const c0 = rand(rng, cOff + M * N + 3);
        const plain = { a: put(ws, a), aOff, b: put(ws, W), bOff: 0, c: put(ws, c0), cOff, M, N, K, accumulate };
        ws.gemm(plain);
        const g = { a: put(ws, a), aOff, b: put32(ws, W, N, K, bOff), bOff, c: put(ws, c0), cOff, M, N, K, accumulate };
        ws.gemmPacked(g);
        const what = `${M}x${N}x${K} accumulate ${accumulate}`;
        expect(sameBits(g.c, plain.c), what).toBe(true);
        // and the JS kernel on JS f32 panels: the same bits as the JS gemm (one depth block: as the WASM one)
        const p32 = new Float32Array(packedLength(N, K));
        packPanels(W, 0, N, K, p32);
        const ref = c0.slice();
        js.gemmPacked({ a, aOff, b: p32, bOff: 0, c: ref, cOff, M, N, K, accumulate });
        if (K <= 256) expect(sameBits(g.c, ref), what).toBe(true);
        else expect(rowError(g.c, ref, N, cOff, M * N), what).toBeLessThan(1e-12);
        ws.release(mark);
      }
    }
  });

  it('give the same bits when operands are copied: a and c outside, panels outside (widened), no room (a throwaway instance)', () => {
    const rng = new Rng(42);
    for (const [M, N, K] of [[1, 13, 9], [1, 344, 128], [6, 10, 300], [40, 50, 260]] as const) {
      const W = f32(rand(rng, N * K));
      const a = rand(rng, M * K);
      const c0 = rand(rng, M * N);
      const big = createWasmWorkspace(1 << 18);
      const want = { a: put(big, a), aOff: 0, b: put(big, W), bOff: 0, c: put(big, c0), cOff: 0, M, N, K, accumulate: true };
      big.gemm(want);
      const what = `${M}x${N}x${K}`;
      const inside = put32(big, W, N, K, 0);
      const outside = { a: a.slice(), aOff: 0, b: inside, bOff: 0, c: c0.slice(), cOff: 0, M, N, K, accumulate: true };
      big.gemmPacked(outside);
      expect(sameBits(outside.c, want.c), `${what}: a, c copied through the free space`).toBe(true);
      const p32 = new Float32Array(packedLength(N, K));
      packPanels(W, 0, N, K, p32);
      const foreign = { a: a.slice(), aOff: 0, b: p32, bOff: 0, c: c0.slice(), cOff: 0, M, N, K, accumulate: true };
      big.gemmPacked(foreign);
      expect(sameBits(foreign.c, want.c), `${what}: panels outside the memory`).toBe(true);
      // a workspace holding only the panels: a and c do not fit, the call runs on a throwaway instance
      const tight = createWasmWorkspace(Math.ceil(packedLength(N, K) / 2) + 8);
      const own = put32(tight, W, N, K, 0);
      const cramped = { a: a.slice(), aOff: 0, b: own, bOff: 0, c: c0.slice(), cOff: 0, M, N, K, accumulate: true };
      tight.gemmPacked(cramped);
      expect(sameBits(cramped.c, want.c), `${what}: no room`).toBe(true);
    }
  });
});

/** The weights rounded to float32 (as a model file's F32 tensors are): the model packs them as f32 panels. */
function roundedWeights(w: ModelWeights): ModelWeights {
  const r = (a: Float64Array): Float64Array => a.map(Math.fround);
  const tokEmbeddings = r(w.tokEmbeddings);
  const layers = w.layers.map((L) => ({ ...L, wq: r(L.wq), wk: r(L.wk), wv: r(L.wv), wo: r(L.wo), w1: r(L.w1), w2: r(L.w2), w3: r(L.w3) }));
  return { tokEmbeddings, layers, norm: w.norm, output: w.output === w.tokEmbeddings ? tokEmbeddings : r(w.output) };
}

describe("the model's packed GEMM (packedLinears)", () => {
  const config = checkModelConfig({ format: 'toeplitz-lm/1', vocab: 256, dim: 12, layers: 2, heads: 2, keyDim: 4, valueDim: 3, hidden: 19, features: { kind: 'prf', count: 5, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true });
  for (const [kind, weights] of [['float64', randomWeights(config, 5)], ['float32-exact', roundedWeights(randomWeights(config, 6))]] as const) {
  for (const backend of ['js', 'wasm'] as const) {
    it.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}, ${kind} weights: every linear layer runs packed, bit-identical to the unpacked gemm, with no workspace memory per call`, () => {
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

    it.skipIf(backend === 'wasm' && !wasmSupported())(`${backend}, ${kind} weights: a one-row forward (fused q|k|v and w1|w3 products) gives the bits of one on the plain gemm`, () => {
      // hidden 19: w1 | w3 do not concatenate by panels (only q | k | v fuse); hidden 20: both do
      for (const hidden of [19, 20]) {
        const cfg = checkModelConfig({ ...config, hidden });
        const w = hidden === config.hidden ? weights : kind === 'float64' ? randomWeights(cfg, 5) : roundedWeights(randomWeights(cfg, 6));
        const ws = backend === 'wasm' ? createWasmWorkspace(linearWorkspaceEntries(cfg, w, GEMM_ROWS)) : new JsWorkspace();
        const gemmFn = packedLinears(cfg, w, ws);
        expect(gemmFn.fused?.size).toBe(hidden % 4 === 0 ? 2 * cfg.layers : cfg.layers);
        const plain = backend === 'wasm' ? createWasmWorkspace(1 << 16) : new JsWorkspace();
        const plainFn: GemmFn = (g) => plain.gemm(g);
        const fusedState = createRunState(cfg, 1, gemmFn);
        const plainState = createRunState(cfg, 1, plainFn);
        expect(fusedState.q.buffer).toBe(fusedState.v.buffer);
        // attention stand-in: z from q, k, v, so every product feeds the logits
        const attend: AttendFn = (_l, _n, s) => {
          for (let i = 0; i < s.z.length; i++) s.z[i] = 0.5 * s.q[i]! - 0.25 * s.k[i]! + s.v[i]!;
        };
        for (const token of [0, 72, 255]) {
          const a = new Float64Array(cfg.vocab);
          const b = new Float64Array(cfg.vocab);
          forward(cfg, w, [token], 0, 1, fusedState, attend, a, 0, true);
          forward(cfg, w, [token], 0, 1, plainState, attend, b, 0, true);
          expect(sameBits(a, b), `hidden ${hidden}, token ${token}`).toBe(true);
          expect(a.every(Number.isFinite)).toBe(true);
        }
      }
    });
  }
  }

  it.skipIf(!wasmSupported())('packs float32-exact weights in half the memory, float64 ones as they are', () => {
    const w64 = randomWeights(config, 7);
    const w32 = roundedWeights(w64);
    const panels = linearMatrices(config, w64).reduce((n, { W, N, K }) => (W === w64.output && W === w64.tokEmbeddings && n > 0 ? n : n) + packedLength(N, K), 0);
    const e64 = linearWorkspaceEntries(config, w64, GEMM_ROWS);
    const e32 = linearWorkspaceEntries(config, w32, GEMM_ROWS);
    expect(e64 - e32).toBeGreaterThan(0.45 * panels);
    // a single weight that float32 would round keeps its matrix in float64 (and the results exact)
    const mixed = roundedWeights(w64);
    mixed.layers[1]!.w2[7] = 0.1;
    expect(linearWorkspaceEntries(config, mixed, GEMM_ROWS)).toBeGreaterThan(e32);
    const ws = createWasmWorkspace(linearWorkspaceEntries(config, mixed, GEMM_ROWS));
    const gemmFn = packedLinears(config, mixed, ws);
    const plain = createWasmWorkspace(1 << 16);
    const { W, N, K } = { W: mixed.layers[1]!.w2, N: config.dim, K: config.hidden };
    const a = rand(new Rng(8), K);
    const got = new Float64Array(N);
    const want = new Float64Array(N);
    gemmFn({ a, aOff: 0, b: W, bOff: 0, c: got, cOff: 0, M: 1, N, K, accumulate: false });
    plain.gemm({ a, aOff: 0, b: W, bOff: 0, c: want, cOff: 0, M: 1, N, K, accumulate: false });
    expect(sameBits(got, want)).toBe(true);
  });
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
