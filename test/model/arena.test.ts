// A model whose sessions share an arena (ModelOptions.arena): every layer's decoder of every session takes its
// state from the one arena, and the sessions generate exactly what sessions with memory of their own generate.
import { describe, expect, it } from 'vitest';
import { Arena, ConfigError, StateError, createArena } from '../../src/index.js';
import { createModel, randomWeights } from '../../src/model/index.js';
import { wasmSupported } from '../../src/backend/wasm.js';
import { tinyConfig } from './tiny.js';

const BACKENDS = wasmSupported() ? (['js', 'wasm'] as const) : (['js'] as const);

async function generated(session: { generate(p: string, o: { maxTokens: number }): AsyncIterable<{ token: number }> }, prompt: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for await (const t of session.generate(prompt, { maxTokens: n })) out.push(t.token);
  return out;
}

const bits = (a: Float64Array | null) => (a === null ? null : Array.from(new BigUint64Array(Float64Array.from(a).buffer), (b) => b.toString(16)));

describe('a model whose sessions share an arena', () => {
  for (const backend of BACKENDS) {
    it(`${backend}: sessions on the arena generate the tokens and logits of sessions with memory of their own; snapshots continue off it`, async () => {
      const cfg = tinyConfig({ rpe: { length: 70, tail: 'clip' } }); // rings grow past 64 while generating
      const weights = randomWeights(cfg, 3);
      const arena = createArena({ backend, bytes: 4 << 20 });
      const shared = createModel(cfg, weights, { arena });
      const own = createModel(cfg, weights, { backend });
      expect(shared.backend).toBe(backend);
      const a = [shared.session({ seed: 1 }), shared.session({ seed: 2 })];
      const b = [own.session({ seed: 1 }), own.session({ seed: 2 })];
      expect(arena.regions).toBe(2 * cfg.layers);
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 2; i++) {
          const prompt = round === 0 ? `Call me ${i}. ` : '';
          expect(await generated(a[i]!, prompt, 40)).toEqual(await generated(b[i]!, prompt, 40));
          expect(bits(a[i]!.lastLogits())).toEqual(bits(b[i]!.lastLogits()));
        }
      }
      expect(arena.usedBytes).toBeGreaterThan(0);
      // a snapshot of a session on the arena restores (exactly) and continues as the uninterrupted session
      const regions = arena.regions;
      const restored = shared.restore(a[0]!.snapshot());
      expect(arena.regions, 'the restored session\'s decoders are on the arena too').toBe(regions + cfg.layers);
      // dispose() gives a session's regions back at once
      b[1]!.dispose();
      a[1]!.dispose();
      expect(arena.regions).toBe(regions);
      expect(() => a[1]!.feed([1])).toThrow(StateError);
      expect(await generated(restored, '', 20)).toEqual(await generated(b[0]!, '', 20));
    });
  }

  it('refuses a bad arena option, or an arena of another backend than asked for, with a ConfigError', () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 1);
    expect(() => createModel(cfg, w, { arena: {} as Arena })).toThrow(ConfigError);
    expect(() => createModel(cfg, w, { arena: 7 as unknown as Arena })).toThrow(/options.arena must be an Arena \(from createArena\), got 7/);
    if (wasmSupported()) {
      const js = createArena({ backend: 'js', bytes: 1 << 20 });
      expect(() => createModel(cfg, w, { arena: js, backend: 'wasm' })).toThrow(/arena of backend 'js', but the backend asked for is 'wasm'/);
      expect(js.usedBytes).toBe(0);
    }
  });
});
