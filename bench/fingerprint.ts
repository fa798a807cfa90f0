// Model fingerprint time of the shipped model with @noble/hashes' sha256; when src/model/sha256.ts (the
// hand-written SHA-256 it replaced) is present, e.g. on an older checkout, both side by side in one run.
// Measured at the switch (interleaved, best of 15, three runs): noble 39.2 / 39.2 / 55.2 ms, hand-written
// 48.6 / 49.6 / 67.7 ms (ratio 0.79-0.81) over 6.34 MiB, same digest.
// Run: npx tsx bench/fingerprint.ts
import { sha256 as noble } from '@noble/hashes/sha2.js';
import { loadModelFile } from '../src/model/file.js';
import { weightArrays } from '../src/model/weights.js';

const model = loadModelFile(new URL('../models/toeplitz-lm.safetensors', import.meta.url).pathname, { backend: 'js' });
const parts = [new TextEncoder().encode(JSON.stringify(model.config)), ...weightArrays(model.config, model.weights).map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength))];
const total = parts.reduce((s, p) => s + p.length, 0);

async function handWritten(): Promise<((ps: Uint8Array[]) => Uint8Array) | null> {
  try {
    const m = (await import('../src/model/sha256.js' as string)) as { Sha256: new () => { update(b: Uint8Array): unknown; digest(): Uint8Array } };
    return (ps) => {
      const h = new m.Sha256();
      for (const p of ps) h.update(p);
      return h.digest();
    };
  } catch {
    return null;
  }
}
const viaNoble = (ps: Uint8Array[]): Uint8Array => {
  const h = noble.create();
  for (const p of ps) h.update(p);
  return h.digest();
};

const hand = await handWritten();
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
// interleaved, best of 15 each: the machine is shared, so both see the same load
const best = { noble: Infinity, hand: Infinity };
const digest = { noble: '', hand: '' };
for (let r = 0; r < 15; r++) {
  for (const [name, f] of [['noble', viaNoble], ['hand', hand]] as const) {
    if (f === null) continue;
    const t = performance.now();
    digest[name] = hex(f(parts));
    best[name] = Math.min(best[name], performance.now() - t);
  }
}
console.log(`fingerprint input: ${(total / 2 ** 20).toFixed(2)} MiB (config JSON + float64 weights)`);
console.log(`@noble/hashes sha256: ${best.noble.toFixed(1)} ms (best of 15)  ${digest.noble.slice(0, 16)}…`);
if (hand) console.log(`hand-written sha256:  ${best.hand.toFixed(1)} ms (best of 15)  ${digest.hand.slice(0, 16)}…  ratio noble/hand ${(best.noble / best.hand).toFixed(2)}; same digest: ${digest.hand === digest.noble}`);
console.log(`model.fingerprint:    ${hex(model.fingerprint).slice(0, 16)}…`);
