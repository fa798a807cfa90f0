// The float32 kernels of the Decoder's dtype 'float32' (assembly/aform32.ts, far32.ts; math/aform32.ts): the WASM
// window sums against the float64 kernels on the same (float32-representable) values, to float32 accuracy; their
// sums independent of where a ring wraps in memory (what makes a restored decoder continue bit for bit); the copy
// path for arrays outside the workspace bit-identical to the direct one; the far field's absorb bit-identical
// between the backends and to the float64 absorb of the same values.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsWorkspace } from '../../src/backend/js.js';
import { createWasmWorkspace } from '../../src/backend/wasm.js';
import type { Workspace } from '../../src/backend/types.js';
import { Rng } from '../../src/math/rng.js';

const js = new JsWorkspace();

/** Float32-representable values (so the float64 kernels see exactly what the float32 ones see). */
function rand32(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.nextFloat64());
}

function in64(ws: Workspace, a: Float32Array): Float64Array {
  const o = ws.f64(a.length);
  o.set(a);
  return o;
}

function in32(ws: Workspace, a: Float32Array): Float32Array {
  const o = ws.f32(a.length);
  o.set(a);
  return o;
}

/**
 * Row error of acc rows [num (dv); den] against the reference, relative to the denominator: with |v| <= 1 every
 * numerator is a sum of terms whose magnitudes add up to at most den, the scale its rounding error lives on.
 */
function rowError(a: Float64Array, b: Float64Array, off: number, dv: number): number {
  let e = 0;
  for (let i = off; i <= off + dv; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  const den = b[off + dv]!;
  return den === 0 ? (e === 0 ? 0 : Infinity) : e / den;
}

/** The float32 rounding bound of a sum of `terms` products of m-term dot products: (terms + m + 2) 2^-24. */
function bound32(terms: number, m: number): number {
  return (Math.min(terms, 512) + m + 2) * 2 ** -24;
}

describe('float32 window kernels', () => {
  it('aformRing32 (WASM and JS) equals the float64 aformRing to float32 accuracy; the WASM sums do not depend on where the ring wraps', () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 70 }),
          dv: fc.integer({ min: 1, max: 40 }),
          len: fc.integer({ min: 1, max: 1300 }), // past AFORM_JC = 512: several float32 groups
          extra: fc.integer({ min: 0, max: 300 }),
          start: fc.double({ min: 0, max: 1, noNaN: true }),
          seed: fc.integer(),
        }),
        ({ m, dv, len, extra, start, seed }) => {
          const rng = new Rng(seed);
          const cap = len + extra;
          const s0 = Math.min(cap - 1, Math.floor(start * cap));
          const wasm = createWasmWorkspace(8 * cap * (m + dv) + 8 * len + 4096);
          const c = rand32(rng, len, 0, 1);
          for (let t = 0; t < len; t++) if (rng.nextFloat64() < 0.05) c[t] = 0;
          const k = rand32(rng, cap * m, 0, 1);
          const v = rand32(rng, cap * dv, -1, 1);
          const q = rand32(rng, m, 0, 1);
          const ref = new Float64Array(dv + 1);
          js.aformRing({ c: Float64Array.from(c), ringK: Float64Array.from(k), ringV: Float64Array.from(v), start: s0, len, cap, phiQ: Float64Array.from(q), qOff: 0, m, dv, acc: ref, aOff: 0 });
          const args = { c: in32(wasm, c), ringK: in32(wasm, k), ringV: in32(wasm, v), start: s0, len, cap, phiQ: in32(wasm, q), qOff: 0, m, dv, acc: wasm.f64(dv + 1), aOff: 0 };
          wasm.aformRing32(args);
          const got = Float64Array.from(args.acc);
          const jsAcc = new Float64Array(dv + 1);
          js.aformRing32({ ...args, c, ringK: k, ringV: v, phiQ: q, acc: jsAcc });
          // float32 sums over groups of at most 512 keys, each group's sum added in float64
          expect(rowError(got, ref, 0, dv)).toBeLessThanOrEqual(bound32(len, m));
          expect(rowError(jsAcc, ref, 0, dv)).toBeLessThan(1e-12);
          // the same window linearized from slot 0 in a ring of another capacity: the same bits
          const lin = { ...args, ringK: wasm.f32(len * m), ringV: wasm.f32(len * dv), start: 0, cap: len, acc: wasm.f64(dv + 1) };
          for (let i = 0; i < len; i++) {
            const slot = (s0 + i) % cap;
            lin.ringK.set(args.ringK.subarray(slot * m, slot * m + m), i * m);
            lin.ringV.set(args.ringV.subarray(slot * dv, slot * dv + dv), i * dv);
          }
          wasm.aformRing32(lin);
          expect(Buffer.from(lin.acc.buffer, lin.acc.byteOffset, lin.acc.byteLength).equals(Buffer.from(got.buffer))).toBe(true);
          // arrays outside the workspace (the copy path): the same bits
          const outside = new Float64Array(dv + 1);
          wasm.aformRing32({ ...args, c, ringK: k, ringV: v, phiQ: q, acc: outside });
          expect(Array.from(outside)).toEqual(Array.from(got));
        },
      ),
      { numRuns: 60, seed: 5 },
    );
  });

  it('aformRows32 (WASM and JS) equals the float64 aformRows to float32 accuracy, any rows, lags and query offset', () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 40 }),
          dv: fc.integer({ min: 1, max: 37 }),
          nb: fc.integer({ min: 1, max: 700 }),
          q0f: fc.double({ min: 0, max: 1, noNaN: true }),
          tLo: fc.integer({ min: 0, max: 40 }),
          span: fc.integer({ min: 1, max: 700 }),
          seed: fc.integer(),
        }),
        ({ m, dv, nb, q0f, tLo, span, seed }) => {
          const rng = new Rng(seed);
          const q0 = Math.min(nb - 1, Math.floor(q0f * nb));
          const rows = nb - q0;
          const tHi = tLo + span;
          const wasm = createWasmWorkspace(8 * nb * (m + dv) + 8 * rows * (m + dv + 1) + 8 * tHi + 4096);
          const c = rand32(rng, tHi, 0, 1);
          const k = rand32(rng, nb * m, 0, 1);
          const v = rand32(rng, nb * dv, -1, 1);
          const q = rand32(rng, rows * m, 0, 1);
          const base = { tLo, tHi, q0, b0: q0, b1: nb, m, dv };
          const ref = new Float64Array(rows * (dv + 1));
          js.aformRows({ ...base, c: Float64Array.from(c), phiK: Float64Array.from(k), v: Float64Array.from(v), phiQ: Float64Array.from(q), acc: ref });
          const acc = wasm.f64(rows * (dv + 1));
          wasm.aformRows32({ ...base, c: in32(wasm, c), phiK: in32(wasm, k), v: in32(wasm, v), phiQ: in32(wasm, q), acc });
          const jsAcc = new Float64Array(rows * (dv + 1));
          js.aformRows32({ ...base, c, phiK: k, v, phiQ: q, acc: jsAcc });
          for (let i = 0; i < rows; i++) {
            const o = i * (dv + 1);
            expect(rowError(acc, ref, o, dv)).toBeLessThanOrEqual(bound32(span, m));
            expect(rowError(jsAcc, ref, o, dv)).toBeLessThan(1e-12);
          }
          // arrays outside the workspace (the copy path): the same bits
          const outside = new Float64Array(rows * (dv + 1));
          wasm.aformRows32({ ...base, c, phiK: k, v, phiQ: q, acc: outside });
          expect(Array.from(outside)).toEqual(Array.from(acc));
        },
      ),
      { numRuns: 50, seed: 6 },
    );
  });

  it('farAbsorb32 is bit-identical between the backends and to the float64 absorb of the same values (decay and clip)', () => {
    const rng = new Rng(9);
    for (const [m, dv] of [[1, 1], [3, 5], [8, 8], [17, 9], [64, 64]] as const) {
      for (const gamma of [1, 0.93]) {
        const wasm = createWasmWorkspace(8 * m * (dv + 1) + 64 * (m + dv) + 4096);
        const size = m * (dv + 1);
        const far = { sum: wasm.f64(size), comp: wasm.f64(size) };
        const far64 = { sum: wasm.f64(size), comp: wasm.f64(size) };
        const farJs = { sum: new Float64Array(size), comp: new Float64Array(size) };
        for (let step = 0; step < 40; step++) {
          const k = rand32(rng, m, 0, 1);
          const v = rand32(rng, dv, -3, 3);
          wasm.farAbsorb32({ far, gamma, phiK: in32(wasm, k), kOff: 0, v: in32(wasm, v), vOff: 0, m, dv });
          wasm.farAbsorb({ far: far64, gamma, phiK: in64(wasm, k), kOff: 0, v: in64(wasm, v), vOff: 0, m, dv });
          js.farAbsorb32({ far: farJs, gamma, phiK: k, kOff: 0, v, vOff: 0, m, dv });
        }
        expect(Array.from(far.sum)).toEqual(Array.from(far64.sum));
        expect(Array.from(far.comp)).toEqual(Array.from(far64.comp));
        expect(Array.from(far.sum)).toEqual(Array.from(farJs.sum));
        expect(Array.from(far.comp)).toEqual(Array.from(farJs.comp));
        // the copy path too
        const out = { sum: Float64Array.from(far.sum), comp: Float64Array.from(far.comp) };
        const k = rand32(rng, m, 0, 1);
        const v = rand32(rng, dv, -1, 1);
        wasm.farAbsorb32({ far, gamma, phiK: in32(wasm, k), kOff: 0, v: in32(wasm, v), vOff: 0, m, dv });
        wasm.farAbsorb32({ far: out, gamma, phiK: k, kOff: 0, v, vOff: 0, m, dv });
        expect(Array.from(out.sum)).toEqual(Array.from(far.sum));
      }
    }
  });
});
