// UTF-8-valid sampling (the sampler's validUtf8 option, on by default): the mask against TextDecoder's own
// validity for every state; random logits and states never give invalid bytes; the logits are untouched;
// snapshots record the option (old snapshots, flags 0, keep sampling unmasked); the shipped model at high
// temperature never prints U+FFFD.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/index.js';
import { ModelError, type GeneratedToken, type Session } from '../../src/model/index.js';
import { loadModelFile } from '../../src/model/file.js';
import { Sampler, checkSamplerOptions } from '../../src/model/sampler.js';
import { Utf8Pieces } from '../../src/model/utf8.js';
import { Utf8Mask } from '../../src/model/utf8Mask.js';
import { crc32 } from '../../src/codec/index.js';
import { SESSION_HEADER_BYTES } from '../../src/model/snapshot.js';
import { tinyModel } from './tiny.js';

const here = dirname(fileURLToPath(import.meta.url));
const shipped = join(here, '..', '..', 'models', 'toeplitz-lm.safetensors');
const model = tinyModel(21);

/** The oracle: the WHATWG decoder, fatal, streaming (an unfinished last character is fine, an error is not). */
const oracle = new TextDecoder('utf-8', { fatal: true });
function validPrefix(bytes: ArrayLike<number>): boolean {
  let ok = true;
  try {
    oracle.decode(Uint8Array.from(bytes), { stream: true });
  } catch {
    ok = false;
  }
  try {
    oracle.decode(); // end the stream (throws on an unfinished character): the decoder starts afresh
  } catch {
    // expected after an unfinished character
  }
  return ok;
}

/**
 * The states a session can hold: nothing pending, or a valid unfinished character: every one of 1 and 2 bytes,
 * and of 3 bytes (16,384, where only the lead matters) those with 2nd and 3rd bytes at the ends of their ranges.
 */
function allPendingStates(): number[][] {
  const out: number[][] = [[]];
  let frontier: number[][] = [[]];
  for (let len = 1; len <= 3; len++) {
    const next: number[][] = [];
    for (const p of frontier) {
      for (let b = len === 1 ? 0xc2 : 0x80; b <= (len === 1 ? 0xf4 : 0xbf); b++) {
        const q = [...p, b];
        const u = new Utf8Pieces();
        if (validPrefix(q) && u.restore(Uint8Array.from(q))) next.push(q);
      }
    }
    // 3 bytes: 2nd byte at an end of its lead's range (F0: 90..BF, F4: 80..8F, else 80..BF), 3rd 80 or BF
    const ends = (q: number[]): boolean =>
      (q[1] === (q[0] === 0xf0 ? 0x90 : 0x80) || q[1] === (q[0] === 0xf4 ? 0x8f : 0xbf)) && (q[2] === 0x80 || q[2] === 0xbf);
    out.push(...(len === 3 ? next.filter(ends) : next));
    frontier = next;
  }
  return out;
}

async function collect(it: AsyncIterable<GeneratedToken>): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const g of it) out.push(g);
  return out;
}

const sameBits = (a: Float64Array, b: Float64Array): boolean => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
const bytesOk = (tokens: number[]): boolean => validPrefix(tokens);

describe('the UTF-8 mask', () => {
  it('allows exactly the bytes TextDecoder accepts next, in every state (no overlongs, surrogates, > U+10FFFF)', () => {
    const states = allPendingStates();
    // none; a lead C2..F4; two bytes of E0 (A0..BF), E1..EC, ED (80..9F), EE..EF, F0 (90..BF), F1..F3, F4 (80..8F);
    // three bytes: 4 for each of F0..F4
    expect(states.length).toBe(1 + 51 + (32 + 12 * 64 + 32 + 2 * 64 + 48 + 3 * 64 + 16) + 5 * 4);
    const mask = new Utf8Mask();
    let checked = 0;
    for (const p of states) {
      const u = new Utf8Pieces();
      expect(u.restore(Uint8Array.from(p))).toBe(true);
      const allowed = Array.from(mask.update(u));
      const expected = Array.from({ length: 256 }, (_, b) => (validPrefix([...p, b]) ? 1 : 0));
      if (allowed.join() !== expected.join()) expect([p, allowed]).toEqual([p, expected]);
      checked++;
    }
    expect(checked).toBe(states.length);
  });

  it('random logits, options and states: the sampled bytes always stay valid UTF-8; unmasked they do not', () => {
    const states = allPendingStates();
    let unmaskedInvalid = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: states.length - 1 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.constantFrom(0, 0.5, 1, 2, 5),
        fc.constantFrom(0, 1, 3, 40),
        fc.constantFrom(1, 0.9, 0.3),
        fc.array(fc.array(fc.double({ min: -30, max: 30, noNaN: true }), { minLength: 256, maxLength: 256 }), { minLength: 1, maxLength: 12 }),
        (state, seed, temperature, topK, topP, rows) => {
          for (const validUtf8 of [true, false]) {
            const sampler = new Sampler(checkSamplerOptions({ seed, temperature, topK, topP, validUtf8 }), 256);
            const pieces = new Utf8Pieces();
            const start = states[state]!;
            pieces.restore(Uint8Array.from(start));
            const mask = new Utf8Mask();
            const bytes = [...start];
            let text = '';
            for (let t = 0; t < 40; t++) {
              const logits = Float64Array.from(rows[t % rows.length]!);
              const b = sampler.sample(logits, 0, validUtf8 ? mask.update(pieces) : null);
              bytes.push(b);
              text += pieces.push(b);
            }
            if (validUtf8) {
              expect(bytesOk(bytes)).toBe(true);
              expect(text).not.toContain('\uFFFD');
            } else if (!bytesOk(bytes)) unmaskedInvalid++;
          }
        },
      ),
      { numRuns: 300, seed: 20 },
    );
    expect(unmaskedInvalid).toBeGreaterThan(50); // the property is not vacuous: the same draws unmasked go wrong
  });

  it('sessions: on by default, refused unless boolean, recorded in sampling', () => {
    expect(model.session().sampling.validUtf8).toBe(true);
    expect(model.session({ validUtf8: false }).sampling.validUtf8).toBe(false);
    expect(() => model.session({ validUtf8: 'yes' as never })).toThrow(ConfigError);
    expect(() => model.session({ validUtf8: 'yes' as never })).toThrow('validUtf8 must be a boolean, got "yes"');
  });

  it('a random model generates valid UTF-8 only with the mask; the logits are the same either way', async () => {
    const masked = model.session({ seed: 4, temperature: 1 });
    const free = model.session({ seed: 4, temperature: 1, validUtf8: false });
    const a = await collect(masked.generate('Hi ', { maxTokens: 400 }));
    const b = await collect(free.generate('Hi ', { maxTokens: 400 }));
    expect(bytesOk(a.map((g) => g.token))).toBe(true);
    expect(a.map((g) => g.text).join('')).not.toContain('\uFFFD');
    expect(b.map((g) => g.text).join('')).toContain('\uFFFD'); // random weights: invalid bytes are likely unmasked
    // the logits are the model's: the masked session's last logits equal those of a session fed the same bytes
    const replay = model.session({ validUtf8: false });
    replay.feed(new TextEncoder().encode('Hi '), { lastOnly: true });
    for (const g of a) replay.feed([g.token]); // one at a time, as generate() feeds them
    expect(sameBits(masked.lastLogits()!, replay.lastLogits()!)).toBe(true);
    expect(masked.lastLogits()!.every(Number.isFinite)).toBe(true);
    // and feed() returns the same rows whatever the option
    const x = model.session().feed([200, 65, 0x80, 0xff, 10]);
    const y = model.session({ validUtf8: false }).feed([200, 65, 0x80, 0xff, 10]);
    expect(sameBits(x, y)).toBe(true);
  });

  it('a prompt that ends inside a character: the model completes it, and the piece holds the whole character', async () => {
    const prompt = [...new TextEncoder().encode('caf'), 0xc3]; // "caf" + the first byte of é..ÿ
    for (let seed = 0; seed < 5; seed++) {
      const out = await collect(model.session({ seed }).generate(prompt, { maxTokens: 30 }));
      expect(out[0]!.token).toBeGreaterThanOrEqual(0x80);
      expect(out[0]!.token).toBeLessThanOrEqual(0xbf);
      expect(out[0]!.text).toBe(new TextDecoder().decode(Uint8Array.of(0xc3, out[0]!.token)));
      expect(bytesOk([...prompt, ...out.map((g) => g.token)])).toBe(true);
    }
    // invalid prompt bytes are the user's: not repaired, the generated bytes are valid on their own
    for (const bad of [[0x61, 0xff], [0x61, 0x80], [0x61, 0xe0, 0x80], [0xed, 0xa0]]) {
      const out = await collect(model.session({ seed: 1 }).generate(bad, { maxTokens: 40 }));
      expect(bytesOk(out.map((g) => g.token))).toBe(true);
      expect(out.map((g) => g.text).join('')).not.toContain('\uFFFD');
    }
    // feed() too: what follows continues after the fed bytes (a stale unfinished character of earlier output is dropped)
    const s = model.session({ seed: 2 });
    let pendingSeen = false;
    for await (const g of s.generate('x', { maxTokens: 200 })) {
      if (g.text === '' && g.token >= 0xc2) {
        pendingSeen = true;
        break; // stop inside a character
      }
    }
    expect(pendingSeen).toBe(true);
    s.feed(new TextEncoder().encode(' and then'));
    const after = await collect(s.generate('', { maxTokens: 40 }));
    expect(bytesOk(after.map((g) => g.token))).toBe(true);
  });
});

describe('snapshots record the option', () => {
  async function splitRun(options: Parameters<typeof model.session>[0], at: number, total: number): Promise<{ straight: number[]; resumed: number[]; snap: Uint8Array; restored: Session }> {
    const straight = (await collect(model.session(options).generate('Ahoy ', { maxTokens: total }))).map((g) => g.token);
    const s = model.session(options);
    const first = (await collect(s.generate('Ahoy ', { maxTokens: at }))).map((g) => g.token);
    const snap = s.snapshot();
    const restored = model.restore(snap);
    const rest = (await collect(restored.generate('', { maxTokens: total - at }))).map((g) => g.token);
    return { straight, resumed: [...first, ...rest], snap, restored };
  }

  it('masked: restore continues bit-identically, also from inside a character (flags bit 0 set)', async () => {
    for (const at of [1, 7, 13, 29, 60]) {
      const { straight, resumed, snap, restored } = await splitRun({ seed: 8, temperature: 1 }, at, 90);
      expect(resumed).toEqual(straight);
      expect(snap[10]).toBe(1);
      expect(restored.sampling.validUtf8).toBe(true);
    }
    expect(bytesOk((await splitRun({ seed: 8, temperature: 1 }, 5, 90)).straight)).toBe(true);
  });

  it('a snapshot with flags 0 (every snapshot made before the option) restores unmasked and continues as it ran', async () => {
    const { straight, resumed, snap, restored } = await splitRun({ seed: 8, temperature: 1, validUtf8: false }, 20, 300);
    expect(snap[10]).toBe(0); // byte for byte the old format
    expect(restored.sampling.validUtf8).toBe(false);
    expect(resumed).toEqual(straight);
    expect(bytesOk(straight)).toBe(false); // it really is the unmasked behaviour
    // unknown flag bits are refused (the header is outside the checksum: checked on its own)
    const bad = snap.slice();
    bad[10] = 2;
    expect(() => model.restore(bad)).toThrow(ModelError);
    expect(() => model.restore(bad)).toThrow('session snapshot flags must be 0 or 1 (bit 0: validUtf8), got 2');
    expect(crc32(bad.subarray(SESSION_HEADER_BYTES))).toBe(new DataView(bad.buffer).getUint32(16, true));
  });
});

describe.skipIf(!existsSync(shipped))('the shipped model', () => {
  it('at temperature 1.6, 2,500 generated bytes hold no U+FFFD and are valid UTF-8 (unmasked: U+FFFD appears)', async () => {
    const m = loadModelFile(shipped);
    const prompt = 'The whale, the whale! ';
    const run = async (validUtf8: boolean): Promise<{ text: string; bytes: number[] }> => {
      const out = await collect(m.session({ seed: 11, temperature: 1.6, validUtf8 }).generate(prompt, { maxTokens: 2500 }));
      return { text: out.map((g) => g.text).join(''), bytes: out.map((g) => g.token) };
    };
    const masked = await run(true);
    expect(masked.text).not.toContain('\uFFFD');
    expect(bytesOk(masked.bytes)).toBe(true);
    const free = await run(false);
    expect(free.text).toContain('\uFFFD');
  });
});
