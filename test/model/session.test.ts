// Sessions: seeded sampling, generate() semantics (UTF-8 pieces, stop strings, abort, empty prompts),
// snapshot/restore continuing exactly (many split points, and in a fresh Node process), refusal of
// another model's or a damaged snapshot.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, StateError } from '../../src/index.js';
import { ModelError, encodeModel, randomWeights, type Session, type SessionOptions, type GeneratedToken } from '../../src/model/index.js';
import { saveSession, loadSession } from '../../src/model/file.js';
import { Sampler, checkSamplerOptions } from '../../src/model/sampler.js';
import { Utf8Pieces } from '../../src/model/utf8.js';
import { SESSION_HEADER_BYTES } from '../../src/model/snapshot.js';
import { crc32 } from '../../src/codec/index.js';
import { bytesOf, maxRowRelError, tinyConfig, tinyModel } from './tiny.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const model = tinyModel(11);
const prompt = 'Call me Ishmael. ';

async function collect(it: AsyncIterable<GeneratedToken>): Promise<GeneratedToken[]> {
  const out: GeneratedToken[] = [];
  for await (const g of it) out.push(g);
  return out;
}

const sameBits = (a: Float64Array, b: Float64Array): boolean => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

describe('generate', () => {
  it('is seeded: same seed, same tokens; another seed, other tokens; positions count prompt and output', async () => {
    const a = await collect(model.session({ seed: 5, temperature: 0.9 }).generate(prompt, { maxTokens: 30 }));
    const b = await collect(model.session({ seed: 5, temperature: 0.9 }).generate(prompt, { maxTokens: 30 }));
    const c = await collect(model.session({ seed: 6, temperature: 0.9 }).generate(prompt, { maxTokens: 30 }));
    expect(a).toEqual(b);
    expect(a.map((g) => g.token)).not.toEqual(c.map((g) => g.token));
    expect(a.map((g) => g.position)).toEqual(Array.from({ length: 30 }, (_, i) => prompt.length + i + 1));
  });

  it('feeds every generated token back: the logits after generation equal model.logits of prompt + output', async () => {
    const s = model.session({ seed: 1 });
    const out = await collect(s.generate(prompt, { maxTokens: 20 }));
    const all = [...bytesOf(prompt), ...out.map((g) => g.token)];
    const whole = model.logits(all);
    expect(maxRowRelError(s.lastLogits()!, whole.subarray(whole.length - 256), 256)).toBeLessThan(1e-9);
  });

  it('temperature 0, topK 1 and a tiny topP are greedy (argmax of the logits at every step)', async () => {
    const greedy = await collect(model.session({ temperature: 0 }).generate(prompt, { maxTokens: 15 }));
    const all = [...bytesOf(prompt), ...greedy.map((g) => g.token)];
    const logits = model.logits(all);
    greedy.forEach((g, i) => {
      const row = logits.subarray((prompt.length - 1 + i) * 256, (prompt.length + i) * 256);
      expect(g.token).toBe(row.indexOf(Math.max(...row)));
    });
    expect(await collect(model.session({ seed: 3, topK: 1 }).generate(prompt, { maxTokens: 15 }))).toEqual(greedy);
    expect(await collect(model.session({ seed: 3, topP: 1e-9 }).generate(prompt, { maxTokens: 15 }))).toEqual(greedy);
  });

  it('top-k and top-p only ever pick among the allowed tokens', () => {
    const logits = Float64Array.from({ length: 256 }, (_, i) => (i < 4 ? 10 - i : -5 + Math.sin(i)));
    const probs = logits.map((l) => Math.exp(l - 10));
    const total = probs.reduce((a, b) => a + b, 0);
    const k3 = new Sampler(checkSamplerOptions({ seed: 1, topK: 3 }), 256);
    const p = new Sampler(checkSamplerOptions({ seed: 2, topP: (probs[0]! + probs[1]!) / total }), 256);
    for (let i = 0; i < 300; i++) {
      expect(k3.sample(logits)).toBeLessThan(3);
      expect(p.sample(logits)).toBeLessThan(2);
    }
    expect(k3.draws).toBe(600);
  });

  it('text pieces are UTF-8-safe and concatenate to the decoded bytes', async () => {
    const out = await collect(model.session({ seed: 2, temperature: 1.5 }).generate(prompt, { maxTokens: 200 }));
    const text = out.map((g) => g.text).join('');
    const tokens = Uint8Array.from(out.map((g) => g.token));
    const decoder = new TextDecoder();
    expect(text).toBe(decoder.decode(tokens, { stream: true }));
    for (const g of out) expect(g.text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    // a random model emits high bytes: multi-byte sequences and empty pieces do occur here
    expect(out.some((g) => g.text === '')).toBe(true);
  });

  it('Utf8Pieces matches TextDecoder on any bytes, and holds back at most 3', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const u = new Utf8Pieces();
        let s = '';
        for (const b of bytes) {
          s += u.push(b);
          expect(u.pendingBytes().length).toBeLessThanOrEqual(3);
        }
        expect(s + (u.pendingBytes().length > 0 ? '\uFFFD' : '')).toBe(new TextDecoder().decode(bytes));
      }),
      { numRuns: 2000, seed: 1 },
    );
    const u = new Utf8Pieces();
    expect([...bytesOf('é😀')].map((b) => u.push(b))).toEqual(['', 'é', '', '', '', '😀']);
  });

  it('stops after the token that completes a stop string (which may span pieces)', async () => {
    const free = await collect(model.session({ seed: 4, temperature: 0.7 }).generate(prompt, { maxTokens: 60 }));
    const text = free.map((g) => g.text).join('');
    const stop = text.slice(20, 23); // three characters that really occur
    const at = text.indexOf(stop) + stop.length;
    const stopped = await collect(model.session({ seed: 4, temperature: 0.7 }).generate(prompt, { maxTokens: 60, stop: ['\u0000never', stop] }));
    const got = stopped.map((g) => g.text).join('');
    // the output is the free run's, cut right after the first occurrence (a piece may hold U+FFFD + a char)
    expect(got).toBe(text.slice(0, got.length));
    expect(got.length).toBeGreaterThanOrEqual(at);
    expect(got.length).toBeLessThanOrEqual(at + 1);
  });

  it('an AbortSignal ends the iteration with its reason; the tokens yielded stay fed', async () => {
    const s = model.session({ seed: 1 });
    const ac = new AbortController();
    const seen: GeneratedToken[] = [];
    await expect(
      (async () => {
        for await (const g of s.generate(prompt, { maxTokens: 100, signal: ac.signal })) {
          seen.push(g);
          if (seen.length === 5) ac.abort(new Error('enough'));
        }
      })(),
    ).rejects.toThrow('enough');
    expect(seen.length).toBe(5);
    expect(s.position).toBe(prompt.length + 5);
    // a signal aborted by a timer gets through a long CPU-bound generation (the loop yields to the event loop)
    const timed = model.session({ seed: 1 });
    const n = (await collect(timed.generate(prompt, { maxTokens: 5 }))).length;
    expect(n).toBe(5);
    const slow = model.session({ seed: 1 });
    let count = 0;
    const err = await (async () => {
      try {
        for await (const _ of slow.generate(prompt, { maxTokens: 1_000_000, signal: AbortSignal.timeout(50) })) count++;
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    expect(err?.name).toBe('TimeoutError');
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(1_000_000);
  });

  it('an empty prompt continues; on a session fed nothing it is a StateError', async () => {
    const s = model.session({ seed: 9 });
    expect(() => s.generate('', { maxTokens: 3 })).toThrow(StateError); // at the call, not at the first next()
    expect(() => s.generate([], { maxTokens: 3 })).toThrow(/needs a non-empty prompt on a session fed nothing yet/);
    const one = await collect(s.generate(prompt, { maxTokens: 10 }));
    const two = await collect(s.generate('', { maxTokens: 10 }));
    const straight = await collect(model.session({ seed: 9 }).generate(prompt, { maxTokens: 20 }));
    expect([...one, ...two]).toEqual(straight);
  });

  it('refuses bad options and overlapping use', async () => {
    expect(() => model.session({ temperature: -1 })).toThrow(ConfigError);
    expect(() => model.session({ topP: 0 })).toThrow(/topP must be a number in \(0, 1\]/);
    expect(() => model.session({ topK: 1.5 })).toThrow(/topK must be an integer >= 0/);
    expect(() => model.session({ seed: NaN })).toThrow(/seed must be a finite number, got NaN/);
    const s = model.session();
    expect(() => s.generate(prompt, { maxTokens: -1 })).toThrow(/maxTokens must be an integer >= 0, got -1/);
    expect(() => s.generate(prompt, { maxTokens: 1, stop: [''] })).toThrow(/stop must be a non-empty string/);
    expect(() => s.generate([300], { maxTokens: 1 })).toThrow(/prompt\[0\] must be an integer token id in \[0, 255\], got 300/);
    await expect(collect(s.generate('a', { maxTokens: 2 }))).resolves.toHaveLength(2);
    for await (const _ of s.generate('b', { maxTokens: 3 })) {
      expect(() => s.feed([65])).toThrow(/feed\(\) is not allowed while a generate\(\) iteration is running/);
      break;
    }
    expect(() => s.feed([65])).not.toThrow(); // break released the session
  });
});

describe('snapshot / restore', () => {
  /** Generate `total` tokens straight, and with a snapshot + restore after `k` of them. */
  async function splitRun(k: number, total: number, options: SessionOptions = { seed: 21, temperature: 1.2, topP: 0.95 }): Promise<[GeneratedToken[], GeneratedToken[], Session, Session]> {
    const straight = model.session(options);
    const want = await collect(straight.generate(prompt, { maxTokens: total }));
    const first = model.session(options);
    const got = k === 0 ? [] : await collect(first.generate(prompt, { maxTokens: k }));
    if (k === 0) first.feed(bytesOf(prompt));
    const restored = model.restore(first.snapshot());
    got.push(...(await collect(restored.generate('', { maxTokens: total - k }))));
    return [want, got, straight, restored];
  }

  it('a restored session continues exactly (same tokens, texts, positions, logits bits) at many split points', async () => {
    for (const k of [0, 1, 2, 7, 8, 9, 23, 39]) {
      const [want, got, straight, restored] = await splitRun(k, 40);
      expect(got, `split at ${k}`).toEqual(want);
      expect(sameBits(restored.lastLogits()!, straight.lastLogits()!)).toBe(true);
      expect(restored.snapshot()).toEqual(straight.snapshot());
    }
  });

  it('carries the unfinished UTF-8 character across the snapshot', async () => {
    const options = { seed: 2, temperature: 1.5 };
    const free = await collect(model.session(options).generate(prompt, { maxTokens: 120 }));
    const k = free.findIndex((g) => g.text === '') + 1; // just after a held-back byte
    expect(k).toBeGreaterThan(0);
    const [want, got] = await splitRun(k, 120, options);
    expect(got).toEqual(want);
  });

  it('in a fresh Node process: same tokens, logits and final state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzlm-'));
    try {
      const cfg = tinyConfig();
      const modelPath = join(dir, 'model.safetensors');
      writeFileSync(modelPath, encodeModel(cfg, randomWeights(cfg, 11), { dtype: 'F64' }));
      const s = model.session({ seed: 3, temperature: 0.8, topK: 40 });
      await collect(s.generate(prompt, { maxTokens: 10 }));
      const sessionPath = join(dir, 'session.bin');
      saveSession(sessionPath, s);
      expect(loadSession(sessionPath, model).position).toBe(s.position);
      const want = await collect(s.generate('', { maxTokens: 25 }));
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'session-child.ts'), modelPath, sessionPath, '25'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect(child.status, child.stderr).toBe(0);
      const got = JSON.parse(child.stdout.trim().split('\n').pop()!) as { tokens: number[]; logits: string; snapshot: string };
      expect(got.tokens).toEqual(want.map((g) => g.token));
      expect(got.logits).toBe(Buffer.from(s.lastLogits()!.buffer).toString('hex'));
      expect(got.snapshot).toBe(Buffer.from(s.snapshot()).toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses another model's snapshot with a ModelError 'wrong-model'", () => {
    const s = model.session();
    s.feed(bytesOf(prompt));
    const other = tinyModel(12);
    expect(() => other.restore(s.snapshot())).toThrow(ModelError);
    expect(() => other.restore(s.snapshot())).toThrow(/^wrong-model: this snapshot belongs to another model \(fingerprint [0-9a-f]{16}…, this model's is [0-9a-f]{16}…\)/);
    // the same weights loaded again (another file, another dtype-preserving copy) are the same model
    expect(tinyModel(11).restore(s.snapshot()).position).toBe(prompt.length);
  });

  it('a fresh session snapshots and restores too (position 0, no logits)', async () => {
    const r = model.restore(model.session({ seed: 4 }).snapshot());
    expect(r.position).toBe(0);
    expect(r.lastLogits()).toBeNull();
    expect(await collect(r.generate(prompt, { maxTokens: 5 }))).toEqual(await collect(model.session({ seed: 4 }).generate(prompt, { maxTokens: 5 })));
  });

  /** Rewrite a payload field and fix the CRC, so only the semantic checks can catch it. */
  function tamper(bytes: Uint8Array, edit: (view: DataView, payload: number) => void): Uint8Array {
    const b = bytes.slice();
    edit(new DataView(b.buffer), SESSION_HEADER_BYTES);
    new DataView(b.buffer).setUint32(16, crc32(b.subarray(SESSION_HEADER_BYTES)), true);
    return b;
  }

  it('refuses damaged or inconsistent snapshots with a ModelError saying what is wrong', async () => {
    const s = model.session({ seed: 1 });
    await collect(s.generate(prompt, { maxTokens: 4 }));
    const good = s.snapshot();
    const err = (b: Uint8Array): string => {
      try {
        model.restore(b);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelError);
        return (e as Error).message;
      }
      return 'restored';
    };
    expect(err(good.subarray(0, 10))).toMatch(/^truncated: a session snapshot starts with a 20-byte header, got 10 bytes/);
    expect(err(good.subarray(0, good.length - 1))).toMatch(/^truncated: the session snapshot declares a \d+-byte payload, but only \d+ bytes follow/);
    expect(err(Uint8Array.from([...good, 0]))).toMatch(/^snapshot: .* got 1 extra bytes after it/);
    expect(err(Uint8Array.from(good, (x, i) => (i === 0 ? 0x50 : x)))).toMatch(/^snapshot: not a toeplitz-lm session snapshot: expected the magic bytes/);
    expect(err(Uint8Array.from(good, (x, i) => (i === 8 ? 3 : x)))).toMatch(/^snapshot: unsupported session snapshot version: expected one of 1, 2, got 3/);
    expect(err(Uint8Array.from(good, (x, i) => (i === good.length - 3 ? x ^ 1 : x)))).toMatch(/^snapshot: checksum mismatch/);
    const p = SESSION_HEADER_BYTES + 32;
    expect(err(tamper(good, (v) => v.setFloat64(p, 3, true)))).toMatch(/^snapshot: the sampler's draw count must be an even integer in \[0, 2 x position\] = \[0, 6\], got 8/);
    expect(err(tamper(good, (v) => v.setFloat64(p, 1e300, true)))).toMatch(/position must be an integer|draw count/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 16, 1e9, true)))).toMatch(/draw count must be an even integer .* got 1000000000/);
    // a position of 2^53 - 1 with 2^53 draws (even, <= 2 x position, but not a safe count): refused as the snapshot's
    expect(err(tamper(good, (v) => (v.setFloat64(p, 2 ** 53 - 1, true), v.setFloat64(p + 16, 2 ** 53, true))))).toMatch(/^snapshot: the sampler's draw count must be an even integer/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 24, -1, true)))).toMatch(/^snapshot: sampler: temperature must be a finite number >= 0/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 16, NaN, true)))).toMatch(/^snapshot: the sampler's draw count must be an even integer .* got NaN/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 32, 1.5, true)))).toMatch(/^snapshot: sampler: topK must be an integer >= 0/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 40, 2, true)))).toMatch(/^snapshot: sampler: topP must be a number in \(0, 1\]/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 8, Infinity, true)))).toMatch(/^snapshot: sampler: seed must be a finite number/);
    // version 2: the generator state (4 x u32) and the backend byte (+ 3 zero bytes) follow the six f64
    expect(err(tamper(good, (v) => v.setUint32(p + 48, v.getUint32(p + 48, true) ^ 1, true)))).toMatch(/^snapshot: the sampler's generator state is not seed 1's after 8 draws/);
    expect(err(tamper(good, (v) => [0, 4, 8, 12].forEach((o) => v.setUint32(p + 48 + o, 0, true))))).toMatch(/^snapshot: the sampler generator state must not be all zero/);
    expect(err(tamper(good, (v) => v.setUint8(p + 64, 2)))).toMatch(/^snapshot: the backend byte must be 0 \('js'\) or 1 \('wasm'\), got 2/);
    // the dtype byte after it (0 float64, 1 float32), then 2 zero bytes
    expect(err(tamper(good, (v) => v.setUint8(p + 65, 2)))).toMatch(/^snapshot: the dtype byte must be 0 \('float64'\) or 1 \('float32'\), got 2/);
    expect(err(tamper(good, (v) => v.setUint8(p + 65, 1)))).toMatch(/^snapshot: layer 0's decoder is float64, the session float32/);
    expect(err(tamper(good, (v) => v.setUint8(p + 66, 1)))).toMatch(/^snapshot: the 2 bytes after the dtype byte must be 0/);
    expect(err(tamper(good, (v) => (v.setUint8(p + 68, 0), v.setUint8(p + 71, 7))))).toMatch(/^snapshot: the 3 unused pending UTF-8 byte slots must be 0, got \[\d+, \d+, 7\]/);
    expect(err(tamper(good, (v) => v.setUint8(p + 68, 2)))).toMatch(/^snapshot: pending UTF-8 bytes must be the start of one multi-byte character, got \[\d+, \d+\]/);
    expect(err(tamper(good, (v) => v.setFloat64(p + 76, NaN, true)))).toMatch(/^snapshot: the last logits must be finite, got NaN at index 0/);
    // a decoder snapshot of the right shape but another position
    const other = model.session({ seed: 1 });
    other.feed(bytesOf(prompt + 'abcde'));
    const decOff = p + 76 + 256 * 8 + 4;
    const mixed = tamper(good, (v) => {
      const theirs = other.snapshot();
      const tv = new DataView(theirs.buffer);
      const len = tv.getUint32(decOff, true);
      if (len === v.getUint32(decOff, true)) new Uint8Array(v.buffer).set(theirs.subarray(decOff, decOff + 4 + len), decOff);
    });
    expect(err(mixed)).toMatch(/^snapshot: layer 0's decoder does not match the model: expected position 21, got 22$/);
  });

  it('every truncation, and a bit flip in every byte, is refused with a ModelError', async () => {
    const s = model.session({ seed: 1 });
    await collect(s.generate(prompt, { maxTokens: 3 }));
    const good = s.snapshot();
    const refused = (b: Uint8Array): boolean => {
      try {
        model.restore(b);
        return false;
      } catch (e) {
        if (!(e instanceof ModelError)) throw e;
        return true;
      }
    };
    for (let n = 0; n < good.length; n++) expect(refused(good.subarray(0, n)), `truncated to ${n}`).toBe(true);
    for (let at = 0; at < good.length; at++) {
      const b = good.slice();
      b[at] = b[at]! ^ (1 << (at % 8));
      expect(refused(b), `bit ${at % 8} of byte ${at}`).toBe(true);
    }
  });

  it('fuzz: bit flips and truncations are refused with a ModelError or restore the same session', () => {
    const s = model.session({ seed: 1 });
    s.feed(bytesOf(prompt));
    const good = s.snapshot();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.tuple(fc.nat({ max: good.length - 1 }), fc.nat({ max: 7 })), { minLength: 1, maxLength: 3 }).map((flips) => {
            const b = good.slice();
            for (const [at, bit] of flips) b[at] = b[at]! ^ (1 << bit);
            return b;
          }),
          fc.nat({ max: good.length - 1 }).map((n) => good.slice(0, n)),
        ),
        (bytes) => {
          try {
            const r = model.restore(bytes);
            expect(r.snapshot()).toEqual(good); // only a no-op change (flips that cancel) can restore
          } catch (e) {
            if (!(e instanceof ModelError)) throw e;
          }
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });
});
