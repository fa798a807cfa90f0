// The model fingerprint (what ties a session snapshot to its model): SHA-256 of the config JSON and the
// float64 weights, now by @noble/hashes. Pinned values made by the previous hand-written SHA-256, so
// snapshots written before the switch still restore; and equal to node:crypto over the same bytes.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { weightArrays } from '../../src/model/weights.js';
import { tinyModel } from './tiny.js';

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

describe('model fingerprint', () => {
  it('is unchanged by the switch to @noble/hashes (values pinned from the hand-written SHA-256)', () => {
    expect(hex(tinyModel(11).fingerprint)).toBe('edc69feaa44d0f9325f3c17345ddf16031c5403d8955319e4876d30c8d191d72');
    expect(hex(tinyModel(3, { tiedEmbedding: false, layers: 3 }).fingerprint)).toBe('6f8d38b5b61975f09584554278eeec7419201b5054174e89a63c0a8f041c1155');
  });

  it('equals node:crypto SHA-256 over the config JSON and the float64 little-endian weights', () => {
    const m = tinyModel(5, { tiedEmbedding: false });
    const h = createHash('sha256').update(JSON.stringify(m.config));
    for (const a of weightArrays(m.config, m.weights)) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    expect(hex(m.fingerprint)).toBe(h.digest('hex'));
  });
});
