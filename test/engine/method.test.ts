// Method names (issue 21 item 7, issue 22 finding 11): one function knows them (checkMethodOption), every
// path that takes a method refuses a bad one with its message, and a model refuses it when loaded, not at
// its first use.
import { describe, expect, it } from 'vitest';
import { attention, ConfigError, Decoder, DecoderCore, StateError, type AttentionConfig } from '../../src/index.js';
import { checkMethodOption, METHOD_NAMES } from '../../src/engine/nearfield.js';
import { createModel, encodeModel, loadModel, randomWeights } from '../../src/model/index.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor } from '../helpers.js';
import { tinyConfig } from '../model/tiny.js';

const cfg: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 2 }, rpe: { past: { bias: [0, -1] } } };
const rng = new Rng(4);
const q = randomTensor(rng, [1, 3, 3]);
const k = randomTensor(rng, [1, 3, 3]);
const v = randomTensor(rng, [1, 3, 2]);

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('method names', () => {
  it('checkMethodOption accepts exactly the names and defaults undefined to auto', () => {
    expect(METHOD_NAMES).toEqual(['auto', 'fft', 'direct']);
    for (const m of METHOD_NAMES) expect(checkMethodOption(m)).toBe(m);
    expect(checkMethodOption(undefined)).toBe('auto');
    for (const bad of ['bogus', 'Auto', '', 0, {}]) expect(() => checkMethodOption(bad)).toThrow(ConfigError);
    expect(() => checkMethodOption(undefined, 'state.method', undefined, true)).toThrow(/state.method must be 'auto', 'fft' or 'direct', got undefined/);
  });

  it('attention, Decoder, Decoder.restore options and a decoder state all refuse a bad name with the one message', () => {
    const want = checkMethodMessage('"bogus"');
    expect(thrown(() => attention(cfg, q, k, v, { method: 'bogus' as never }))).toMatchObject({ name: 'ConfigError', message: `options.method ${want}` });
    expect(thrown(() => new Decoder(cfg, { method: 'bogus' as never }))).toMatchObject({ name: 'ConfigError', message: `options.method ${want}` });
    const dec = new Decoder(cfg);
    dec.step(q.pick(null, 0, null), k.pick(null, 0, null), v.pick(null, 0, null));
    expect(thrown(() => Decoder.restore(dec.snapshot(), { method: 'bogus' as never }))).toMatchObject({ name: 'ConfigError', message: `options.method ${want}` });
    const state = { ...dec.exportState(), method: 'bogus' as never };
    const e = thrown(() => DecoderCore.fromState(cfg, state));
    expect(e).toBeInstanceOf(StateError);
    expect(e.message).toContain(`state.method ${want}`);
  });

  it('loadModel and createModel refuse a bad method at once (not at the first logits or session)', () => {
    const c = tinyConfig();
    const w = randomWeights(c, 1);
    expect(thrown(() => loadModel(encodeModel(c, w), { method: 'bogus' as never }))).toMatchObject({ name: 'ConfigError', message: `options.method ${checkMethodMessage('"bogus"')}` });
    expect(thrown(() => createModel(c, w, { method: 'fast' as never }))).toBeInstanceOf(ConfigError);
    expect(loadModel(encodeModel(c, w), { method: 'direct' }).options.method).toBe('direct');
  });
});

function checkMethodMessage(got: string): string {
  return `must be 'auto', 'fft' or 'direct', got ${got}`;
}
