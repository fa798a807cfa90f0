// The Decoder's dtype 'float32' (issue 21 item 3, the float32 accuracy contract): any mix of step and chunk calls
// stays within 1e-4 (per row, normwise) of the float64 oracle on both backends; a snapshot records the dtype and
// resumes bit-identically within it; bad dtypes are refused with typed errors; the state is half the bytes.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import ndarray, { type NdArray } from 'ndarray';
import { Packr, Unpackr } from 'msgpackr';
import { ConfigError, Decoder, SnapshotError, StateError } from '../../src/index.js';
import type { AttentionConfig, Tail } from '../../src/engine/config.js';
import { decodeSnapshot, frameSnapshot, inspectSnapshot, SNAPSHOT_HEADER_BYTES } from '../../src/codec/index.js';
import { snapshotRefusal } from '../codec/refusal.js';
import { Rng } from '../../src/math/rng.js';
import { maxRowError, randomTensor, sliceRows as rows, streamDecoder } from '../helpers.js';

const BACKENDS = ['js', 'wasm'] as const;

/** The float32 contract: per-row normwise error vs the float64 oracle (test/helpers.ts maxRowError). */
const BAR32 = 1e-4;

/** Near-field passes of chunk calls by method (the properties must reach both float32 chunk paths). */
const passes = { direct: 0, fft: 0 };

/** Run a decoder over the stream (test/helpers.ts streamDecoder), counting its chunks' passes by method. */
function stream(dec: Decoder, q: NdArray, k: NdArray, v: NdArray, sizes: number[]): NdArray<Float64Array> {
  return streamDecoder(dec, q, k, v, sizes, (d) => {
    for (const s of d.lastStats) passes[s.method]++;
  });
}

const tailArb: fc.Arbitrary<Tail> = fc.oneof(fc.constant<Tail>('clip'), fc.constant<Tail>('zero'), fc.double({ min: 0, max: 1, noNaN: true }).map((r) => ({ decay: r })));

interface Case {
  n: number;
  Ks: number[];
  tails: Tail[];
  d: number;
  dv: number;
  m: number;
  kind: 'prf' | 'elu+1' | 'relu';
  normalize: 'l2' | 'scale' | 'none';
  sizes: number[];
  method: 'auto' | 'fft' | 'direct';
  split: number;
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  n: fc.integer({ min: 1, max: 260 }),
  // one shared table (length 1) or one per head, windows shorter and longer than the stream
  Ks: fc.oneof(fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 1 }), fc.array(fc.integer({ min: 1, max: 160 }), { minLength: 2, maxLength: 3 })),
  tails: fc.array(tailArb, { minLength: 3, maxLength: 3 }),
  d: fc.integer({ min: 1, max: 9 }),
  dv: fc.integer({ min: 1, max: 19 }),
  m: fc.integer({ min: 1, max: 20 }),
  kind: fc.constantFrom('prf', 'prf', 'prf', 'elu+1', 'relu') as fc.Arbitrary<'prf' | 'elu+1' | 'relu'>,
  normalize: fc.constantFrom('l2', 'scale', 'none') as fc.Arbitrary<'l2' | 'scale' | 'none'>,
  sizes: fc.array(fc.oneof(fc.constant(1), fc.constant(1), fc.integer({ min: 2, max: 90 })), { minLength: 1, maxLength: 30 }),
  method: fc.constantFrom('auto', 'fft', 'direct') as fc.Arbitrary<'auto' | 'fft' | 'direct'>,
  split: fc.double({ min: 0, max: 1, noNaN: true }),
  seed: fc.integer(),
});

function setup(c: Case) {
  const rng = new Rng(c.seed);
  const heads = c.Ks.length === 1 ? 1 + (Math.abs(c.seed) % 3) : c.Ks.length;
  const side = (K: number, h: number) => ({ bias: Array.from({ length: K }, () => (rng.nextFloat64() < 0.1 ? -Infinity : -20 + 25 * rng.nextFloat64())), tail: c.tails[h]! });
  const rpe = c.Ks.length === 1 ? { past: side(c.Ks[0]!, 0) } : c.Ks.map((K, h) => ({ past: side(K, h) }));
  const features = c.kind === 'prf' ? { kind: 'prf' as const, count: c.m, seed: c.seed, normalize: c.normalize } : { kind: c.kind };
  const config: AttentionConfig = { heads, keyDim: c.d, valueDim: c.dv, features, rpe };
  const q = randomTensor(rng, [heads, c.n, c.d]);
  const k = randomTensor(rng, [heads, c.n, c.d], 2);
  const v = randomTensor(rng, [heads, c.n, c.dv]);
  const sizes = [...c.sizes];
  while (sizes.reduce((a, b) => a + b, 0) < c.n) sizes.push(...c.sizes);
  return { config, q, k, v, sizes };
}

for (const backend of BACKENDS) describe(`Decoder dtype 'float32' (${backend})`, () => {
  it('any mix of step and chunk calls is within 1e-4 of the float64 oracle per row (PRF and deterministic features, shared and per-head windows, every tail)', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { config, q, k, v, sizes } = setup(c);
        const dec = new Decoder(config, { backend, method: c.method, dtype: 'float32' });
        expect(dec.dtype).toBe('float32');
        const z = stream(dec, q, k, v, sizes);
        expect(dec.position).toBe(c.n);
        const err = maxRowError(config, q, k, v, z);
        if (!(err <= BAR32)) throw new Error(`float32 stream row error ${err} against the oracle`);
      }),
      { numRuns: 60, seed: 21 },
    );
    // both chunk paths ran: the float32 A-form and attention()'s float32 FFT pass
    expect(passes.direct).toBeGreaterThan(0);
    expect(passes.fft).toBeGreaterThan(0);
  });

  it('a snapshot at any split point records float32 and continues bit-identically; the rings are float32', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { config, q, k, v, sizes } = setup(c);
        const at = Math.floor(c.split * c.n);
        const a = new Decoder(config, { backend, method: c.method, dtype: 'float32' });
        stream(a, rows(q, 0, at), rows(k, 0, at), rows(v, 0, at), sizes);
        const snap = a.snapshot();
        expect(inspectSnapshot(snap).dtype).toBe('float32');
        const state = a.exportState();
        expect(state.dtype).toBe('float32');
        for (const h of state.heads) {
          expect(h.ringK).toBeInstanceOf(Float32Array);
          expect(h.ringV).toBeInstanceOf(Float32Array);
          expect(h.farSum).toBeInstanceOf(Float64Array);
        }
        const b = Decoder.restore(snap);
        expect(b.dtype).toBe('float32');
        expect(b.backend).toBe(backend);
        // a snapshot of the restored decoder is the same bytes (nothing lost or converted on the way)
        expect(Buffer.from(b.snapshot()).equals(Buffer.from(snap))).toBe(true);
        const rest = [rows(q, at, c.n), rows(k, at, c.n), rows(v, at, c.n)] as const;
        // the continuation's calls start at another phase of `sizes` than the first run's (a ring wrapped anywhere)
        const za = stream(a, ...rest, sizes.slice(1).concat(sizes));
        const zb = stream(b, ...rest, sizes.slice(1).concat(sizes));
        expect(Buffer.from(zb.data.buffer).equals(Buffer.from(za.data.buffer))).toBe(true);
        expect(Buffer.from(b.snapshot()).equals(Buffer.from(a.snapshot()))).toBe(true);
      }),
      { numRuns: 40, seed: 22 },
    );
  });

  it('values near the float32 top (and far beyond it) are scaled exactly and stay within the bar', () => {
    const rng = new Rng(5);
    const config: AttentionConfig = { heads: 2, keyDim: 4, valueDim: 3, features: { kind: 'prf', count: 8, seed: 2 }, rpe: { past: { bias: [0, -0.5, -1, -1.5, -2], tail: { decay: 0.1 } } } };
    for (const scale of [1e-20, 1e30, 1e38, 1e200, 1e300]) {
      const n = 60;
      const q = randomTensor(rng, [2, n, 4]);
      const k = randomTensor(rng, [2, n, 4]);
      const v = randomTensor(rng, [2, n, 3], scale);
      const dec = new Decoder(config, { backend, dtype: 'float32' });
      const z = stream(dec, q, k, v, [1, 1, 1, 7, 1, 20, 1, 28]);
      for (const x of z.data) expect(Number.isFinite(x)).toBe(true);
      expect(maxRowError(config, q, k, v, z), `scale ${scale}`).toBeLessThanOrEqual(BAR32);
      const s = dec.exportState();
      if (scale >= 1e30) expect(s.heads[0]!.valueExp).toBeGreaterThan(0);
      // the restored state passes the float32 checks (values within 2^100 once scaled)
      expect(Decoder.restore(dec.snapshot()).position).toBe(n);
    }
  });

  it('a float64 state with values past the float32 limit restores as float32 (values rescaled exactly, F with them)', () => {
    const rng = new Rng(6);
    const config: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 5, seed: 3 }, rpe: { past: { bias: [0, -1, -2, -3], tail: 'clip' } } };
    for (const scale of [1e35, 1e200]) {
      const n = 30;
      const q = randomTensor(rng, [1, n, 3]), k = randomTensor(rng, [1, n, 3]), v = randomTensor(rng, [1, n, 2], scale);
      const a64 = new Decoder(config, { backend });
      stream(a64, rows(q, 0, 20), rows(k, 0, 20), rows(v, 0, 20), [1, 19]);
      const b32 = Decoder.restore(a64.snapshot(), { dtype: 'float32' });
      expect(b32.exportState().heads[0]!.valueExp).toBeGreaterThan(a64.exportState().heads[0]!.valueExp);
      const rest = stream(b32, rows(q, 20, n), rows(k, 20, n), rows(v, 20, n), [1, 9]);
      for (const x of rest.data) expect(Number.isFinite(x)).toBe(true);
      const whole = stream(new Decoder(config, { backend }), q, k, v, [n]);
      for (let i = 0; i < 10; i++) for (let c = 0; c < 2; c++) expect(Math.abs(rest.get(0, i, c) - whole.get(0, 20 + i, c))).toBeLessThanOrEqual(1e-5 * scale);
      // and it snapshots and restores as float32
      expect(Decoder.restore(b32.snapshot()).dtype).toBe('float32');
    }
  });

  it('inputs at the edges of the float64 range stay finite and within float32 accuracy of the float64 decoder (l2 scale invariance, deterministic features near 1e160, values jumping to 1e308)', () => {
    const rng = new Rng(77);
    const n = 40;
    const L2: AttentionConfig = { heads: 2, keyDim: 5, valueDim: 3, features: { kind: 'prf', count: 8, seed: 4 }, rpe: { past: { bias: [0, -0.5, -1, -1.5, -2, -3], tail: 'clip' } } };
    const q = randomTensor(rng, [2, n, 5]);
    const k = randomTensor(rng, [2, n, 5]);
    const v = randomTensor(rng, [2, n, 3]);
    const scaled = (t: NdArray, f: number) => ndarray(Float64Array.from(t.data as Float64Array, (x) => x * f), t.shape.slice());
    const steps = new Array(n).fill(1);
    /** max |a - b| / max |b| over the whole output, and whether every entry of a is finite */
    const compare = (a: NdArray<Float64Array>, b: NdArray<Float64Array>) => {
      let e = 0;
      let s = 0;
      for (let i = 0; i < b.data.length; i++) {
        expect(Number.isFinite(a.data[i]!)).toBe(true);
        e = Math.max(e, Math.abs(a.data[i]! - b.data[i]!));
        s = Math.max(s, Math.abs(b.data[i]!));
      }
      return e / s;
    };
    const base = stream(new Decoder(L2, { backend }), q, k, v, steps);
    for (const f of [1e155, 1e300, 1e-160, 1e-300]) {
      const dec = new Decoder(L2, { backend, dtype: 'float32' });
      expect(compare(stream(dec, scaled(q, f), scaled(k, f), v, steps), base), `scale ${f}`).toBeLessThan(1e-5);
      expect(Decoder.restore(dec.snapshot()).position).toBe(n);
    }
    for (const kind of ['relu', 'elu+1'] as const) {
      const cfg: AttentionConfig = { ...L2, features: { kind } };
      const want = stream(new Decoder(cfg, { backend }), scaled(q, 1e160), scaled(k, 1e160), v, [1, 1, 7, 31]);
      const got = stream(new Decoder(cfg, { backend, dtype: 'float32' }), scaled(q, 1e160), scaled(k, 1e160), v, [1, 1, 7, 31]);
      expect(compare(got, want), kind).toBeLessThan(1e-5);
    }
    const big = 1e308 / 4;
    const vMixed = ndarray(Float64Array.from(v.data as Float64Array), v.shape.slice());
    for (let h = 0; h < 2; h++) for (let i = n / 2; i < n; i++) for (let c = 0; c < 3; c++) vMixed.set(h, i, c, v.get(h, i, c) * big);
    const want = stream(new Decoder(L2, { backend }), q, k, vMixed, steps);
    const dec = new Decoder(L2, { backend, dtype: 'float32' });
    expect(compare(stream(dec, q, k, vMixed, steps), want)).toBeLessThan(1e-5);
    expect(Decoder.restore(dec.snapshot()).dtype).toBe('float32');
  });

  it('stateBytes reports float32 rings: half the ring bytes of float64, the far field unchanged', () => {
    const config: AttentionConfig = { heads: 3, keyDim: 5, valueDim: 4, features: { kind: 'prf', count: 6 }, rpe: { past: { bias: new Array(100).fill(0), tail: 'clip' } } };
    const rng = new Rng(3);
    const a = new Decoder(config, { backend });
    const b = new Decoder(config, { backend, dtype: 'float32' });
    const q = randomTensor(rng, [3, 250, 5]), k = randomTensor(rng, [3, 250, 5]), v = randomTensor(rng, [3, 250, 4]);
    stream(a, q, k, v, [1, 1, 200, 1]);
    stream(b, q, k, v, [1, 1, 200, 1]);
    const ring = 3 * 100 * (6 + 4);
    const far = 3 * (2 * 6 * 5 * 8 + 16);
    expect(a.stateBytes).toBe(8 + ring * 8 + far);
    expect(b.stateBytes).toBe(8 + ring * 4 + far);
  });

  it('replaceState refuses a state of the other dtype; restore options may convert it', () => {
    const config: AttentionConfig = { heads: 1, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 1 }, rpe: { past: { bias: [0, -1, -2] } } };
    const rng = new Rng(4);
    const q = randomTensor(rng, [1, 20, 3]), k = randomTensor(rng, [1, 20, 3]), v = randomTensor(rng, [1, 20, 2]);
    const a32 = new Decoder(config, { backend, dtype: 'float32' });
    const a64 = new Decoder(config, { backend });
    stream(a32, rows(q, 0, 10), rows(k, 0, 10), rows(v, 0, 10), [1, 4, 5]);
    stream(a64, rows(q, 0, 10), rows(k, 0, 10), rows(v, 0, 10), [1, 4, 5]);
    expect(() => a64.replaceState(a32.exportState())).toThrow(StateError);
    expect(() => a64.replaceState(a32.exportState())).toThrow(/dtype 'float64', got .*dtype "float32"/);
    expect(() => a32.replaceState(a64.exportState())).toThrow(StateError);
    // a float32 snapshot restored as float64 (and back): converted, no longer bit-identical, still within the bar
    const up = Decoder.restore(a32.snapshot(), { dtype: 'float64' });
    const down = Decoder.restore(a64.snapshot(), { dtype: 'float32' });
    expect([up.dtype, down.dtype]).toEqual(['float64', 'float32']);
    const tail = [rows(q, 10, 20), rows(k, 10, 20), rows(v, 10, 20)] as const;
    const zUp = stream(up, ...tail, [1, 9]);
    const zDown = stream(down, ...tail, [1, 9]);
    const full = stream(new Decoder(config, { backend }), q, k, v, [10, 10]);
    for (let i = 0; i < 10 * 2; i++) {
      expect(Math.abs(zUp.data[i]! - full.data[20 + i]!)).toBeLessThan(1e-5);
      expect(Math.abs(zDown.data[i]! - full.data[20 + i]!)).toBeLessThan(1e-5);
    }
  });
});

describe("Decoder dtype: options and snapshots", () => {
  const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 1 }, rpe: { past: { bias: [0, -1, -2], tail: 'clip' } } };

  it('a bad dtype is a ConfigError saying what was expected and what arrived (constructor and restore)', () => {
    for (const bad of ['float16', 'f32', 32, {}]) {
      expect(() => new Decoder(config, { dtype: bad as never })).toThrow(ConfigError);
    }
    expect(() => new Decoder(config, { dtype: 'float16' as never })).toThrow(`options.dtype must be 'float64' or 'float32', got "float16"`);
    const snap = new Decoder(config).snapshot();
    expect(() => Decoder.restore(snap, { dtype: 'half' as never })).toThrow(ConfigError);
    expect(() => Decoder.restore(snap, { dtype: 'half' as never })).toThrow(/options\.dtype must be 'float64' or 'float32', got "half"/);
    expect(new Decoder(config).dtype).toBe('float64');
  });

  it('float64 snapshots carry no dtype (byte for byte what they were) and restore as float64; float32 ones say so', () => {
    const rng = new Rng(8);
    const d64 = new Decoder(config);
    const d32 = new Decoder(config, { dtype: 'float32' });
    for (let i = 0; i < 5; i++) {
      const t = [randomTensor(rng, [2, 3]), randomTensor(rng, [2, 3]), randomTensor(rng, [2, 2])] as const;
      d64.step(...t);
      d32.step(...t);
    }
    const s64 = d64.snapshot();
    const s32 = d32.snapshot();
    const options = (s: Uint8Array) => (new Unpackr({ mapsAsObjects: false, useRecords: false }).unpack(s.subarray(SNAPSHOT_HEADER_BYTES)) as Map<string, Map<string, unknown>>).get('options')!;
    expect([...options(s64).keys()]).toEqual(['method', 'backend']);
    expect(options(s32).get('dtype')).toBe('float32');
    expect(inspectSnapshot(s64).dtype).toBe('float64');
    expect(Decoder.restore(s64).dtype).toBe('float64');
    expect(d64.exportState().dtype).toBeUndefined();
    // the rings take 4 bytes per value: the float32 snapshot is smaller by the ring bytes saved
    const ringValues = 2 * 3 * (4 + 2);
    expect(s64.length - s32.length).toBe(ringValues * 4 - (options(s32).size === 3 ? '\xa5dtype\xa7float32'.length : 0));
  });

  /** The snapshot with its payload edited (msgpack maps), re-framed with a valid checksum. */
  function edited(snap: Uint8Array, edit: (root: Map<string, unknown>) => void): Uint8Array {
    const root = new Unpackr({ mapsAsObjects: false, useRecords: false }).unpack(snap.subarray(SNAPSHOT_HEADER_BYTES)) as Map<string, unknown>;
    edit(root);
    return frameSnapshot(new Packr({ useRecords: false, variableMapSize: true, useFloat32: 0 }).pack(root));
  }

  it('hostile or mismatched dtype fields are a SnapshotError (inconsistent) naming the field', () => {
    const rng = new Rng(9);
    const d32 = new Decoder(config, { dtype: 'float32' });
    const d64 = new Decoder(config);
    for (let i = 0; i < 4; i++) {
      const t = [randomTensor(rng, [2, 3]), randomTensor(rng, [2, 3]), randomTensor(rng, [2, 2])] as const;
      d32.step(...t);
      d64.step(...t);
    }
    const s32 = d32.snapshot();
    const s64 = d64.snapshot();
    const opts = (r: Map<string, unknown>) => r.get('options') as Map<string, unknown>;
    const heads = (r: Map<string, unknown>) => (r.get('state') as Map<string, unknown>).get('heads') as Map<string, unknown>[];
    // the unedited round trip is accepted (the editor itself is sound)
    expect(decodeSnapshot(edited(s32, () => {})).dtype).toBe('float32');
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['unknown dtype', edited(s32, (r) => opts(r).set('dtype', 'float16')), /payload\.options\.dtype must be 'float64' or 'float32'.*got "float16"/],
      ['numeric dtype', edited(s32, (r) => opts(r).set('dtype', 32)), /payload\.options\.dtype .*got 32/],
      ['nil dtype', edited(s32, (r) => opts(r).set('dtype', null)), /payload\.options\.dtype .*got null/],
      // float32 declared, float64-sized rings (the float64 snapshot with the flag added), and the reverse
      ['float32 flag on float64 rings', edited(s64, (r) => opts(r).set('dtype', 'float32')), /ringK must hold 12 float32 values \(48 bytes\), got 96 bytes/],
      ['float32 rings without the flag', edited(s32, (r) => opts(r).delete('dtype')), /ringK must hold 12 float64 values \(96 bytes\), got 48 bytes/],
      ['an extra options key', edited(s32, (r) => opts(r).set('precision', 'float32')), /payload\.options must have exactly the keys/],
      // float32 ring values outside what a float32 decoder keeps (values within 2^100)
      [
        'float32 value beyond 2^100',
        edited(s32, (r) => {
          const ringV = heads(r)[0]!.get('ringV') as Uint8Array;
          const f = new Float32Array(ringV.slice().buffer);
          f[0] = 2 ** 101;
          heads(r)[0]!.set('ringV', new Uint8Array(f.buffer));
        }),
        /ringV\[0\] must be a finite number in \[-1\.2676506002282294e\+30, 1\.2676506002282294e\+30\]/,
      ],
    ];
    for (const [what, bytes, message] of cases) {
      const e = snapshotRefusal(bytes);
      expect(e.code, what).toBe('inconsistent');
      expect(e.message, what).toMatch(message);
    }
  });
});
