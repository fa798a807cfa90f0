// finalizeRows (engine/nearfield.ts): the one finalization of attention() and Decoder.chunk. They used to differ:
// attention() clamped only when a value scale was undone, the decoder always. Always clamping changes nothing
// for a ratio that is finite and in range (a clamp of such a number is the number) and keeps a ratio that rounds
// past the top finite, which the scale-1 path did not.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { finalizeRows, finite } from '../../src/engine/nearfield.js';

/** The two finalizations as they were (attention()'s, the decoder's chunk loop), for the comparison. */
function attentionBefore(acc: Float64Array, rows: number, dv: number, out: Float64Array, scale: number): void {
  for (let i = 0; i < rows; i++) {
    const den = acc[i * (dv + 1) + dv]!;
    for (let col = 0; col < dv; col++) {
      let z = den > 0 ? acc[i * (dv + 1) + col]! / den : 0;
      if (scale !== 1) z = Math.min(Number.MAX_VALUE, Math.max(-Number.MAX_VALUE, z * scale));
      out[i * dv + col] = z;
    }
  }
}
function decoderBefore(acc: Float64Array, rows: number, dv: number, out: Float64Array, scale: number): void {
  for (let i = 0; i < rows; i++) {
    const den = acc[i * (dv + 1) + dv]!;
    for (let col = 0; col < dv; col++) out[i * dv + col] = den > 0 ? finite((acc[i * (dv + 1) + col]! / den) * scale) : 0;
  }
}

const bitsOf = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer.slice(0)));

describe('finalizeRows', () => {
  it('equals both former finalizations bit for bit on finite accumulators, any power-of-two scale', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: -60, max: 60 }),
        fc.array(fc.double({ min: -1e300, max: 1e300, noNaN: true }), { minLength: 36, maxLength: 36 }),
        (rows, dv, e, pool) => {
          const acc = new Float64Array(rows * (dv + 1));
          for (let i = 0; i < acc.length; i++) acc[i] = pool[i % pool.length]!;
          for (let i = 0; i < rows; i++) acc[i * (dv + 1) + dv] = Math.abs(acc[i * (dv + 1) + dv]!) * (i % 3 === 0 ? 0 : 1); // some zero denominators
          const scale = 2 ** e;
          const now = new Float64Array(rows * dv);
          const a = new Float64Array(rows * dv);
          const d = new Float64Array(rows * dv);
          finalizeRows(acc, rows, dv, now, 0, scale);
          attentionBefore(acc, rows, dv, a, scale);
          decoderBefore(acc, rows, dv, d, scale);
          expect(bitsOf(now)).toEqual(bitsOf(d));
          // attention()'s old form differs only where the scale-1 ratio itself overflows (it skipped the clamp)
          for (let i = 0; i < now.length; i++) if (Number.isFinite(a[i]!)) expect(Object.is(now[i], a[i])).toBe(true);
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });

  it('a zero denominator gives a zero row; a ratio that rounds past the top stays finite, at scale 1 too', () => {
    const out = new Float64Array(4);
    // row 0: den 0 -> zeros; row 1: 1.7e308 / 0.5 overflows to Infinity before any scale
    finalizeRows(Float64Array.from([5, -5, 0, 1.7e308, -1.7e308, 0.5]), 2, 2, out);
    expect(Array.from(out)).toEqual([0, 0, Number.MAX_VALUE, -Number.MAX_VALUE]);
    // the offset and the scale apply
    const o = new Float64Array(3);
    finalizeRows(Float64Array.from([3, 4, 2]), 1, 2, o, 1, 0.5);
    expect(Array.from(o)).toEqual([0, 0.75, 1]);
  });
});
