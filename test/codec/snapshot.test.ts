// Snapshots: bit-identical continuation (in process and in a separate Node process), hostile bytes refused
// with a SnapshotError, atomic save, and the format-version-1 fixture.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Decoder, SnapshotError, StateError } from '../../src/index.js';
import { MAX_POSITION } from '../../src/core/limits.js';
import type { AttentionConfig, FeatureSpec, Tail } from '../../src/engine/config.js';
import type { DecoderState } from '../../src/engine/decoder.js';
import {
  decodeSnapshot,
  encodeSnapshot,
  encodeState,
  frameSnapshot,
  inspectSnapshot,
  loadSnapshot,
  saveSnapshot,
  tempPathFor,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  LIBRARY_VERSION,
} from '../../src/codec/index.js';
import { Rng } from '../../src/math/rng.js';
import { makeCalls, runCalls, toHex } from './streams.js';
import { snapshotRefusal } from './refusal.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

function sameBits(a: Float64Array[], b: Float64Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let c = 0; c < a.length; c++) {
    const x = a[c]!;
    const y = b[c]!;
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

const tailArb: fc.Arbitrary<Tail> = fc.oneof(fc.constant<Tail>('clip'), fc.constant<Tail>('zero'), fc.double({ min: 0, max: 1, noNaN: true }).map((r) => ({ decay: r })));

const featuresArb: fc.Arbitrary<FeatureSpec> = fc.oneof(
  fc.record({ kind: fc.constant('prf' as const), count: fc.integer({ min: 1, max: 6 }), seed: fc.integer({ min: 0, max: 1000 }), normalize: fc.constantFrom('l2' as const, 'scale' as const, 'none' as const) }),
  fc.constant<FeatureSpec>({ kind: 'elu+1' }),
  fc.constant<FeatureSpec>({ kind: 'relu' }),
);

const caseArb = fc.record({
  heads: fc.integer({ min: 1, max: 2 }),
  d: fc.integer({ min: 1, max: 4 }),
  dv: fc.integer({ min: 1, max: 3 }),
  K: fc.integer({ min: 1, max: 40 }),
  tails: fc.array(tailArb, { minLength: 2, maxLength: 2 }),
  perHead: fc.boolean(),
  features: featuresArb,
  sizes: fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 30 })), { minLength: 1, maxLength: 14 }),
  cut: fc.nat(),
  seed: fc.integer({ min: 0, max: 1 << 30 }),
  scale: fc.constantFrom(0.5, 1, 4),
  method: fc.constantFrom('auto' as const, 'fft' as const, 'direct' as const),
});

function configOf(c: { heads: number; d: number; dv: number; K: number; tails: Tail[]; perHead: boolean; features: FeatureSpec; seed: number }): AttentionConfig {
  const rng = new Rng(c.seed ^ 0x5eed);
  const table = (tail: Tail) => ({ bias: Array.from({ length: c.K }, () => rng.nextGaussian()), tail });
  return {
    heads: c.heads,
    keyDim: c.d,
    valueDim: c.dv,
    features: c.features,
    rpe: c.perHead ? Array.from({ length: c.heads }, (_, h) => ({ past: table(c.tails[h]!) })) : { past: table(c.tails[0]!) },
  };
}

describe('snapshot: bit-identical continuation', () => {
  it('random configs, streams and snapshot points: restored decoder continues bit for bit, next snapshot byte-identical', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const config = configOf(c);
        const calls = makeCalls(c.seed, c.heads, c.d, c.dv, c.sizes, c.scale);
        const cut = c.cut % (calls.length + 1);
        const a = new Decoder(config, { method: c.method });
        runCalls(a, calls.slice(0, cut));
        const snap = a.snapshot();
        const b = Decoder.restore(snap, { method: c.method });
        expect(b.position).toBe(a.position);
        expect(sameBytes(b.snapshot(), snap)).toBe(true);
        const outA = runCalls(a, calls.slice(cut));
        const outB = runCalls(b, calls.slice(cut));
        expect(sameBits(outA, outB)).toBe(true);
        expect(sameBytes(a.snapshot(), b.snapshot())).toBe(true);
      }),
      { numRuns: 30, seed: 4242 },
    );
  });

  it('restores in a separate Node process from a file, continuing to the same bits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tz-snap-'));
    try {
      const config: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 5, seed: 3 }, rpe: { past: { bias: [0, -0.5, -1, -1.5, -2, -2.5], tail: { decay: 0.25 } } } };
      const a = new Decoder(config);
      runCalls(a, makeCalls(1, 2, 3, 2, [4, 1, 9, 1, 1]));
      const file = join(dir, 'session.snap');
      saveSnapshot(file, a);
      const sizes = [1, 5, 1, 1, 11, 2];
      const want = toHex(runCalls(a, makeCalls(2, 2, 3, 2, sizes)));
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'restore-child.ts'), file, '2', '2', '3', '2', sizes.join(',')], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect(child.stderr).not.toMatch(/Error/);
      expect(child.status).toBe(0);
      const got = JSON.parse(child.stdout.trim().split('\n').pop()!) as { outputs: string[]; snapshot: string };
      expect(got.outputs).toEqual(want);
      expect(got.snapshot).toBe(Buffer.from(a.snapshot()).toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('inspectSnapshot reports header, config, position and sizes without building a decoder', () => {
    const a = new Decoder({ heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 9 }, rpe: { past: { bias: [0, -1, -2, -3, -4] } } });
    runCalls(a, makeCalls(5, 2, 3, 2, [7]));
    const bytes = a.snapshot();
    const info = inspectSnapshot(bytes);
    expect(info.formatVersion).toBe(SNAPSHOT_FORMAT_VERSION);
    expect(info.totalBytes).toBe(bytes.length);
    expect(info.checksum.valid).toBe(true);
    expect(info.config).toMatchObject({ heads: 2, keyDim: 3, valueDim: 2, featureKind: 'prf', featureDim: 4, seed: 9, windows: [5, 5] });
    expect(info.position).toBe(7);
    expect(info.method).toBe('auto');
    expect(info.stateArrayBytes).toBe(2 * (5 * (4 + 2) + 2 * 4 * 3) * 8);
    expect(info.error).toBeNull();
    const bad = bytes.slice();
    bad[bad.length - 3] = bad[bad.length - 3]! ^ 0x10;
    const badInfo = inspectSnapshot(bad);
    expect(badInfo.checksum.valid).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------------

/** header + payload with a correct CRC (to reach the structural validator with hostile payloads). */

function cloneState(s: DecoderState): DecoderState {
  return {
    ...s,
    heads: s.heads.map((h) => ({ ...h, ringK: h.ringK.slice(), ringV: h.ringV.slice(), farSum: h.farSum.slice(), farComp: h.farComp.slice() })),
  };
}

const SMALL: AttentionConfig = { heads: 1, keyDim: 2, valueDim: 2, features: { kind: 'prf', count: 2, seed: 1 }, rpe: { past: { bias: [0, -1, -2] } } };
const OTHER: AttentionConfig = { heads: 2, keyDim: 3, valueDim: 3, features: { kind: 'relu' }, rpe: { past: { bias: [0, -1, -2, -3, -4, -5, -6] } } };

describe('snapshot: hostile bytes are refused with a SnapshotError, quickly', () => {
  const small = new Decoder(SMALL);
  runCalls(small, makeCalls(7, 1, 2, 2, [2, 1, 3]));
  const snap = small.snapshot();
  const other = new Decoder(OTHER);
  runCalls(other, makeCalls(8, 2, 3, 3, [9, 1]));
  const otherSnap = other.snapshot();

  it('the small snapshot itself restores (sanity)', () => {
    expect(decodeSnapshot(snap).position).toBe(6);
    expect(snap.length).toBeLessThan(600);
  });

  it('every truncation, 2000 bit flips, splices, random bytes, oversized lengths, doctored states', () => {
    const t0 = performance.now();
    let count = 0;
    const codes = new Map<string, number>();
    const expectRefused = (bytes: Uint8Array, code?: string) => {
      const e = snapshotRefusal(bytes);
      if (code !== undefined) expect(e.code, e.message).toBe(code);
      expect(e.message.length).toBeGreaterThan(10);
      codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      count++;
    };
    // every truncation
    for (let n = 0; n < snap.length; n++) expectRefused(snap.subarray(0, n), n === 0 || n >= SNAPSHOT_MAGIC.length ? 'truncated' : undefined);
    // 2000 random single-bit flips (all caught: by the magic, version, length or CRC-32)
    const rng = new Rng(99);
    for (let i = 0; i < 2000; i++) {
      const b = snap.slice();
      const bit = rng.nextUint32() % (b.length * 8);
      b[bit >> 3]! ^= 1 << (bit & 7);
      expectRefused(b);
    }
    // 300 multi-byte corruptions of the payload with a re-computed CRC: refused or (harmless value change) accepted,
    // but never another kind of error
    let accepted = 0;
    for (let i = 0; i < 300; i++) {
      const payload = snap.slice(SNAPSHOT_HEADER_BYTES);
      const hits = 1 + (rng.nextUint32() % 4);
      for (let j = 0; j < hits; j++) payload[rng.nextUint32() % payload.length] = rng.nextUint32() & 0xff;
      try {
        decodeSnapshot(frameSnapshot(payload));
        accepted++;
      } catch (e) {
        expect(e).toBeInstanceOf(SnapshotError);
        count++;
      }
    }
    expect(accepted).toBeLessThan(300);
    // splices of two snapshots
    for (let i = 0; i < 200; i++) {
      const cutA = rng.nextUint32() % snap.length;
      const cutB = rng.nextUint32() % otherSnap.length;
      const b = new Uint8Array(cutA + otherSnap.length - cutB);
      b.set(snap.subarray(0, cutA), 0);
      b.set(otherSnap.subarray(cutB), cutA);
      expectRefused(b);
    }
    // random bytes, bare and behind a valid header with a valid CRC
    for (let i = 0; i < 300; i++) {
      const len = rng.nextUint32() % 400;
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = rng.nextUint32() & 0xff;
      expectRefused(b);
      expectRefused(frameSnapshot(b));
    }
    // oversized declared lengths: in the header, and inside msgpack (array32, map32, bin32, str32 of 4 GiB)
    for (const declared of [snap.length, snap.length - SNAPSHOT_HEADER_BYTES + 1, 0x7fffffff, 0xffffffff]) {
      const b = snap.slice();
      new DataView(b.buffer).setUint32(10, declared, true);
      expectRefused(b, declared > snap.length - SNAPSHOT_HEADER_BYTES ? 'truncated' : undefined);
    }
    for (const prefix of [[0xdd], [0xdf], [0xc6], [0xdb], [0xc9], [0x81, 0xa5, 0x73, 0x74, 0x61, 0x74, 0x65, 0xdd], [0x93, 0xc6]]) {
      expectRefused(frameSnapshot(Uint8Array.from([...prefix, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])));
      expectRefused(frameSnapshot(Uint8Array.from([...prefix, 0x7f, 0xff, 0xff, 0xf0])));
    }
    // version and magic
    const v3 = snap.slice();
    new DataView(v3.buffer).setUint16(8, 3, true);
    expectRefused(v3, 'unsupported-version');
    expectRefused(new TextEncoder().encode('{"not": "a snapshot"}'), 'not-a-snapshot');
    // prototype-polluting keys: {"__proto__": {"polluted": true}} and {"constructor": ...}
    const proto = Uint8Array.from([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x81, 0xa8, ...new TextEncoder().encode('polluted'), 0xc3]);
    expectRefused(frameSnapshot(proto), 'inconsistent');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();

    // a valid snapshot of another config whose state was doctored: the state of OTHER under SMALL's config
    const doctor = (edit: (s: DecoderState) => void): Uint8Array => {
      const s = cloneState(small.exportState());
      edit(s);
      return encodeState(small.config, s);
    };
    expectRefused(encodeState(small.config, cloneState(other.exportState())), 'inconsistent');
    expectRefused(encodeState(other.config, cloneState(small.exportState())), 'inconsistent');
    const edits: ((s: DecoderState) => void)[] = [
      (s) => (s.heads[0]!.ringK = new Float64Array(s.heads[0]!.ringK.length + 2)),
      (s) => (s.heads[0]!.ringV = s.heads[0]!.ringV.subarray(2)),
      (s) => (s.position = 1),
      (s) => (s.position = 0),
      (s) => (s.position = 2 ** 53 - 1),
      (s) => (s.heads[0]!.keyExp = 10_000),
      (s) => (s.heads[0]!.keyExp = -1e308),
      (s) => (s.heads[0]!.ringK[0] = 1.5),
      (s) => (s.heads[0]!.valueExp = 5000),
      (s) => (s.position = -1),
      (s) => (s.position = 1.5),
      (s) => (s.heads[0]!.keyExp = 1.5),
      (s) => (s.heads[0]!.keyExp = NaN),
      (s) => (s.heads[0]!.valueExp = -1),
      (s) => (s.heads[0]!.valueExp = 0.5),
      (s) => (s.heads[0]!.ringV[0] = NaN),
      (s) => (s.heads[0]!.ringK[1] = -1),
      (s) => (s.heads[0]!.ringK[1] = Infinity),
      (s) => (s.heads[0]!.farSum[0] = Infinity),
      (s) => (s.heads[0]!.farComp = new Float64Array(3)),
      (s) => (s.heads[0]!.ringK = new Float64Array(1000)),
      (s) => s.heads.push(s.heads[0]!),
      (s) => s.heads.pop(),
      (s) => ((s as { method: string }).method = 'fastest'),
      (s) => ((s as { backend: string }).backend = 'gpu'),
    ];
    // a nonzero far field at a position where no key has left the near field yet (position <= K)
    const young = new Decoder(SMALL);
    runCalls(young, makeCalls(3, 1, 2, 2, [1, 1]));
    const youngState = cloneState(young.exportState());
    youngState.heads[0]!.farSum[0] = 1e-3;
    expectRefused(encodeState(young.config, youngState), 'inconsistent');
    edits.forEach((edit, i) => { try { expectRefused(doctor(edit), "inconsistent"); } catch (e) { throw new Error(`edit ${i}: ${String(e)}`); } });

    const elapsed = performance.now() - t0;
    expect(count).toBeGreaterThan(3000);
    expect(codes.get('truncated')).toBeGreaterThan(0);
    expect(codes.get('corrupt')).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(8000);
    console.log(`fuzz: ${count} refusals (${[...codes].map(([k, v]) => `${k} ${v}`).join(', ')}), ${accepted} harmless value edits accepted, ${elapsed.toFixed(0)} ms`);
  });

  it('a config whose derived tables exceed the restore budget is refused before the Decoder is built', () => {
    const e = (() => {
      try {
        decodeSnapshot(snap, { maxDerivedBytes: 16 });
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(SnapshotError);
    expect((e as SnapshotError).code).toBe('inconsistent');
    expect((e as SnapshotError).message).toMatch(/restore budget/);
  });

  it('non-Uint8Array input is refused', () => {
    expect(() => decodeSnapshot('TZATTN' as unknown as Uint8Array)).toThrow(SnapshotError);
    expect(() => Decoder.restore(null as unknown as Uint8Array)).toThrow(SnapshotError);
  });
});

describe('snapshot files', () => {
  it('a write interrupted between temp file and rename leaves the old file loadable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tz-atomic-'));
    try {
      const file = join(dir, 'state.snap');
      const a = new Decoder(SMALL);
      runCalls(a, makeCalls(3, 1, 2, 2, [4]));
      saveSnapshot(file, a);
      const old = a.snapshot();
      // the crash: a later save got as far as a partial temp file in the same folder, never renamed
      runCalls(a, makeCalls(4, 1, 2, 2, [1, 1]));
      const next = a.snapshot();
      writeFileSync(tempPathFor(file), next.subarray(0, next.length >> 1));
      const back = loadSnapshot(file);
      expect(back.position).toBe(4);
      expect(sameBytes(back.snapshot(), old)).toBe(true);
      // a completed save replaces it atomically and leaves no temp file of its own
      saveSnapshot(file, a);
      expect(sameBytes(loadSnapshot(file).snapshot(), next)).toBe(true);
      expect(readdirSync(dir).filter((n) => n.endsWith('.tmp')).length).toBe(1); // only the crashed one
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('format version 1 fixture', () => {
  it('test/fixtures/snapshot-v1.bin still loads and continues to the pinned outputs', () => {
    const bytes = new Uint8Array(readFileSync(join(root, 'test/fixtures/snapshot-v1.bin')));
    const pinned = JSON.parse(readFileSync(join(root, 'test/fixtures/snapshot-v1.json'), 'utf8')) as {
      heads: number; d: number; dv: number; after: number[]; afterSeed: number; position: number; outputs: string[]; nextSnapshotHex: string;
    };
    const dec = Decoder.restore(bytes);
    expect(dec.position).toBe(pinned.position);
    // re-saved as version 2, restored again: the continuation is the same, bit for bit
    const resaved = Decoder.restore(dec.snapshot());
    const calls = makeCalls(pinned.afterSeed, pinned.heads, pinned.d, pinned.dv, pinned.after);
    expect(toHex(runCalls(dec, calls))).toEqual(pinned.outputs);
    expect(toHex(runCalls(resaved, calls))).toEqual(pinned.outputs);
    // and the state it reaches is the state the version 1 writer reached (same bytes once both are version 2)
    const v1Next = Decoder.restore(new Uint8Array(Buffer.from(pinned.nextSnapshotHex, 'hex')));
    expect(sameBytes(v1Next.snapshot(), dec.snapshot())).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// Crafted payloads: structurally valid, correct CRC, one or more state fields set to adversarial values.
// Each is either refused with a SnapshotError, or accepted with a state the engine could have produced:
// it continues with finite outputs inside the range of the values it has seen, and its own snapshot
// restores to the same bytes.

describe('snapshot: crafted states with correct checksums are refused or harmless', () => {
  const CFGS: AttentionConfig[] = [
    { heads: 2, keyDim: 3, valueDim: 2, features: { kind: 'prf', count: 4, seed: 3 }, rpe: [{ past: { bias: [0, -1, -2, -3] } }, { past: { bias: [0, -0.5], tail: { decay: 0.3 } } }] },
    { heads: 1, keyDim: 2, valueDim: 3, features: { kind: 'relu' }, rpe: { past: { bias: [0, -1, -2], tail: 'zero' } } },
    { heads: 1, keyDim: 4, valueDim: 2, features: { kind: 'prf', count: 3, seed: 1, normalize: 'none' }, rpe: { past: { bias: [1, 0], tail: 'clip' } } },
  ];
  const weird = [0, -0, 1, -1, 0.5, 2, 1e-300, 5e-324, 1e300, -1e300, 2 ** 900, 2 ** 1000, Number.MAX_VALUE, NaN, Infinity, -Infinity, -1e308, 1e308, 2 ** 53 - 1, 2 ** 50, 7, -7, 1.5, 1024, -1075, 5000];

  it('5000 crafted states: every accepted one continues finitely, inside the value range, and round-trips', () => {
    const rng = new Rng(2026);
    let accepted = 0;
    let refused = 0;
    for (let trial = 0; trial < 5000; trial++) {
      const cfgSpec = CFGS[trial % CFGS.length]!;
      const base = new Decoder(cfgSpec, { backend: 'js' });
      const len = [0, 1, 2, 3, 5, 9][rng.nextUint32() % 6]!;
      if (len > 0) runCalls(base, makeCalls(trial, cfgSpec.heads, cfgSpec.keyDim, cfgSpec.valueDim, [len]));
      const s = cloneState(base.exportState());
      const pick = () => weird[rng.nextUint32() % weird.length]!;
      const edits = 1 + (rng.nextUint32() % 3);
      for (let e = 0; e < edits; e++) {
        const h = s.heads[rng.nextUint32() % s.heads.length]!;
        const arrays = [h.ringK, h.ringV, h.farSum, h.farComp].filter((a) => a.length > 0);
        switch (rng.nextUint32() % 6) {
          case 0: s.position = pick(); break;
          case 1: h.keyExp = pick(); break;
          case 2: h.valueExp = pick(); break;
          default: {
            const a = arrays[rng.nextUint32() % arrays.length];
            if (a !== undefined) a[rng.nextUint32() % a.length] = pick();
          }
        }
      }
      const bytes = encodeState(base.config, s);
      let dec: Decoder;
      try {
        dec = Decoder.restore(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(SnapshotError);
        refused++;
        continue;
      }
      accepted++;
      // accepted: it must behave like a reachable state
      let vMax = 0;
      for (const hs of s.heads) for (const x of hs.ringV) vMax = Math.max(vMax, Math.abs(x) * 2 ** hs.valueExp);
      // the far field holds per-feature sums F[r, col] = sum phi_r v and F[r, dv] = sum phi_r: averages of values
      const w1 = cfgSpec.valueDim + 1;
      for (const hs of s.heads) {
        for (let r = 0; r < hs.farSum.length / w1; r++) {
          const den = hs.farSum[r * w1 + w1 - 1]!;
          // (the compensation is part of the sum: the next absorb adds it back)
          for (let col = 0; col < w1 - 1; col++) if (den > 0) vMax = Math.max(vMax, ((Math.abs(hs.farSum[r * w1 + col]!) + Math.abs(hs.farComp[r * w1 + col]!)) / den) * 2 ** hs.valueExp);
        }
      }
      const calls = makeCalls(trial + 1, cfgSpec.heads, cfgSpec.keyDim, cfgSpec.valueDim, [1, 3]);
      if (dec.position + 4 > MAX_POSITION) {
        // a decoder at the end of the position range refuses more tokens (typed, state unchanged)
        expect(() => runCalls(dec, calls)).toThrow(StateError);
        continue;
      }
      const outs = runCalls(dec, calls);
      const newV = calls.flatMap((c) => Array.from(c.v.data as ArrayLike<number>));
      const bound = Math.max(vMax, ...newV.map(Math.abs)) * (1 + 1e-9) + 1e-300;
      for (const o of outs) for (const x of o) {
        expect(Number.isFinite(x)).toBe(true);
        expect(Math.abs(x)).toBeLessThanOrEqual(bound);
      }
      expect(sameBytes(Decoder.restore(dec.snapshot()).snapshot(), dec.snapshot())).toBe(true);
    }
    // both outcomes occur (the fuzzer reaches the acceptance path too)
    expect(refused).toBeGreaterThan(1000);
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('library version', () => {
  it('snapshots record the version package.json declares', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(LIBRARY_VERSION).toBe(pkg.version);
  });
});
