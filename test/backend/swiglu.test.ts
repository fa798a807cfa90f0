// SwiGLU's gate on the WASM backend (assembly/swiglu.ts): fdlibm's exp as V8 ships it for Math.exp, scalar and in
// f64x2 where its branches collapse to one formula, so ws.swiglu gives the bits of the plain loop (src/math/swiglu.ts)
// in V8: the model's JS and WASM backends, and the base implementation that used Math.exp, stay bit-identical.
import { describe, expect, it } from 'vitest';
import { createWasmWorkspace, wasmSupported } from '../../src/backend/wasm.js';
import { WASM_BASE64 } from '../../src/backend/wasmBinary.js';
import { swiglu } from '../../src/math/swiglu.js';
import { Rng } from '../../src/math/rng.js';

// arguments where fdlibm's branches meet: 2^-28, 0.5 ln 2 and 1.5 ln 2 (as their high-word thresholds), x = 1,
// the range ends of the f64x2 path (+-700) and of exp (709.78, -745.13), k boundaries (j + 1/2) ln 2, specials
const EDGES = [
  0, -0, 1, -1, 0.5, -0.5, 2 ** -28, -(2 ** -28), 2 ** -28 * (1 - 2 ** -53), 2 ** -29, 1e-300, -1e-300, 5e-324,
  0.34657359027997264, 0.3465738296508789, 0.34657382965087885, -0.3465738296508789, 1.0397205352783203,
  1.03972053527832, 1.0397207708399179, -1.0397205352783203, Math.LN2, -Math.LN2, 699.9999999999999, 700, -700,
  -699.9999999999999, 708.39, -708.39, 709.78, 709.7827128933841, 709.79, -745.13, -745.1332191019411, -745.14, 750,
  -750, Infinity, -Infinity, NaN, 1e308, -1e308,
];

function sameBits(a: Float64Array, b: Float64Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/** Values of every kind: the edges scaled by 1 +- a few ulps, random in +-40, +-1500, tiny, k boundaries, random bits. */
function values(rng: Rng, n: number): Float64Array {
  const out = new Float64Array(n);
  const bits = new BigUint64Array(1);
  const f = new Float64Array(bits.buffer);
  for (let i = 0; i < n; i++) {
    switch (i % 7) {
      case 0:
        out[i] = EDGES[(i / 7) % EDGES.length | 0]! * (1 + (((i / 7) | 0) % 9 - 4) * 2 ** -52);
        break;
      case 1:
        out[i] = (rng.nextFloat64() - 0.5) * 80;
        break;
      case 2:
        out[i] = (rng.nextFloat64() - 0.5) * 3000;
        break;
      case 3:
        out[i] = (rng.nextFloat64() - 0.5) * 2 ** -26;
        break;
      case 4:
        out[i] = ((((rng.nextFloat64() * 2000) | 0) - 1000 + 0.5) * Math.LN2) * (1 + (((rng.nextFloat64() * 64) | 0) - 32) * 2 ** -52);
        break;
      case 5:
        out[i] = (rng.nextFloat64() - 0.5) * 8;
        break;
      default:
        bits[0] = (BigInt(Math.floor(rng.nextFloat64() * 2 ** 32)) << 32n) | BigInt(Math.floor(rng.nextFloat64() * 2 ** 32));
        out[i] = f[0]!;
    }
  }
  return out;
}

describe.skipIf(!wasmSupported())('WASM swiglu', () => {
  it("the kernel's exp (scalar and f64x2) is Math.exp bit for bit", () => {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 64 });
    const x = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64')), { env: { memory } }).exports as unknown as {
      expFdlibm(v: number): number;
      expPairs(p: number, n: number): void;
    };
    const rng = new Rng(51);
    const n = 200_000;
    const at = 1 << 20;
    const heap = new Float64Array(memory.buffer, at, n);
    for (let round = 0; round < 3; round++) {
      const v = values(rng, n);
      // pairs of both kinds: shifted by one every round, so each value meets another partner
      heap.set(v.subarray(round), 0);
      x.expPairs(at, n - round);
      for (let i = 0; i < n - round; i++) {
        const want = Math.exp(v[i + round]!);
        if (!Object.is(heap[i], want)) expect.fail(`exp(${v[i + round]}): f64x2 path ${heap[i]}, Math.exp ${want}`);
        if (!Object.is(x.expFdlibm(v[i + round]!), want)) expect.fail(`exp(${v[i + round]}): scalar ${x.expFdlibm(v[i + round]!)}, Math.exp ${want}`);
      }
    }
  });

  it('gives the bits of the plain loop, in the workspace and copied, at every length', () => {
    const rng = new Rng(52);
    const ws = createWasmWorkspace(1 << 16);
    for (const len of [0, 1, 2, 3, 7, 344, 688, 1001]) {
      const u = values(rng, len);
      const g = Float64Array.from({ length: len }, () => (rng.nextFloat64() - 0.5) * 4);
      const want = u.slice();
      swiglu(want, g, len);
      const mark = ws.mark();
      const h1 = ws.f64(len + 1);
      const h3 = ws.f64(len);
      h1.set(u);
      h1[len] = 123;
      h3.set(g);
      ws.swiglu(h1, h3, len);
      expect(sameBits(h1.subarray(0, len), want), `len ${len}`).toBe(-1);
      expect(h1[len]).toBe(123);
      ws.release(mark);
      const outside = u.slice();
      ws.swiglu(outside, g.slice(), len); // arrays outside the memory: copied through it
      expect(sameBits(outside, want), `len ${len}, copied`).toBe(-1);
    }
    expect(() => ws.swiglu(new Float64Array(3), new Float64Array(2), 3)).toThrow(/swiglu h3/);
  });
});
