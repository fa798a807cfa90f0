// Decoders sharing an arena (createArena): many decoders in one memory, states and outputs bit-identical to
// decoders with memory of their own, regions given back on dispose(), and bad or exhausted arenas refused with a
// typed error while nothing changes.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import v8 from 'node:v8';
import vm from 'node:vm';
import ndarray, { type NdArray } from 'ndarray';
import { Arena, ConfigError, createArena, Decoder, ResourceError, resolveConfig, StateError, type AttentionConfig, type DecoderState } from '../../src/index.js';
import { wasmMemory, wasmSupported } from '../../src/backend/wasm.js';
import { Rng } from '../../src/math/rng.js';
import { randomTensor, sliceRows as rows } from '../helpers.js';

const WASM = wasmSupported();
const BACKENDS = WASM ? (['js', 'wasm'] as const) : (['js'] as const);
const realAllocate = wasmMemory.allocate;
afterEach(() => {
  wasmMemory.allocate = realAllocate;
});

/** The bits of every float64 (so -0 vs 0 and NaN payloads count). */
function bits(a: ArrayLike<number>): string[] {
  return Array.from(new BigUint64Array(Float64Array.from(a).buffer), (b) => b.toString(16));
}

/** A state's arrays as bits; the exponents are integers (a snapshot stores -0 as 0, the same exponent). */
function stateBits(s: DecoderState): unknown {
  return { position: s.position, method: s.method, backend: s.backend, dtype: s.dtype, heads: s.heads.map((h) => ({ ringK: bits(h.ringK), ringV: bits(h.ringV), farSum: bits(h.farSum), farComp: bits(h.farComp), keyExp: h.keyExp + 0, valueExp: h.valueExp + 0 })) };
}

/** One call on a decoder: L = 1 a step, else a chunk; returns the output's bits. */
function call(dec: Decoder, q: NdArray, k: NdArray, v: NdArray, pos: number, L: number): string[] {
  if (L === 1) return bits(dec.step(rows(q, pos, pos + 1, true), rows(k, pos, pos + 1, true), rows(v, pos, pos + 1, true)).data);
  return bits(dec.chunk(rows(q, pos, pos + L), rows(k, pos, pos + L), rows(v, pos, pos + L)).data);
}

const tailArb = fc.constantFrom<'clip' | 'zero' | { decay: number }>('clip', 'zero', { decay: 0.3 });

/**
 * Decoders of one config on one arena, called in random interleavings (a step or a chunk each), with exports,
 * restores, replaceState and dispose-and-rebuild between calls: every output and state bit-identical to decoders of
 * the same dtype with memory of their own, and every region given back at the end.
 */
function arenaProperty(backend: 'js' | 'wasm', dtype: 'float64' | 'float32'): void {
  const f32 = dtype === 'float32';
  const decoders = f32 ? 2 : 3;
  fc.assert(
    fc.property(
      fc.record({
        Ks: fc.array(fc.integer({ min: 1, max: f32 ? 200 : 150 }), { minLength: 1, maxLength: 3 }),
        tail: tailArb,
        d: fc.integer({ min: 1, max: 4 }),
        dv: fc.integer({ min: 1, max: 3 }),
        m: fc.integer({ min: 1, max: 8 }),
        kind: fc.constantFrom('prf', 'prf', 'relu') as fc.Arbitrary<'prf' | 'relu'>,
        // float32 'fft': every chunk whose window passes the head lags runs attention()'s float32 FFT pass in the call's region
        method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
        // per round: which decoder, how many tokens (1 = step), and what happens after the call
        calls: fc.array(
          fc.record({
            who: fc.nat(decoders - 1),
            L: fc.oneof(fc.constant(1), fc.constant(1), fc.integer({ min: 2, max: f32 ? 120 : 80 })),
            then: f32 ? fc.constantFrom('none', 'none', 'export', 'restore', 'replace', 'renew') : fc.constantFrom('none', 'none', 'none', 'export', 'restore', 'replace', 'renew'),
          }),
          { minLength: 1, maxLength: f32 ? 24 : 30 },
        ),
        seed: fc.integer(),
      }),
      (c) => {
        const rng = new Rng(c.seed);
        const heads = c.Ks.length;
        const rpe = c.Ks.map((K) => ({ past: { bias: Array.from({ length: K }, () => (rng.nextFloat64() < 0.1 ? -Infinity : -6 + 8 * rng.nextFloat64())), tail: c.tail } }));
        const features = c.kind === 'prf' ? { kind: 'prf' as const, count: c.m, seed: c.seed } : { kind: c.kind };
        const config: AttentionConfig = { heads, keyDim: c.d, valueDim: c.dv, features, rpe };
        const n = c.calls.reduce((s, x) => s + x.L, 0);
        const ids = Array.from({ length: decoders }, (_, i) => i);
        const inputs = ids.map(() => [randomTensor(rng, [heads, n, c.d]), randomTensor(rng, [heads, n, c.d], 2), randomTensor(rng, [heads, n, c.dv])] as const);
        const arena = createArena({ backend, bytes: 8 << 20 });
        const opts = f32 ? { method: c.method, dtype } : { method: c.method };
        const own = ids.map(() => new Decoder(config, { backend, ...opts }));
        let shared = ids.map(() => new Decoder(config, { arena, ...opts }));
        const pos = ids.map(() => 0);
        for (const { who, L, then } of c.calls) {
          const [q, k, v] = inputs[who]!;
          expect(call(shared[who]!, q, k, v, pos[who]!, L)).toEqual(call(own[who]!, q, k, v, pos[who]!, L));
          pos[who]! += L;
          const a = shared[who]!;
          if (then === 'export') expect(stateBits(a.exportState())).toEqual(stateBits(own[who]!.exportState()));
          else if (then === 'restore') {
            // a restored decoder (its snapshot's dtype with it) takes a new region of the arena; the old one goes back
            const b = Decoder.restore(a.snapshot(), { arena });
            expect(b.dtype).toBe(dtype);
            a.dispose();
            shared = shared.map((x) => (x === a ? b : x));
          } else if (then === 'replace') {
            const fresh = new Decoder(config, { arena, ...opts });
            fresh.replaceState(a.exportState());
            a.dispose();
            shared = shared.map((x) => (x === a ? fresh : x));
          } else if (then === 'renew') {
            // dispose and build from the state: the region just freed is reused (first fit)
            const st = a.exportState();
            a.dispose();
            shared = shared.map((x) => (x === a ? Decoder.fromState(config, st, { arena }) : x));
          }
        }
        for (const i of ids) {
          const st = shared[i]!.exportState();
          if (f32) {
            expect(st.dtype).toBe('float32');
            for (const h of st.heads) expect(h.ringK instanceof Float32Array && h.ringV instanceof Float32Array).toBe(true);
            expect(shared[i]!.stateBytes).toBe(own[i]!.stateBytes);
          }
          expect(stateBits(st)).toEqual(stateBits(own[i]!.exportState()));
        }
        for (const d of shared) d.dispose();
        expect(arena.usedBytes).toBe(0);
        expect(arena.regions).toBe(0);
      },
    ),
    f32 ? { numRuns: backend === 'wasm' ? 40 : 30, seed: 32 } : { numRuns: backend === 'wasm' ? 60 : 40, seed: 21 },
  );
}

for (const backend of BACKENDS) describe(`decoders on an arena (${backend})`, () => {
  it('interleaved on one arena, with restores, replaceState and disposals between calls: bit-identical to decoders with memory of their own', () => {
    arenaProperty(backend, 'float64');
  });

  it("dtype 'float32' on an arena: steps, chunks (float32 A-form and FFT passes), restores, replaceState and disposals bit-identical to float32 decoders with memory of their own", () => {
    arenaProperty(backend, 'float32');
  });

  it('dispose() gives the regions back; a disposed decoder refuses every call with a StateError and keeps its position', () => {
    const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 1 }, rpe: { past: { bias: [0, -1, -2], tail: 'clip' } } };
    const arena = createArena({ backend, bytes: 1 << 20 });
    const rng = new Rng(2);
    const t = () => [randomTensor(rng, [2, 3]), randomTensor(rng, [2, 3]), randomTensor(rng, [2, 2])] as const;
    const a = new Decoder(config, { arena });
    const one = arena.usedBytes;
    expect(one).toBeGreaterThan(0);
    expect(arena.backend).toBe(backend);
    expect(a.backend).toBe(backend);
    const b = new Decoder(config, { arena });
    expect(arena.usedBytes).toBe(2 * one);
    a.step(...t());
    const state = a.exportState();
    a.dispose();
    a.dispose(); // idempotent
    expect(a.isDisposed).toBe(true);
    expect(arena.usedBytes).toBe(one);
    expect(a.position).toBe(1);
    expect(() => a.step(...t())).toThrow(StateError);
    expect(() => a.step(...t())).toThrow(/step\(\) on a disposed decoder/);
    expect(() => a.chunk(randomTensor(rng, [2, 4, 3]), randomTensor(rng, [2, 4, 3]), randomTensor(rng, [2, 4, 2]))).toThrow(/chunk\(\) on a disposed decoder/);
    expect(() => a.exportState()).toThrow(/exportState\(\) on a disposed decoder/);
    expect(() => a.snapshot()).toThrow(StateError);
    expect(() => a.reset()).toThrow(/reset\(\) on a disposed decoder/);
    expect(() => a.replaceState(state)).toThrow(/replaceState\(\) on a disposed decoder/);
    b.dispose();
    expect(arena.usedBytes).toBe(0);
  });
});

describe.skipIf(!WASM)('20,000 small decoders on one WASM arena', () => {
  it('all live at once, each stepped once: no WebAssembly memory of their own, the arena holds exactly their layouts', () => {
    // Without an arena each decoder makes a WebAssembly.Memory, and V8 refuses new ones at ~12,800 live (~450 MiB RSS).
    // Measured (bench/arena.ts, this config, Node 20): 4,288 bytes of arena per decoder (85.8 MB for 20,000) and
    // 10.5 KiB of RSS per decoder in all (~210 MiB), the rest the decoders' JS objects (~4.7 KB each: views,
    // argument records); with memories of their own, 31.8 KiB each. The bound asserted: 600 MiB.
    const config = resolveConfig({ heads: 1, keyDim: 8, valueDim: 8, features: { kind: 'prf', count: 8, seed: 1 }, rpe: { past: { bias: Array.from({ length: 16 }, (_, i) => -i / 8), tail: 'clip' } } });
    const N = 20_000;
    const arena = createArena({ backend: 'wasm', bytes: 96 << 20 });
    let made = 0;
    wasmMemory.allocate = (pages: number) => {
      made++;
      return realAllocate(pages);
    };
    const rss0 = process.memoryUsage().rss;
    const rng = new Rng(4);
    const q = randomTensor(rng, [1, 8]);
    const k = randomTensor(rng, [1, 8]);
    const v = randomTensor(rng, [1, 8]);
    const decoders: Decoder[] = [];
    const first = new Decoder(config, { arena });
    const each = arena.usedBytes;
    decoders.push(first);
    for (let i = 1; i < N; i++) decoders.push(new Decoder(config, { arena }));
    const outs = decoders.map((d) => d.step(q, k, v));
    const grew = process.memoryUsage().rss - rss0;
    expect(made).toBe(0);
    expect(arena.regions).toBe(N);
    expect(arena.usedBytes).toBe(N * each);
    expect(each).toBe(4288);
    // every decoder computed the same token the same way
    const ref = new Decoder(config, { backend: 'wasm' }).step(q, k, v);
    expect(bits(outs[N - 1]!.data)).toEqual(bits(ref.data));
    expect(bits(outs[0]!.data)).toEqual(bits(ref.data));
    expect(grew).toBeLessThan(600 * 2 ** 20);
    for (const d of decoders) d.dispose();
    expect(arena.usedBytes).toBe(0);
  });
});

describe.skipIf(!WASM)('a WASM decoder with memory of its own', () => {
  it('a stream of ever larger chunks replaces its memory O(log) times, not once per call', () => {
    // exact sizing each time made one memory per chunk here (121 for chunks of 1..120 tokens, 1.8x the time)
    const config: AttentionConfig = { heads: 2, keyDim: 8, valueDim: 8, features: { kind: 'prf', count: 8, seed: 1 }, rpe: { past: { bias: Array.from({ length: 200 }, (_, i) => -i / 50), tail: 'clip' } } };
    const rng = new Rng(8);
    let made = 0;
    wasmMemory.allocate = (pages: number) => {
      made++;
      return realAllocate(pages);
    };
    const dec = new Decoder(config, { backend: 'wasm' });
    const twin = new Decoder(config, { backend: 'js' });
    for (let L = 1; L <= 100; L++) {
      const q = randomTensor(rng, [2, L, 8]);
      const z = dec.chunk(q, q, q);
      const t = twin.chunk(q, q, q);
      for (let i = 0; i < z.data.length; i++) if (!(Math.abs(z.data[i]! - t.data[i]!) <= 1e-12)) throw new Error(`wasm and js differ at L = ${L}`);
    }
    expect(made).toBeGreaterThan(1);
    expect(made).toBeLessThanOrEqual(10);
  });
});

describe('bad and exhausted arenas: typed errors naming what was expected and what arrived, nothing changed', () => {
  const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 1 }, rpe: { past: { bias: Array.from({ length: 100 }, (_, i) => -i / 50), tail: 'clip' } } };

  it('options.arena of the wrong type, or of another backend than asked for: ConfigError', () => {
    expect(() => new Decoder(config, { arena: {} as Arena })).toThrow(ConfigError);
    expect(() => new Decoder(config, { arena: {} as Arena })).toThrow(/options.arena must be an Arena \(from createArena\), got an object with keys \[\]/);
    expect(() => new Decoder(config, { arena: 'big' as unknown as Arena })).toThrow(/options.arena must be an Arena \(from createArena\), got "big"/);
    expect(() => new Decoder(config, { arena: null as unknown as Arena })).toThrow(/got null/);
    const js = createArena({ backend: 'js', bytes: 1 << 20 });
    if (WASM) {
      expect(() => new Decoder(config, { arena: js, backend: 'wasm' })).toThrow(/options.arena is an arena of backend 'js', but the backend asked for is 'wasm'/);
      const wasm = createArena({ backend: 'wasm', bytes: 1 << 20 });
      expect(() => new Decoder(config, { arena: wasm, backend: 'js' })).toThrow(/arena of backend 'wasm', but the backend asked for is 'js'/);
      // a snapshot records its backend: restoring it into an arena of another backend is refused unless overridden
      const snap = new Decoder(config, { backend: 'wasm' }).snapshot();
      expect(() => Decoder.restore(snap, { arena: js })).toThrow(/arena of backend 'js', but the backend asked for is 'wasm'/);
      expect(() => Decoder.restore(snap, { arena: 5 as unknown as Arena })).toThrow(/options.arena must be an Arena/);
      expect(js.usedBytes).toBe(0); // nothing was taken by the refused calls
      const restored = Decoder.restore(snap, { arena: js, backend: 'js' });
      expect(restored.backend).toBe('js');
      expect(js.usedBytes).toBeGreaterThan(0);
      restored.dispose();
    }
    expect(js.usedBytes).toBe(0);
  });

  it('createArena refuses bad options, and an Arena is only made by it', () => {
    expect(() => new (Arena as unknown as new (...a: unknown[]) => Arena)({}, Symbol('x'))).toThrow(/made by createArena/);
    expect(() => createArena(null as unknown as { bytes: number })).toThrow(/arena options must be an object \{ backend\?, bytes \}, got null/);
    expect(() => createArena({ bytes: 0 })).toThrow(/options.bytes must be an integer in \[1, 2\^32\] \(the arena's size in bytes\), got 0/);
    expect(() => createArena({ bytes: 1.5 })).toThrow(ConfigError);
    expect(() => createArena({ bytes: '1' as unknown as number })).toThrow(/got "1"/);
    expect(() => createArena({ bytes: 1024, backend: 'gpu' as 'js' })).toThrow(/options.backend must be 'auto', 'js' or 'wasm', got "gpu"/);
  });

  for (const backend of BACKENDS) {
    it(`${backend}: an exhausted arena is a ResourceError ('arena') at construction, ring growth, chunk scratch and restore; the decoder and the arena are unchanged, and it goes on once room is made`, () => {
      const probe = createArena({ backend, bytes: 1 << 20 });
      new Decoder(config, { arena: probe }).dispose();
      const small = new Decoder(config, { arena: probe });
      const each = probe.usedBytes; // one decoder with rings of 64
      small.dispose();
      const arena = createArena({ backend, bytes: 3 * each });
      const a = new Decoder(config, { arena });
      const fillers = [new Decoder(config, { arena }), new Decoder(config, { arena })];
      let err: unknown;
      try {
        new Decoder(config, { arena });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ResourceError);
      const r = err as ResourceError;
      expect(r.resource).toBe('arena');
      expect(r.requestedBytes).toBe(each);
      expect(r.limitBytes).toBe(3 * each);
      expect(r.message).toContain(`needs ${each.toLocaleString('en-US')} bytes`);
      expect(r.message).toContain('but 0 bytes are free');
      expect(r.message).toMatch(/dispose\(\) owners you no longer use, or make a larger arena/);
      expect(arena.usedBytes).toBe(3 * each);
      // steps up to the ring's first capacity fit; the 65th needs a larger ring: refused, nothing changed
      const rng = new Rng(6);
      const n = 120;
      const q = randomTensor(rng, [2, n, 3]);
      const k = randomTensor(rng, [2, n, 3]);
      const v = randomTensor(rng, [2, n, 2]);
      const twin = new Decoder(config, { backend });
      for (let i = 0; i < 64; i++) expect(call(a, q, k, v, i, 1)).toEqual(call(twin, q, k, v, i, 1));
      const before = stateBits(a.exportState());
      expect(() => call(a, q, k, v, 64, 1)).toThrow(ResourceError);
      expect(() => call(a, q, k, v, 64, 1)).toThrow(/no room for a decoder of 2 heads/);
      expect(() => call(a, q, k, v, 64, 1)).toThrow(/state \d[\d,]* bytes/);
      // a chunk needs scratch on top: refused too (even one that fits the ring needs its buffers)
      expect(() => call(fillers[0]!, q, k, v, 0, 10)).toThrow(/scratch [\d,]+ bytes/);
      expect(stateBits(a.exportState())).toEqual(before);
      expect(fillers[0]!.position).toBe(0);
      expect(arena.usedBytes).toBe(3 * each);
      expect(() => Decoder.restore(a.snapshot(), { arena })).toThrow(ResourceError);
      expect(arena.usedBytes).toBe(3 * each);
      // a fresh decoder fits, but not the rings this state needs: refused, and the fresh one's region is back
      fillers[1]!.dispose();
      const long = Decoder.restore(twin.snapshot(), { backend });
      for (let i = 0; i < 64; i++) call(long, q, k, v, i, 1);
      expect(() => Decoder.restore(long.snapshot(), { arena })).toThrow(ResourceError);
      expect(arena.usedBytes).toBe(2 * each);
      fillers[1] = new Decoder(config, { arena });
      // one region free is not enough: the larger ring needs its room while the old one is copied
      fillers[0]!.dispose();
      expect(() => call(a, q, k, v, 64, 1)).toThrow(/largest piece [\d,]+ bytes/);
      expect(stateBits(a.exportState())).toEqual(before);
      // room made: the same calls go through and the stream is the twin's, bit for bit
      fillers[1]!.dispose();
      for (let i = 64; i < 100; i++) expect(call(a, q, k, v, i, 1)).toEqual(call(twin, q, k, v, i, 1));
      expect(call(a, q, k, v, 100, 20)).toEqual(call(twin, q, k, v, 100, 20));
      expect(stateBits(a.exportState())).toEqual(stateBits(twin.exportState()));
    });
  }

  it.skipIf(!WASM)('a decoder collected without dispose() gives its region back (FinalizationRegistry)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const arena = createArena({ backend: 'wasm', bytes: 1 << 20 });
    const keep = new Decoder(config, { arena });
    const each = arena.usedBytes;
    (() => {
      for (let i = 0; i < 5; i++) new Decoder(config, { arena }).step(...([[2, 3], [2, 3], [2, 2]].map((s) => ndarray(new Float64Array(s[0]! * s[1]!).fill(0.5), s)) as [NdArray, NdArray, NdArray]));
    })();
    expect(arena.usedBytes).toBe(6 * each);
    for (let i = 0; i < 50 && arena.usedBytes > each; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(arena.usedBytes).toBe(each);
    expect(keep.position).toBe(0);
  });
});
