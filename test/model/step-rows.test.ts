// The session's per-token attention goes through Decoder.stepRows (flat rows of the one-row RunState): the logits
// of a session's one-token feeds are bit-identical to forward() driven by the public Decoder.step on ndarray views,
// past the rings' windows (rpe length 8), on both backends.
import { describe, expect, it } from 'vitest';
import ndarray from 'ndarray';
import { loadModel, encodeModel, randomWeights } from '../../src/model/index.js';
import { forward, type RunState } from '../../src/model/forward.js';
import { Decoder } from '../../src/codec/decoder.js';
import { tinyConfig } from './tiny.js';

describe('session one-token path (Decoder.stepRows)', () => {
  for (const backend of ['js', 'wasm'] as const) {
    it(`${backend}: the same logits as forward() with Decoder.step, token by token`, () => {
      const cfg = tinyConfig();
      const model = loadModel(encodeModel(cfg, randomWeights(cfg, 4), { dtype: 'F64' }), { backend });
      const session = model.session({ seed: 1 });
      const c = model.config;
      const decs = model.attentionConfigs.map((a) => new Decoder(a, { backend }));
      const s = model.runState(1);
      const views = { q: ndarray(s.q, [c.heads, c.keyDim]), k: ndarray(s.k, [c.heads, c.keyDim]), v: ndarray(s.v, [c.heads, c.valueDim]), z: ndarray(s.z, [c.heads, c.valueDim]) };
      const attend = (l: number, _n: number, st: RunState): void => {
        expect(st).toBe(s);
        decs[l]!.step(views.q, views.k, views.v, views.z);
      };
      const logits = new Float64Array(c.vocab);
      const tok = new Uint8Array(1);
      for (let t = 0; t < 40; t++) {
        tok[0] = (t * 37 + 11) % 256;
        const got = session.feed(tok, { lastOnly: true });
        forward(c, model.weights, tok, 0, 1, s, attend, logits, 0, true);
        for (let i = 0; i < c.vocab; i++) if (!Object.is(got[i], logits[i])) expect.fail(`token ${t}: logit ${i} is ${got[i]}, step() gives ${logits[i]}`);
      }
    });
  }
});
