// The model fingerprint's SHA-256 against node:crypto, at every padding boundary and incrementally.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { Sha256, sha256, toHex } from '../../src/model/sha256.js';

describe('sha256', () => {
  it('equals node:crypto at the padding boundaries and for random inputs fed in random pieces', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);
      expect(toHex(sha256(b))).toBe(createHash('sha256').update(b).digest('hex'));
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat({ max: 130 }), { maxLength: 8 }), (bytes, cuts) => {
        const h = new Sha256();
        let p = 0;
        for (const c of cuts) {
          h.update(bytes.subarray(p, Math.min(bytes.length, p + c)));
          p = Math.min(bytes.length, p + c);
        }
        h.update(bytes.subarray(p));
        expect(toHex(h.digest())).toBe(createHash('sha256').update(bytes).digest('hex'));
      }),
      { numRuns: 200, seed: 5 },
    );
  });
});
