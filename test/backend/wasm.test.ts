// The WASM SIMD backend against the JS backend (the reference): every kernel on random inputs of many sizes,
// agreement to 1e-12 (normwise per row), bit-for-bit where the arithmetic is the same (far field, spectral
// multiply-accumulate), bit-for-bit reproducibility across workspaces and through the copy-in fallback, and
// the workspace's memory discipline (capacity, mark/release, plans, no growth).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JsWorkspace } from '../../src/backend/js.js';
import { createWasmWorkspace, wasmF64Entries, wasmFftPlanEntries, wasmSupported, WASM_HEADER_BYTES } from '../../src/backend/wasm.js';
import { WASM_BASE64, WASM_BYTES, WASM_SHA256, WASM_SOURCE_SHA256 } from '../../src/backend/wasmBinary.js';
import type { AformRing32Args, AformRingArgs, AformRows32Args, AformRowsArgs, GemmArgs, PrfLogitsArgs, Workspace } from '../../src/backend/types.js';
import { packedLength, type PackedGemmArgs } from '../../src/math/gemm.js';
import { Rng } from '../../src/math/rng.js';
import { sformChannelsDirect, spectralConvJs } from './reference.js';
import { partitionKernel, sformChannelsScratch } from '../../src/math/fftconv.js';
import { wasmSformChannelsScratch, type WasmWorkspace } from '../../src/backend/wasm.js';
import { acquireWorkspace, releaseWorkspace } from '../../src/backend/index.js';
import { attention } from '../../src/engine/attention.js';
import ndarray from 'ndarray';

const TOL = 1e-12;
const js = new JsWorkspace();

function rand(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.nextFloat64();
  return a;
}

/** A copy of `src` in the workspace (a view of its memory for WASM). */
function put(ws: Workspace, src: Float64Array): Float64Array {
  const a = ws.f64(src.length);
  a.set(src);
  return a;
}

/** max over rows of max_col |a - b| / max_col |b| (0/0 = 0); rows of `cols` entries from `off`. */
function rowError(a: Float64Array, b: Float64Array, cols: number, off = 0, len = b.length - off): number {
  let worst = 0;
  for (let r = off; r < off + len; r += cols) {
    let e = 0;
    let n = 0;
    for (let j = r; j < Math.min(r + cols, off + len); j++) {
      e = Math.max(e, Math.abs(a[j]! - b[j]!));
      n = Math.max(n, Math.abs(b[j]!));
    }
    if (Number.isNaN(e)) return Infinity;
    if (e > 0) worst = Math.max(worst, e / n);
  }
  return worst;
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  const x = new BigUint64Array(a.buffer, a.byteOffset, a.length);
  const y = new BigUint64Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Kernel c(t): positive, with some exact zeros (b = -Infinity) when `zeros`. */
function kernelC(rng: Rng, n: number, zeros: boolean): Float64Array {
  const c = rand(rng, n, 0.05, 1.5);
  if (zeros) for (let t = 0; t < n; t++) if (rng.nextFloat64() < 0.2) c[t] = 0;
  return c;
}

describe('module', () => {
  it('is supported in Node and the committed bytes are intact', () => {
    expect(wasmSupported()).toBe(true);
    const bytes = Buffer.from(WASM_BASE64, 'base64');
    expect(bytes.length).toBe(WASM_BYTES);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(WASM_SHA256);
    expect(WebAssembly.validate(bytes)).toBe(true);
  });

  it('was built from the current assembly/ sources (source hash; the full recompile is in wasm-build.test.ts)', async () => {
    const build = (await import('../../scripts/build-wasm.mjs' as string)) as { sourceHash: () => string };
    expect(build.sourceHash(), 'assembly/ changed: run `node scripts/build-wasm.mjs`').toBe(WASM_SOURCE_SHA256);
  });

  it('imports only its memory and exports the kernels', () => {
    const mod = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    for (const k of ['aformRows', 'aformRing', 'farAbsorb', 'farContract', 'scaleFar', 'prfLogits', 'gemm', 'fftInit', 'fftForward', 'fftInverse', 'spectralMac']) {
      expect(names).toContain(k);
    }
  });
});

describe('fft', () => {
  it('forward and inverse match fft.js for N = 2 .. 65536 (1e-12 normwise); inverse(forward(x)) = x', () => {
    const rng = new Rng(1);
    const ws = createWasmWorkspace(6 * 65536 + 9 * 65536);
    for (let p = 1; p <= 16; p++) {
      const N = 2 ** p;
      const mark = ws.mark();
      const x = rand(rng, 2 * N);
      const input = put(ws, x);
      const out = ws.f64(2 * N);
      const back = ws.f64(2 * N);
      const ref = new Float64Array(2 * N);
      const plan = ws.fftPlan(N);
      expect(plan.size).toBe(N);
      plan.forward(out, input);
      js.fftPlan(N).forward(ref, x);
      expect(rowError(out, ref, 2 * N), `forward N=${N}`).toBeLessThan(TOL);
      expect(sameBits(input, x), 'input untouched').toBe(true);
      plan.inverse(back, out);
      expect(rowError(back, x, 2 * N), `roundtrip N=${N}`).toBeLessThan(TOL);
      js.fftPlan(N).inverse(ref, x);
      plan.inverse(out, input);
      expect(rowError(out, ref, 2 * N), `inverse N=${N}`).toBeLessThan(TOL);
      ws.release(mark);
    }
  });

  it('is exact on impulses and symmetric twiddles (w^(N/4) = -i)', () => {
    const ws = createWasmWorkspace(4 * 64);
    const N = 32;
    const input = ws.f64(2 * N);
    const out = ws.f64(2 * N);
    input[2 * (N / 4)] = 1; // x_j = delta(j - N/4): X_k = (-i)^k
    ws.fftPlan(N).forward(out, input);
    for (let k = 0; k < N; k++) {
      const expected = [
        [1, 0],
        [0, -1],
        [-1, 0],
        [0, 1],
      ][k % 4]!;
      expect([out[2 * k]! + 0, out[2 * k + 1]! + 0]).toEqual(expected);
    }
  });

  it('plans live in the workspace, outside the mark/release stack, and cost wasmFftPlanEntries', () => {
    const ws = createWasmWorkspace(200_000);
    for (const N of [2, 4, 8, 16, 1024, 2048, 8192]) {
      const before = ws.available;
      const mark = ws.mark();
      ws.fftPlan(N);
      ws.release(mark);
      expect(before - ws.available).toBe(wasmFftPlanEntries(N));
      expect(ws.fftPlan(N)).toBe(ws.fftPlan(N));
    }
    expect(() => ws.fftPlan(12)).toThrow(/power of two/);
    const out = ws.f64(32);
    expect(() => ws.fftPlan(16).forward(out, out)).toThrow(/overlap/);
  });
});

describe('spectralMac', () => {
  it('is bit-identical to the JS loop', () => {
    const rng = new Rng(2);
    const ws = createWasmWorkspace(1 << 16);
    for (const N of [1, 2, 3, 16, 1000, 4096]) {
      const mark = ws.mark();
      const X = rand(rng, 2 * N + 6);
      const H = rand(rng, 2 * N + 4);
      const Y0 = rand(rng, 2 * N);
      const Y = put(ws, Y0);
      const Yref = Y0.slice();
      ws.spectralMac({ Y, X: put(ws, X), xOff: 6, H: put(ws, H), hOff: 2, N });
      js.spectralMac({ Y: Yref, X, xOff: 6, H, hOff: 2, N });
      expect(sameBits(Y, Yref), `N=${N}`).toBe(true);
      ws.release(mark);
    }
  });
});

describe('spectralConv (fused: every output block of a partitioned convolution)', () => {
  it('is bit-identical to zero-filled blocks plus spectralMac in ascending p', () => {
    const rng = new Rng(14);
    const ws = createWasmWorkspace(1 << 20);
    for (const [N, nx, P, ny, r0] of [
      [1, 3, 2, 4, 0],
      [2, 1, 1, 1, 0],
      [4, 5, 3, 5, 0],
      [6, 4, 4, 6, 1],
      [8, 1, 5, 7, 0],
      [16, 7, 7, 7, 0],
      [16, 9, 4, 8, 1],
      [64, 4, 9, 3, 6],
      [64, 6, 2, 9, -2],
      [512, 12, 12, 11, 1],
      [256, 300, 2, 5, 0],
      [4, 2100, 3, 4, 2098],
    ] as const) {
      const mark = ws.mark();
      const X = rand(rng, 3 + nx * 2 * N);
      const H = rand(rng, 5 + P * 2 * N);
      const Y0 = rand(rng, 2 + ny * 2 * N);
      const args = { Y: put(ws, Y0), yOff: 2, X: put(ws, X), xOff: 3, H: put(ws, H), hOff: 5, N, nx, P, ny, r0 };
      ws.spectralConv(args);
      const ref = Y0.slice();
      spectralConvJs({ ...args, Y: ref, X, H });
      expect(sameBits(args.Y, ref), `N=${N} nx=${nx} P=${P} ny=${ny} r0=${r0}`).toBe(true);
      ws.release(mark);
    }
  });
});

describe('sformChannels (the S-form channel convolutions, one call)', () => {
  function setup(ws: Workspace, rng: Rng, k: { nb: number; q0: number; B: number; tLo: number; tHi: number; m: number; dv: number; ch0: number; ch1: number }) {
    const nq = k.nb - k.q0;
    const c = kernelC(rng, k.tHi, false);
    const kp = partitionKernel(c, k.tLo, k.tHi, k.B);
    const live = new Float64Array(kp.parts).map((_, p) => (kp.l1[p]! > 0 ? 1 : 0));
    const args = {
      phiKT: put(ws, rand(rng, k.m * k.nb, 0, 1)),
      vT: put(ws, rand(rng, k.dv * k.nb)),
      phiQT: put(ws, rand(rng, k.m * nq, 0, 1)),
      accT: put(ws, rand(rng, (k.dv + 1) * nq, -0.1, 0.1)),
      spectra: put(ws, kp.spectra),
      live: put(ws, live),
      q0: k.q0, nb: k.nb, m: k.m, dv: k.dv, B: k.B, P: kp.parts, ch0: k.ch0, ch1: k.ch1,
      scratch: ws.f64(wasmSformChannelsScratch(k.nb, k.q0, k.B, kp.parts)),
    };
    return { c, args };
  }
  const cases = [
    { nb: 37, q0: 0, B: 8, tLo: 0, tHi: 37, m: 2, dv: 3, ch0: 0, ch1: 8 },
    { nb: 100, q0: 0, B: 16, tLo: 0, tHi: 100, m: 3, dv: 2, ch0: 0, ch1: 9 },
    { nb: 100, q0: 45, B: 16, tLo: 0, tHi: 60, m: 3, dv: 2, ch0: 2, ch1: 7 },
    { nb: 130, q0: 70, B: 32, tLo: 2, tHi: 130, m: 2, dv: 2, ch0: 0, ch1: 6 },
    { nb: 513, q0: 0, B: 64, tLo: 0, tHi: 513, m: 1, dv: 1, ch0: 0, ch1: 2 },
    { nb: 300, q0: 260, B: 16, tLo: 0, tHi: 33, m: 2, dv: 1, ch0: 1, ch1: 4 },
  ];

  it('matches the JS backend to 1e-12 and the direct sum to 1e-10 (blocks, query offsets, channel ranges, odd tails)', () => {
    const rng = new Rng(15);
    const ws = createWasmWorkspace(1 << 21);
    for (const k of cases) {
      const mark = ws.mark();
      const { c, args } = setup(ws, rng, k);
      const acc0 = args.accT.slice();
      ws.sformChannels(args);
      const ref = acc0.slice();
      js.sformChannels({ ...args, accT: ref, scratch: new Float64Array(sformChannelsScratch(k.nb, k.q0, k.B, args.P)) });
      const direct = acc0.slice();
      sformChannelsDirect({ ...args, accT: direct }, c, k.tLo, k.tHi);
      const label = JSON.stringify(k);
      expect(rowError(args.accT, ref, k.nb - k.q0), label).toBeLessThan(TOL);
      expect(rowError(args.accT, direct, k.nb - k.q0), label).toBeLessThan(1e-10);
      ws.release(mark);
    }
  });

  it('gives the same bits with the smallest scratch, with or without room to lend', () => {
    const k = { nb: 200, q0: 20, B: 16, tLo: 0, tHi: 150, m: 2, dv: 2, ch0: 0, ch1: 6 };
    const full = createWasmWorkspace(1 << 18);
    const { args } = setup(full, new Rng(17), k);
    const N = 2 * k.B;
    const nIn = Math.ceil(k.nb / k.B);
    const minimal = (nIn + 3) * 2 * N;
    const runs: Float64Array[] = [];
    for (const [cap, scratchLen] of [
      [1 << 18, wasmSformChannelsScratch(k.nb, k.q0, k.B, args.P)],
      [1 << 18, minimal], // lends the workspace's free space
      [0, minimal], // no room to lend: output spectra one block at a time
    ] as const) {
      const ws = createWasmWorkspace(cap === 0 ? 0 : cap);
      const a = cap === 0 ? { ...args, accT: args.accT.slice(), scratch: new Float64Array(scratchLen) } : { ...args, accT: put(ws, args.accT), scratch: ws.f64(scratchLen) };
      if (cap === 0) {
        // everything outside this (empty) workspace: the copy path runs it in a throwaway instance
        ws.sformChannels(a);
      } else {
        for (const key of ['phiKT', 'vT', 'phiQT', 'spectra', 'live'] as const) a[key] = put(ws, args[key]);
        ws.sformChannels(a);
      }
      runs.push(a.accT.slice());
    }
    expect(sameBits(runs[0]!, runs[1]!)).toBe(true);
    expect(sameBits(runs[0]!, runs[2]!)).toBe(true);
    expect(() => full.sformChannels({ ...args, scratch: full.f64(minimal - 1) })).toThrow(/scratch/);
  });
});

// ------------------------------------------------------------------ A-form

interface RowsCase {
  nb: number;
  q0: number;
  b0: number;
  b1: number;
  tLo: number;
  tHi: number;
  m: number;
  dv: number;
  zeros: boolean;
}

function rowsInputs(rng: Rng, k: RowsCase) {
  const nq = k.nb - k.q0;
  return {
    c: kernelC(rng, k.tHi + 3, k.zeros),
    phiK: rand(rng, k.nb * k.m, 0, 1),
    v: rand(rng, k.nb * k.dv),
    phiQ: rand(rng, nq * k.m, 0, 1),
    acc: rand(rng, nq * (k.dv + 1), -0.1, 0.1),
  };
}

function rowsArgs(ws: Workspace, k: RowsCase, d: ReturnType<typeof rowsInputs>, inMemory: boolean | (() => boolean) = true): AformRowsArgs {
  const p = (a: Float64Array): Float64Array => ((typeof inMemory === 'boolean' ? inMemory : inMemory()) ? put(ws, a) : a.slice());
  return { c: p(d.c), tLo: k.tLo, tHi: k.tHi, phiK: p(d.phiK), v: p(d.v), phiQ: p(d.phiQ), q0: k.q0, b0: k.b0, b1: k.b1, m: k.m, dv: k.dv, acc: p(d.acc) };
}

function rowsCases(): RowsCase[] {
  const out: RowsCase[] = [];
  const dims: Array<[number, number]> = [
    [1, 1],
    [2, 3],
    [3, 2],
    [5, 7],
    [8, 8],
    [17, 9],
    [64, 64],
    [63, 65],
  ];
  let s = 0;
  for (const [m, dv] of dims) {
    for (const [nb, q0, b0, b1, tLo, tHi] of [
      [37, 0, 0, 37, 0, 37],
      [50, 10, 13, 50, 0, 9],
      [50, 10, 10, 47, 3, 12],
      [70, 0, 1, 70, 5, 1000],
      [9, 2, 2, 9, 0, 1],
      [600, 0, 0, 600, 0, 600],
      [1200, 100, 101, 1200, 2, 1100],
    ] as const) {
      if (nb > 100 && m * dv > 64 * 64) continue;
      out.push({ nb, q0, b0, b1, tLo, tHi, m, dv, zeros: s++ % 2 === 1 });
    }
  }
  return out;
}

describe('aformRows', () => {
  it('matches the JS kernel to 1e-12 per row over many shapes (odd m and dv, windows, offsets, zero kernel values)', () => {
    const rng = new Rng(3);
    const ws = createWasmWorkspace(1 << 21);
    for (const k of rowsCases()) {
      const mark = ws.mark();
      const d = rowsInputs(rng, k);
      const a = rowsArgs(ws, k, d);
      ws.aformRows(a);
      const ref = d.acc.slice();
      js.aformRows({ ...a, acc: ref });
      expect(rowError(a.acc, ref, k.dv + 1), JSON.stringify(k)).toBeLessThan(TOL);
      ws.release(mark);
    }
  });

  it('leaves acc untouched when there is nothing to add', () => {
    const rng = new Rng(4);
    const ws = createWasmWorkspace(1 << 12);
    const k: RowsCase = { nb: 8, q0: 0, b0: 0, b1: 3, tLo: 5, tHi: 8, m: 3, dv: 2, zeros: false };
    const d = rowsInputs(rng, k);
    const a = rowsArgs(ws, k, d);
    ws.aformRows(a);
    expect(sameBits(a.acc, d.acc)).toBe(true);
    ws.aformRows({ ...a, tHi: 5 });
    expect(sameBits(a.acc, d.acc)).toBe(true);
  });

  it('rejects ranges outside the arrays instead of touching other memory', () => {
    const rng = new Rng(5);
    const ws = createWasmWorkspace(1 << 12);
    const k: RowsCase = { nb: 10, q0: 0, b0: 0, b1: 10, tLo: 0, tHi: 10, m: 4, dv: 3, zeros: false };
    const a = rowsArgs(ws, k, rowsInputs(rng, k));
    expect(() => ws.aformRows({ ...a, b1: 11 })).toThrow(RangeError);
    expect(() => ws.aformRows({ ...a, m: 5 })).toThrow(RangeError);
  });
});

describe('aformRing', () => {
  it('matches the JS kernel to 1e-12 (wrapping rings, partial rings, odd sizes, zero kernel values)', () => {
    const rng = new Rng(6);
    const ws = createWasmWorkspace(1 << 20);
    for (const [m, dv] of [
      [1, 1],
      [3, 5],
      [4, 4],
      [7, 2],
      [64, 64],
      [33, 31],
    ] as const) {
      for (const [cap, start, len] of [
        [1, 0, 1],
        [5, 3, 5],
        [5, 4, 2],
        [16, 0, 16],
        [16, 15, 16],
        [512, 137, 512],
        [513, 500, 300],
        [1100, 1000, 1100],
      ] as const) {
        const mark = ws.mark();
        const c = kernelC(rng, len, (cap + m) % 2 === 0);
        const ringK = rand(rng, cap * m, 0, 1);
        const ringV = rand(rng, cap * dv);
        const phiQ = rand(rng, 3 * m, 0, 1);
        const acc0 = rand(rng, 2 * (dv + 1));
        const a: AformRingArgs = { c: put(ws, c), ringK: put(ws, ringK), ringV: put(ws, ringV), start, len, cap, phiQ: put(ws, phiQ), qOff: m, m, dv, acc: put(ws, acc0), aOff: dv + 1 };
        ws.aformRing(a);
        const ref = acc0.slice();
        js.aformRing({ ...a, acc: ref });
        expect(rowError(a.acc, ref, dv + 1), `m=${m} dv=${dv} cap=${cap} start=${start} len=${len}`).toBeLessThan(TOL);
        expect(sameBits(a.acc.subarray(0, dv + 1), acc0.subarray(0, dv + 1)), 'other rows untouched').toBe(true);
        ws.release(mark);
      }
    }
  });
});

// ------------------------------------------------------------------ far field

describe('far field', () => {
  it('absorb (gamma = 1 and < 1), scale and contract are bit-identical to JS over a long run', () => {
    const rng = new Rng(7);
    for (const [m, dv] of [
      [1, 1],
      [3, 4],
      [5, 7],
      [64, 64],
      [16, 9],
    ] as const) {
      const ws = createWasmWorkspace(1 << 16);
      const size = m * (dv + 1);
      const far = { sum: ws.f64(size), comp: ws.f64(size) };
      const ref = { sum: new Float64Array(size), comp: new Float64Array(size) };
      const phiK = ws.f64(m);
      const v = ws.f64(dv);
      const phiQ = ws.f64(m);
      const acc = ws.f64(dv + 1);
      const accRef = new Float64Array(dv + 1);
      for (let step = 0; step < 300; step++) {
        phiK.set(rand(rng, m, 0, 1));
        if (step % 7 === 0) phiK[0] = 0;
        v.set(rand(rng, dv, -10, 10));
        phiQ.set(rand(rng, m, 0, 1));
        if (step % 5 === 0) phiQ[m - 1] = 0;
        const gamma = step % 3 === 0 ? 1 : 0.99;
        ws.farAbsorb({ far, gamma, phiK, kOff: 0, v, vOff: 0, m, dv });
        js.farAbsorb({ far: ref, gamma, phiK, kOff: 0, v, vOff: 0, m, dv });
        if (step % 50 === 49) {
          ws.scaleFar(far, 0.5, m, dv);
          js.scaleFar(ref, 0.5, m, dv);
        }
        ws.farContract({ far, cFar: 0.75, phiQ, qOff: 0, m, dv, acc, aOff: 0 });
        js.farContract({ far: ref, cFar: 0.75, phiQ, qOff: 0, m, dv, acc: accRef, aOff: 0 });
      }
      expect(sameBits(far.sum, ref.sum), `sum m=${m} dv=${dv}`).toBe(true);
      expect(sameBits(far.comp, ref.comp), `comp m=${m} dv=${dv}`).toBe(true);
      expect(sameBits(acc, accRef), `contract m=${m} dv=${dv}`).toBe(true);
    }
  });

  it('honours row offsets', () => {
    const rng = new Rng(8);
    const ws = createWasmWorkspace(1 << 12);
    const m = 3;
    const dv = 5;
    const far = { sum: put(ws, rand(rng, m * (dv + 1))), comp: put(ws, rand(rng, m * (dv + 1), -1e-17, 1e-17)) };
    const ref = { sum: far.sum.slice(), comp: far.comp.slice() };
    const phiK = put(ws, rand(rng, 4 * m, 0, 1));
    const v = put(ws, rand(rng, 4 * dv));
    ws.farAbsorb({ far, gamma: 0.9, phiK, kOff: 2 * m, v, vOff: 3 * dv, m, dv });
    js.farAbsorb({ far: ref, gamma: 0.9, phiK, kOff: 2 * m, v, vOff: 3 * dv, m, dv });
    expect(sameBits(far.sum, ref.sum) && sameBits(far.comp, ref.comp)).toBe(true);
    const acc = put(ws, rand(rng, 3 * (dv + 1)));
    const accRef = acc.slice();
    ws.farContract({ far, cFar: 2, phiQ: phiK, qOff: m, m, dv, acc, aOff: 2 * (dv + 1) });
    js.farContract({ far: ref, cFar: 2, phiQ: phiK, qOff: m, m, dv, acc: accRef, aOff: 2 * (dv + 1) });
    expect(sameBits(acc, accRef)).toBe(true);
  });
});

// ------------------------------------------------------------------ PRF logits

describe('prfLogits', () => {
  it('matches JS to 1e-12 per row for l2, scale and none, odd sizes, zero rows; returns the same maximum', () => {
    const rng = new Rng(9);
    const ws = createWasmWorkspace(1 << 18);
    for (const normalize of ['l2', 'scale', 'none'] as const) {
      for (const [n, m, d] of [
        [1, 1, 1],
        [1, 64, 64],
        [2, 3, 5],
        [3, 7, 4],
        [5, 8, 3],
        [9, 16, 17],
        [130, 64, 64],
        [33, 65, 63],
      ] as const) {
        const mark = ws.mark();
        const W = rand(rng, m * d, -2, 2);
        const x = rand(rng, n * d, -3, 3);
        if (n > 2) x.fill(0, d, 2 * d); // a zero row
        const a: PrfLogitsArgs = { W: put(ws, W), m, d, normalize, x: put(ws, x), n, out: ws.f64(n * m) };
        const best = ws.prfLogits(a);
        const ref = new Float64Array(n * m);
        const bestRef = js.prfLogits({ W, m, d, normalize, x, n, out: ref });
        // a row's logits are w . x~ - |x~|^2 / 2: measure against the row's scale |w| |x~| + |x~|^2 / 2
        expect(rowError(a.out, ref, m), `${normalize} n=${n} m=${m} d=${d}`).toBeLessThan(TOL);
        expect(Math.abs(best - bestRef)).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(bestRef)));
        ws.release(mark);
      }
      expect(ws.prfLogits({ W: ws.f64(4), m: 2, d: 2, normalize, x: ws.f64(0), n: 0, out: ws.f64(0) })).toBe(-Infinity);
    }
  });

  it('a row gets the same bits alone, in the four-row tile or in the tail', () => {
    const rng = new Rng(16);
    const ws = createWasmWorkspace(1 << 14);
    const [m, d] = [7, 9];
    const W = put(ws, rand(rng, m * d));
    const x = put(ws, rand(rng, 6 * d));
    for (const normalize of ['l2', 'scale', 'none'] as const) {
      const all = ws.f64(6 * m);
      ws.prfLogits({ W, m, d, normalize, x, n: 6, out: all });
      for (let i = 0; i < 6; i++) {
        const one = ws.f64(m);
        ws.prfLogits({ W, m, d, normalize, x: x.subarray(i * d, (i + 1) * d), n: 1, out: one });
        expect(sameBits(one, all.subarray(i * m, (i + 1) * m)), `${normalize} row ${i}`).toBe(true);
      }
    }
  });

  it('l2 is scale-safe: rows of magnitude 1e-300 .. 1e300 give the logits of the unit-scale row', () => {
    const rng = new Rng(10);
    const ws = createWasmWorkspace(1 << 14);
    const [n, m, d] = [6, 8, 5];
    const W = rand(rng, m * d, -2, 2);
    const x = rand(rng, n * d, -1, 1);
    const ref = new Float64Array(n * m);
    js.prfLogits({ W, m, d, normalize: 'l2', x, n, out: ref });
    const scales = [1e-300, 1e-160, 1e-20, 1e150, 1e200, 1e300];
    const xs = x.slice();
    for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) xs[i * d + c]! *= scales[i]!;
    const out = ws.f64(n * m);
    ws.prfLogits({ W: put(ws, W), m, d, normalize: 'l2', x: put(ws, xs), n, out });
    expect(rowError(out, ref, m)).toBeLessThan(TOL);
  });
});

// ------------------------------------------------------------------ GEMM

describe('gemm', () => {
  it('matches JS to 1e-12 per row (sizes not multiples of 4, depth and row blocks, offsets, accumulate)', () => {
    const rng = new Rng(11);
    const ws = createWasmWorkspace(1 << 21);
    for (const [M, N, K] of [
      [1, 1, 1],
      [1, 5, 3],
      [3, 1, 7],
      [4, 4, 4],
      [5, 6, 7],
      [17, 13, 9],
      [64, 64, 64],
      [65, 67, 257],
      [130, 9, 600],
      [7, 300, 33],
      [256, 256, 256],
      [3, 4, 0],
    ] as const) {
      for (const accumulate of [false, true]) {
        const mark = ws.mark();
        const [aOff, bOff, cOff] = [3, 1, 5];
        const a = rand(rng, aOff + M * K);
        const b = rand(rng, bOff + N * K);
        const c0 = rand(rng, cOff + M * N + 2);
        const g: GemmArgs = { a: put(ws, a), aOff, b: put(ws, b), bOff, c: put(ws, c0), cOff, M, N, K, accumulate };
        ws.gemm(g);
        const ref = c0.slice();
        js.gemm({ ...g, c: ref });
        expect(rowError(g.c, ref, N, cOff, M * N), `${M}x${N}x${K} acc=${accumulate}`).toBeLessThan(TOL);
        expect(sameBits(g.c.subarray(0, cOff), c0.subarray(0, cOff)) && sameBits(g.c.subarray(cOff + M * N), c0.subarray(cOff + M * N)), 'outside c untouched').toBe(true);
        ws.release(mark);
      }
    }
  });
});

// ------------------------------------------------------------------ reproducibility and the fallback

/**
 * Where runAll puts each array: all in the workspace's memory ('memory'), all outside it ('outside', plain arrays:
 * the copy path), or each one either way by a coin flip of `rng` (one call's arrays partly copied, partly in place).
 */
type Placement = 'memory' | 'outside' | Rng;

/** Run every WASM kernel in `ws` on the same inputs, arrays placed as `where` says. Returns all outputs. */
function runAll(ws: Workspace, where: Placement, pad: number): Float64Array[] {
  const rng = new Rng(12);
  ws.f64(pad); // shift every offset
  const inside = (): boolean => (where === 'memory' ? true : where === 'outside' ? false : where.nextFloat64() < 0.5);
  const p = (a: Float64Array): Float64Array => (inside() ? put(ws, a) : a.slice());
  const p32 = (a: Float32Array): Float32Array => {
    if (!inside()) return a.slice();
    const o = ws.f32(a.length);
    o.set(a);
    return o;
  };
  const outs: Float64Array[] = [];
  const k: RowsCase = { nb: 130, q0: 7, b0: 9, b1: 130, tLo: 1, tHi: 100, m: 13, dv: 11, zeros: true };
  const rows = rowsArgs(ws, k, rowsInputs(rng, k), inside);
  ws.aformRows(rows);
  outs.push(rows.acc);
  const [m, dv, cap] = [13, 11, 40];
  const ring: AformRingArgs = { c: p(kernelC(rng, 35, true)), ringK: p(rand(rng, cap * m, 0, 1)), ringV: p(rand(rng, cap * dv)), start: 30, len: 35, cap, phiQ: p(rand(rng, m, 0, 1)), qOff: 0, m, dv, acc: p(rand(rng, dv + 1)), aOff: 0 };
  ws.aformRing(ring);
  outs.push(ring.acc);
  const far = { sum: p(rand(rng, m * (dv + 1))), comp: p(rand(rng, m * (dv + 1), -1e-17, 1e-17)) };
  ws.farAbsorb({ far, gamma: 0.97, phiK: ring.phiQ, kOff: 0, v: ring.ringV, vOff: dv, m, dv });
  ws.scaleFar(far, 0.25, m, dv);
  const acc = p(rand(rng, dv + 1));
  ws.farContract({ far, cFar: 1.5, phiQ: ring.phiQ, qOff: 0, m, dv, acc, aOff: 0 });
  outs.push(far.sum, far.comp, acc);
  const prf: PrfLogitsArgs = { W: p(rand(rng, 9 * 7)), m: 9, d: 7, normalize: 'l2', x: p(rand(rng, 11 * 7)), n: 11, out: p(new Float64Array(99)) };
  outs.push(Float64Array.of(ws.prfLogits(prf)), prf.out);
  const ex = p(rand(rng, 5 * 9, -30, 3));
  ws.expRows!(ex, 5, 9);
  const es = p(rand(rng, 37, -30, 3));
  ws.expShift!(es, 37, 1.5);
  outs.push(ex, es);
  const g: GemmArgs = { a: p(rand(rng, 21 * 300)), aOff: 0, b: p(rand(rng, 10 * 300)), bOff: 0, c: p(rand(rng, 21 * 10)), cOff: 0, M: 21, N: 10, K: 300, accumulate: true };
  ws.gemm(g);
  outs.push(g.c);
  // packed products: float64 and float32 panels (packed in place: panels are always views), one row and four
  const [pn, pk] = [19, 23];
  const W = rand(rng, pn * pk).map(Math.fround);
  const panels64 = ws.f64(packedLength(pn, pk));
  ws.packPanels(W, 0, pn, pk, panels64);
  const panels32 = ws.f32(packedLength(pn, pk));
  ws.packPanels(W, 0, pn, pk, panels32);
  for (const b of [panels64, panels32]) {
    for (const [M, accumulate] of [[1, true], [4, false]] as const) {
      const pg: PackedGemmArgs = { a: p(rand(rng, M * pk + 3)), aOff: 3, b, bOff: 0, c: p(rand(rng, M * pn + 2)), cOff: 1, M, N: pn, K: pk, accumulate };
      ws.gemmPacked!(pg);
      outs.push(pg.c);
    }
  }
  const gv: PackedGemmArgs = { a: p(rand(rng, pk)), aOff: 0, b: panels32, bOff: 0, c: p(rand(rng, pn)), cOff: 0, M: 1, N: pn, K: pk, accumulate: true };
  expect(ws.gemvF32!(gv)).toBe(true);
  outs.push(gv.c);
  const h1 = p(rand(rng, 29, -4, 4));
  ws.swiglu!(h1, p(rand(rng, 29)), 29);
  outs.push(h1);
  const N = 256;
  const x = p(rand(rng, 2 * N));
  const X = p(new Float64Array(2 * N));
  const y = p(new Float64Array(2 * N));
  ws.fftPlan(N).forward(X, x);
  ws.fftPlan(N).inverse(y, X);
  const Y = p(rand(rng, 2 * N));
  ws.spectralMac({ Y, X, xOff: 0, H: x, hOff: 0, N });
  outs.push(X, y, Y);
  const conv = { Y: p(new Float64Array(3 * 2 * 16)), yOff: 0, X: p(rand(rng, 4 * 2 * 16)), xOff: 0, H: p(rand(rng, 2 * 2 * 16)), hOff: 0, N: 16, nx: 4, P: 2, ny: 3, r0: 1 };
  (ws as WasmWorkspace).spectralConv(conv);
  outs.push(conv.Y);
  const [nb, B, sm, sdv] = [70, 16, 2, 3];
  const sf = {
    phiKT: p(rand(rng, sm * nb, 0, 1)), vT: p(rand(rng, sdv * nb)), phiQT: p(rand(rng, sm * (nb - 20), 0, 1)), accT: p(rand(rng, (sdv + 1) * (nb - 20))),
    spectra: p(rand(rng, 5 * 2 * 2 * B)), live: p(new Float64Array(5).fill(1)), q0: 20, nb, m: sm, dv: sdv, B, P: 5, ch0: 1, ch1: 8,
    scratch: p(new Float64Array(wasmSformChannelsScratch(nb, 20, B, 5))),
  };
  ws.sformChannels(sf);
  outs.push(sf.accT);
  // float32 kernels (the Decoder's dtype 'float32')
  const r32: AformRing32Args = {
    c: p32(Float32Array.from(kernelC(rng, 35, true))), ringK: p32(Float32Array.from(rand(rng, cap * m, 0, 1))), ringV: p32(Float32Array.from(rand(rng, cap * dv))), start: 30, len: 35, cap,
    phiQ: p32(Float32Array.from(rand(rng, m + 2, 0, 1))), qOff: 2, m, dv, acc: p(rand(rng, dv + 3)), aOff: 1,
  };
  ws.aformRing32!(r32);
  outs.push(r32.acc);
  const w32 = rowsInputs(rng, k);
  const rows32: AformRows32Args = {
    c: p32(Float32Array.from(w32.c)), tLo: k.tLo, tHi: k.tHi, phiK: p32(Float32Array.from(w32.phiK)), v: p32(Float32Array.from(w32.v)), phiQ: p32(Float32Array.from(w32.phiQ)),
    q0: k.q0, b0: k.b0, b1: k.b1, m: k.m, dv: k.dv, acc: p(w32.acc),
  };
  ws.aformRows32!(rows32);
  outs.push(rows32.acc);
  const far32 = { sum: p(far.sum.slice()), comp: p(far.comp.slice()) };
  ws.farAbsorb32!({ far: far32, gamma: 0.9, phiK: r32.phiQ, kOff: 1, v: r32.ringV, vOff: 2 * dv, m, dv });
  outs.push(far32.sum, far32.comp);
  return outs.map((o) => o.slice());
}

describe('reproducibility and the copy-in fallback', () => {
  it('two workspaces (different capacities and offsets) give bit-identical outputs', () => {
    const a = runAll(createWasmWorkspace(1 << 16), 'memory', 0);
    const b = runAll(createWasmWorkspace(1 << 17), 'memory', 13);
    a.forEach((x, i) => expect(sameBits(x, b[i]!), `output ${i}`).toBe(true));
  });

  it('every kernel gives the same bits with its arrays in memory, copied, partly copied, or on a throwaway instance', () => {
    const inMem = runAll(createWasmWorkspace(1 << 16), 'memory', 2);
    expect(inMem.length).toBe(25);
    const copied = runAll(createWasmWorkspace(1 << 16), 'outside', 0);
    inMem.forEach((x, i) => expect(sameBits(x, copied[i]!), `output ${i}`).toBe(true));
    // each array in memory or not by a coin flip: one call's arguments partly in place, partly copied
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const ws = createWasmWorkspace(1 << 16);
      const mixed = runAll(ws, new Rng(seed), 1);
      inMem.forEach((x, i) => expect(sameBits(x, mixed[i]!), `output ${i}, placement ${seed}`).toBe(true));
    }
    // room for the FFT plan and the panels only: every copy needs a throwaway instance, still the same bits, and
    // the workspace's free space is untouched
    const panels = wasmF64Entries(packedLength(19, 23)) + wasmF64Entries(Math.ceil(packedLength(19, 23) / 2));
    const tiny = createWasmWorkspace(wasmFftPlanEntries(256) + panels + 8);
    const viaTemp = runAll(tiny, 'outside', 0);
    inMem.forEach((x, i) => expect(sameBits(x, viaTemp[i]!), `output ${i} (temporary instance)`).toBe(true));
    expect(tiny.available).toBe(8);
  });

  it('the copies take no memory of the stack, and a call refused for a bad range leaves the next call unaffected', () => {
    const rng = new Rng(14);
    const ws = createWasmWorkspace(1 << 14);
    const [m, dv, cap] = [5, 4, 8];
    const ring: AformRingArgs = { c: rand(rng, 6), ringK: rand(rng, cap * m, 0, 1), ringV: rand(rng, cap * dv), start: 3, len: 6, cap, phiQ: rand(rng, m, 0, 1), qOff: 0, m, dv, acc: new Float64Array(dv + 1), aOff: 0 };
    const want = new Float64Array(dv + 1);
    js.aformRing({ ...ring, acc: want });
    const mark = ws.mark();
    const available = ws.available;
    // slot 3 (phiQ) out of range: refused before anything runs, acc untouched
    expect(() => ws.aformRing({ ...ring, phiQ: rand(rng, m - 1) })).toThrow(/aformRing phiQ: elements \[0, 5\) are outside an array of length 4/);
    expect(Array.from(ring.acc)).toEqual(new Array(dv + 1).fill(0));
    ws.aformRing(ring); // every array outside: copied in, acc copied back
    expect(rowError(ring.acc, want, dv + 1)).toBeLessThanOrEqual(TOL);
    expect(ws.mark()).toBe(mark);
    expect(ws.available).toBe(available);
    // the space the copies used is handed out zeroed
    expect(ws.f64(256).every((v) => v === 0)).toBe(true);
    // a full workspace: the output in its memory, the inputs outside; the throwaway instance's result lands in it
    const full = createWasmWorkspace(64);
    const accIn = full.f64(dv + 1);
    full.f64(full.available);
    full.aformRing({ ...ring, acc: accIn });
    expect(sameBits(accIn, ring.acc)).toBe(true);
  });

  it('the fallback accepts views of another workspace', () => {
    const rng = new Rng(13);
    const a = createWasmWorkspace(1 << 12);
    const b = createWasmWorkspace(1 << 12);
    const x = rand(rng, 64);
    const outA = a.f64(64);
    const outB = a.f64(64);
    a.fftPlan(32).forward(outA, put(a, x));
    b.fftPlan(32).forward(outB, put(b, x).subarray(0)); // out in a, input in b
    expect(sameBits(outA, outB)).toBe(true);
  });

  it('results do not depend on the JS-side history of the workspace (scratch reuse, plans made before or after)', () => {
    const ws = createWasmWorkspace(1 << 16);
    const first = runAll(ws, 'memory', 0);
    const mark = ws.mark();
    ws.f64(1000).fill(123);
    ws.release(mark);
    const again = runAll(ws, 'memory', 5);
    first.forEach((x, i) => expect(sameBits(x, again[i]!), `output ${i}`).toBe(true));
  });
});

// ------------------------------------------------------------------ memory discipline

describe('workspace memory', () => {
  it('hands out zeroed, 64-byte (cache-line) aligned views of its own memory and never grows it', () => {
    const ws = createWasmWorkspace(1000);
    expect(ws.backend).toBe('wasm');
    expect(ws.available).toBe(1000);
    const a = ws.f64(3);
    const b = ws.f64(5);
    expect(a.byteOffset % 64).toBe(0);
    expect(b.byteOffset % 64).toBe(0);
    expect(a.byteOffset).toBeGreaterThanOrEqual(WASM_HEADER_BYTES);
    expect(a.buffer).toBe(b.buffer);
    expect(ws.available).toBe(1000 - wasmF64Entries(3) - wasmF64Entries(5));
    const bytes = a.buffer.byteLength;
    const m = ws.mark();
    ws.f64(10).fill(7);
    ws.release(m);
    expect(Array.from(ws.f64(10))).toEqual(new Array(10).fill(0));
    ws.fftPlan(64);
    expect(a.buffer.byteLength).toBe(bytes); // not grown, not detached
    expect(bytes).toBe(Math.ceil((WASM_HEADER_BYTES + 1000 * 8) / 65536) * 65536);
  });

  it('throws when the capacity is exceeded, saying how much was asked and how much is left', () => {
    const ws = createWasmWorkspace(100);
    ws.f64(60);
    expect(() => ws.f64(41)).toThrow(/f64\(41\).*41 float64 entries.*only 40 are left.*capacity 100/);
    expect(ws.f64(40).length).toBe(40);
    expect(() => ws.f64(1)).toThrow(/only 0 are left/);
    expect(() => ws.fftPlan(16)).toThrow(/FFT plan of size 16/);
    expect(() => createWasmWorkspace(-1)).toThrow(RangeError);
    expect(() => ws.f64(1.5)).toThrow(RangeError);
  });

  it('mark/release is a stack: release frees everything taken after the mark, bad marks throw', () => {
    const ws = createWasmWorkspace(1000);
    ws.f64(10); // 16 with the cache-line rounding
    const m1 = ws.mark();
    ws.f64(100); // 104
    const m2 = ws.mark();
    ws.f64(200);
    expect(ws.available).toBe(1000 - 320);
    ws.release(m2);
    expect(ws.available).toBe(1000 - 120);
    ws.release(m1);
    expect(ws.available).toBe(1000 - 16);
    expect(() => ws.release(m2)).toThrow(/not a live mark/);
    expect(() => ws.release(-5)).toThrow(/not a live mark/);
    const plan = ws.fftPlan(8); // from the top: survives releases
    const m3 = ws.mark();
    ws.release(m3);
    expect(ws.fftPlan(8)).toBe(plan);
    expect(ws.available).toBe(1000 - 16 - wasmFftPlanEntries(8));
  });
});

describe('the idle workspace of short-lived owners (acquireWorkspace / releaseWorkspace)', () => {
  it('hands a released workspace to the next owner, reset (zeroed arrays, plans kept); nested owners never share', () => {
    const a = acquireWorkspace('wasm', 1000) as WasmWorkspace;
    a.f64(100).fill(7);
    const plan = a.fftPlan(16);
    const nested = acquireWorkspace('wasm', 1000);
    expect(nested).not.toBe(a);
    releaseWorkspace(nested);
    releaseWorkspace(a);
    const b = acquireWorkspace('wasm', 500) as WasmWorkspace;
    expect(b).toBe(a);
    expect(b.available).toBe(1000 - wasmFftPlanEntries(16));
    expect(b.f64(100).every((x) => x === 0)).toBe(true);
    expect(b.fftPlan(16)).toBe(plan);
    expect(acquireWorkspace('wasm', 10)).not.toBe(b); // taken: not handed out twice
    releaseWorkspace(b);
    // the same capacity again: the plans are in the way, so they go (the owner's request includes its plans)
    const c = acquireWorkspace('wasm', 1000) as WasmWorkspace;
    expect(c).toBe(a);
    expect(c.available).toBe(1000);
    expect(c.fftPlan(16)).not.toBe(plan);
    releaseWorkspace(c);
    expect(acquireWorkspace('wasm', 5000)).not.toBe(c); // too small for this owner: a new one
    expect(acquireWorkspace('js', 10).backend).toBe('js');
  });

  it('attention() gives the same bits on a reused workspace as on a fresh one, whatever ran before', () => {
    const rng = new Rng(77);
    const make = (n: number, d: number) => ndarray(rand(rng, n * d * 2), [2, n, d]);
    const cfg = { heads: 2, keyDim: 6, valueDim: 5, features: { kind: 'prf' as const, count: 8, seed: 3 }, rpe: { past: { bias: Array.from({ length: 700 }, (_, t) => -0.01 * t) } } };
    const q = make(700, 6), k = make(700, 6), v = make(700, 5);
    const first = attention(cfg, q, k, v, { backend: 'wasm', method: 'fft', block: 64 }).data;
    // other shapes and methods leave other data and plans behind in the idle workspace
    attention(cfg, make(300, 6), make(300, 6), make(300, 5), { backend: 'wasm', method: 'fft', block: 128 });
    attention(cfg, make(50, 6), make(50, 6), make(50, 5), { backend: 'wasm', method: 'direct' });
    const again = attention(cfg, q, k, v, { backend: 'wasm', method: 'fft', block: 64 }).data;
    expect(sameBits(again, first)).toBe(true);
  });
});

describe('expShift / expRows (the feature maps\' exp)', () => {
  it('is within 2 ulp of Math.exp over the whole range, exact at the edges, and a lane depends on itself alone', () => {
    const ws = createWasmWorkspace(1 << 16);
    const rng = new Rng(31);
    const xs: number[] = [0, -0, 1, -1, 0.5, -0.34657359, 0.34657359, -708, 709, -707.99, 708.99, -745.2, -744, -720, 709.7, 710, -1e300, 1e-300, -Infinity, Infinity];
    for (let i = 0; i < 20000; i++) xs.push(-750 + 1460 * rng.nextFloat64());
    for (let i = 0; i < 20000; i++) xs.push(-3 + 4 * rng.nextFloat64()); // where PRF logits live
    const a = put(ws, Float64Array.from(xs));
    ws.expShift(a, a.length, 0);
    let worst = 0;
    for (let i = 0; i < xs.length; i++) {
      const e = Math.exp(xs[i]!);
      if (!Number.isFinite(e) || e === 0) {
        expect(a[i]).toBe(e); // overflow, underflow: the scalar path
        continue;
      }
      if (e < 2.3e-308) {
        expect(Math.abs(a[i]! - e)).toBeLessThanOrEqual(2 * 5e-324); // subnormal: 2 units of the spacing 2^-1074
        continue;
      }
      worst = Math.max(worst, Math.abs(a[i]! - e) / e);
    }
    expect(worst).toBeLessThanOrEqual(2 * 2.220446049250313e-16);
    // shift, odd length, a lane next to an out-of-range neighbour gets the same bits as alone
    const pairs = put(ws, Float64Array.from([2.5, -900, 2.5, 1.25, 2.5]));
    ws.expShift(pairs, 5, 1);
    const alone = put(ws, Float64Array.from([2.5]));
    ws.expShift(alone, 1, 1);
    expect(pairs[0]).toBe(alone[0]);
    expect(pairs[2]).toBe(alone[0]);
    expect(pairs[4]).toBe(alone[0]);
    expect(pairs[1]).toBe(0);
  });

  it('expRows shifts by each row\'s max and zeroes rows without a finite logit, like the JS kernel to 1e-15', () => {
    const ws = createWasmWorkspace(1 << 14);
    const rng = new Rng(32);
    for (const [n, m] of [[1, 1], [3, 5], [7, 64], [4, 33]] as const) {
      const src = rand(rng, n * m, -3, 1);
      if (n > 1) src.fill(-Infinity, m, 2 * m); // row 1: no finite logit
      const w = put(ws, src);
      ws.expRows(w, n, m);
      const j = src.slice();
      js.expRows(j, n, m);
      expect(rowError(w, j, m)).toBeLessThan(1e-15);
      if (n > 1) expect(Array.from(w.subarray(m, 2 * m)).every((x) => x === 0)).toBe(true);
      for (let i = 0; i < n; i++) if (i !== 1 || n === 1) expect(Math.max(...w.subarray(i * m, (i + 1) * m))).toBe(1);
    }
  });
});
