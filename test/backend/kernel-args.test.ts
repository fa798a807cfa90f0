// The WASM workspace's kernel arguments (backend/wasm.ts arg/bind/unbind): one description per kernel drives the
// in-place path and the copy path, and views of the memory are recognized from what the host remembers (SeenViews)
// instead of reading .buffer and .byteOffset on every call. What could go wrong there, tested here:
//   - a remembered view mistaken for another (a stale way, a wrong learned order, ways widened): the far-field
//     kernels, bit-identical to the JS backend, run on views drawn in random orders from pools larger than a slot
//     remembers, mixed with arrays outside the memory and views of another memory, and must match JS bit for bit;
//   - the cache not working: with the same views passed again, a call reads no .buffer at all;
//   - the FFT's overlap check, now made on the pointers of views.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { JsWorkspace } from '../../src/backend/js.js';
import { createWasmWorkspace } from '../../src/backend/wasm.js';
import type { FarArrays, Workspace } from '../../src/backend/types.js';
import { Rng } from '../../src/math/rng.js';

const js = new JsWorkspace();

function rand(rng: Rng, n: number, lo = -1, hi = 1): Float64Array {
  return Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.nextFloat64());
}

/** A copy of src as a view of ws's memory (or a plain array when ws is null). */
function place(ws: Workspace | null, src: Float64Array): Float64Array {
  if (ws === null) return src.slice();
  const a = ws.f64(src.length);
  a.set(src);
  return a;
}

describe('kernel arguments: remembered views', () => {
  it('far-field kernels on views in random orders, more than a slot remembers, mixed with outside arrays: the bits of JS', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }), // far states (views), more than MAX_WAYS (32) at the top
        // a round of calls (heads in turn, in any order), repeated, with random calls between the rounds
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 2 })), { maxLength: 40 }),
        fc.integer({ min: 0, max: 1e9 }),
        (pool, round, repeats, noise, seed) => {
          const ops = [];
          for (let r = 0; r < repeats; r++) ops.push(...round, ...noise.slice(r * 3, r * 3 + 3));
          const rng = new Rng(seed);
          const [m, dv] = [3, 4];
          const size = m * (dv + 1);
          const ws = createWasmWorkspace(1 << 15);
          const other = createWasmWorkspace(1 << 12); // views of another memory: copied like outside arrays
          const homes = [ws, ws, ws, null, other] as const;
          const states: Array<{ wasm: FarArrays; js: FarArrays }> = [];
          for (let s = 0; s < pool; s++) {
            const sum = rand(rng, size);
            const comp = rand(rng, size, -1e-17, 1e-17);
            const home = homes[s % homes.length]!;
            states.push({ wasm: { sum: place(home, sum), comp: place(home, comp) }, js: { sum: sum.slice(), comp: comp.slice() } });
          }
          const rows = rand(rng, 8 * m, 0, 1);
          const rowsWasm = place(ws, rows);
          const values = rand(rng, 8 * dv);
          const valuesWasm = place(ws, values);
          const accWasm = place(ws, new Float64Array(8 * (dv + 1)));
          const accJs = new Float64Array(8 * (dv + 1));
          for (const [si, ri, kind] of ops) {
            const st = states[si % pool]!;
            const r = ri % 8;
            if (kind === 0) {
              ws.farAbsorb({ far: st.wasm, gamma: 0.97, phiK: rowsWasm, kOff: r * m, v: valuesWasm, vOff: r * dv, m, dv });
              js.farAbsorb({ far: st.js, gamma: 0.97, phiK: rows, kOff: r * m, v: values, vOff: r * dv, m, dv });
            } else if (kind === 1) {
              ws.farContract({ far: st.wasm, cFar: 1.25, phiQ: rowsWasm, qOff: r * m, m, dv, acc: accWasm, aOff: r * (dv + 1) });
              js.farContract({ far: st.js, cFar: 1.25, phiQ: rows, qOff: r * m, m, dv, acc: accJs, aOff: r * (dv + 1) });
            } else {
              ws.scaleFar(st.wasm, 0.5, m, dv);
              js.scaleFar(st.js, 0.5, m, dv);
            }
          }
          for (const st of states) {
            expect(Array.from(st.wasm.sum)).toEqual(Array.from(st.js.sum));
            expect(Array.from(st.wasm.comp)).toEqual(Array.from(st.js.comp));
          }
          expect(Array.from(accWasm)).toEqual(Array.from(accJs));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('views passed again are recognized without reading .buffer (heads in turn, any order)', () => {
    const rng = new Rng(3);
    const ws = createWasmWorkspace(1 << 14);
    const [m, dv] = [4, 4];
    const size = m * (dv + 1);
    const fars = Array.from({ length: 6 }, () => ({ sum: place(ws, rand(rng, size)), comp: place(ws, new Float64Array(size)) }));
    const phiQ = place(ws, rand(rng, 6 * m, 0, 1));
    const acc = place(ws, new Float64Array(dv + 1));
    const order = [4, 1, 5, 0, 3, 2]; // a fixed order, not the order the views were made in
    const round = (): void => {
      for (const h of order) ws.farContract({ far: fars[h]!, cFar: 1, phiQ, qOff: h * m, m, dv, acc, aOff: 0 });
    };
    for (let r = 0; r < 40; r++) round(); // learn (and widen to hold six views a slot)
    const proto = Object.getPrototypeOf(Float64Array.prototype) as object;
    const desc = Object.getOwnPropertyDescriptor(proto, 'buffer')!;
    let reads = 0;
    Object.defineProperty(proto, 'buffer', {
      ...desc,
      get(this: Float64Array) {
        reads++;
        return desc.get!.call(this);
      },
    });
    try {
      for (let r = 0; r < 10; r++) round();
    } finally {
      Object.defineProperty(proto, 'buffer', desc);
    }
    expect(reads).toBe(0);
  });
});

describe('kernel arguments: the FFT overlap check', () => {
  it('refuses overlapping views of the memory and overlapping outside arrays; accepts adjacent ones', () => {
    const ws = createWasmWorkspace(1 << 12);
    const plan = ws.fftPlan(8);
    const buf = ws.f64(64);
    expect(() => plan.forward(buf.subarray(0, 16), buf.subarray(8, 24))).toThrow(/must not overlap/);
    expect(() => plan.forward(buf.subarray(8, 24), buf.subarray(0, 16))).toThrow(/must not overlap/);
    plan.forward(buf.subarray(0, 16), buf.subarray(16, 32));
    const outside = new Float64Array(64);
    expect(() => plan.forward(outside.subarray(0, 16), outside.subarray(4, 20))).toThrow(/must not overlap/);
    plan.forward(outside.subarray(0, 16), outside.subarray(16, 32));
    // one in the memory, one outside: never the same buffer
    plan.forward(buf.subarray(32, 48), outside.subarray(0, 16));
  });
});
