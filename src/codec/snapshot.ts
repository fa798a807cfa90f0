// Decoder snapshots: a fixed 18-byte header (magic, format version, payload length, CRC-32 of the payload)
// followed by a msgpackr payload holding the library version, the complete config (W and RPE tables as
// binary float64), the options the continuation depends on (method, backend, and dtype for float32 decoders) and
// the decoder state (every typed array as raw little-endian float64 bytes; a float32 decoder's rings as float32).
// See FORMAT.md (versions 1 and 2; this writes 2).
// Restore checks the bytes here (header, checksum, structure, types, sizes) and then goes through the
// engine's own checks: resolveConfig for the config, checkDecoderState for the state's invariants.
import { Packr, Unpackr } from 'msgpackr';
import { DecoderCore, type DecoderOptions, type DecoderState, type HeadState } from '../engine/decoder.js';
import { resolveConfig, type AttentionConfig, type FeatureSpec, type ResolvedConfig, type RpeSide, type RpeSpec, type Tail } from '../engine/config.js';
import { checkDecoderState, NO_KEY } from '../engine/state.js';
import { checkMethodOption } from '../engine/nearfield.js';
import { checkDtypeOption, type DType } from '../engine/dtype.js';
import { exp2, powerOfTwoAbove } from '../math/features.js';
import { checkArenaOption, checkBackendOption } from '../backend/index.js';
import { ConfigError, SnapshotError, StateError, describe } from '../core/errors.js';
import { HOST_LITTLE_ENDIAN } from '../core/bytes.js';
import { MAX_DERIVED_BYTES, MAX_TABLE } from '../core/limits.js';

/** "\x89TZATTN\n": a non-ASCII first byte (not text), the name, a newline (catches line-ending mangling). */
export const SNAPSHOT_MAGIC = Uint8Array.of(0x89, 0x54, 0x5a, 0x41, 0x54, 0x54, 0x4e, 0x0a);
export const SNAPSHOT_FORMAT_VERSION = 2;
/** Versions restore reads (1: one shared ring, no options; 2: per-head rings, method and backend). */
export const SNAPSHOT_READABLE_VERSIONS: readonly number[] = [1, 2];
/** magic (8) + format version (uint16 LE) + payload length (uint32 LE) + CRC-32 of the payload (uint32 LE) */
export const SNAPSHOT_HEADER_BYTES = 18;
/** Version of the library writing snapshots (kept in step with package.json). */
export const LIBRARY_VERSION = '0.1.0';
/** Restore's default budget for derived kernel tables: what resolveConfig allows any config (so every valid decoder's snapshot restores). */
export const DEFAULT_MAX_DERIVED_BYTES = MAX_DERIVED_BYTES;

// ---------------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), slicing-by-4.

const CRC_TABLES: Uint32Array[] = (() => {
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  const tables = [t0];
  for (let s = 1; s < 4; s++) {
    const prev = tables[s - 1]!;
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) t[n] = (t0[prev[n]! & 0xff]! ^ (prev[n]! >>> 8)) >>> 0;
    tables.push(t);
  }
  return tables;
})();

/** CRC-32 of bytes (same value as zlib's crc32). */
export function crc32(bytes: Uint8Array): number {
  const [t0, t1, t2, t3] = CRC_TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = 0xffffffff;
  const n = bytes.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c = t3[c & 0xff]! ^ t2[(c >>> 8) & 0xff]! ^ t1[(c >>> 16) & 0xff]! ^ t0[c >>> 24]!;
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// float64 <-> little-endian bytes


function f64Bytes(a: Float64Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat64(i * 8, a[i]!, true);
  return out;
}

/** float32 rings (dtype 'float32'): 4 little-endian bytes per value. */
function f32Bytes(a: Float32Array): Uint8Array {
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) view.setFloat32(i * 4, a[i]!, true);
  return out;
}

function ringBytes(a: Float64Array | Float32Array): Uint8Array {
  return a instanceof Float32Array ? f32Bytes(a) : f64Bytes(a);
}

/** bytes.length must be a multiple of 4 (checked by the caller). */
function bytesF32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length / 4);
  if (HOST_LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/** bytes.length must be a multiple of 8 (checked by the caller). */
function bytesF64(bytes: Uint8Array): Float64Array {
  const out = new Float64Array(bytes.length / 8);
  if (HOST_LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Encode

// Plain objects are written as msgpack maps in insertion order; no records, no shared structures.
// Maps decode as Map (never as objects: no prototype to pollute); the validator wants Maps everywhere.
// Made on first use: importing this module costs nothing (and has no side effects to keep in a bundle).
let codecs: { packr: Packr; unpackr: Unpackr } | null = null;
function msgpack(): { packr: Packr; unpackr: Unpackr } {
  codecs ??= {
    packr: new Packr({ useRecords: false, variableMapSize: true, useFloat32: 0 }),
    unpackr: new Unpackr({ useRecords: false, mapsAsObjects: false, moreTypes: false }),
  };
  return codecs;
}

function encodeTail(tail: Tail | undefined): unknown {
  if (tail === undefined || tail === 'clip') return 'clip';
  if (tail === 'zero') return 'zero';
  return { decay: tail.decay };
}

function encodeSide(side: RpeSide): unknown {
  return { bias: f64Bytes(Float64Array.from(side.bias)), tail: encodeTail(side.tail) };
}

function encodeRpe(rpe: RpeSpec): unknown {
  return { past: encodeSide(rpe.past), future: rpe.future === undefined ? null : encodeSide(rpe.future) };
}

function encodeConfig(cfg: ResolvedConfig): unknown {
  const spec = cfg.spec;
  const f = cfg.features;
  const features =
    f.kind === 'prf'
      ? { kind: 'prf', count: f.count, normalize: f.normalize, orthogonal: f.orthogonal, seed: f.seed, projection: f64Bytes(f.projection) }
      : { kind: f.kind };
  const shared = !Array.isArray(spec.rpe);
  const rpe = Array.isArray(spec.rpe) ? spec.rpe.map(encodeRpe) : [encodeRpe(spec.rpe)];
  return { heads: cfg.heads, keyDim: cfg.keyDim, valueDim: cfg.valueDim, causal: cfg.causal, features, sharedRpe: shared, rpe };
}

function encodeHead(hs: HeadState): unknown {
  return { keyExp: hs.keyExp, valueExp: hs.valueExp, ringK: ringBytes(hs.ringK), ringV: ringBytes(hs.ringV), farSum: f64Bytes(hs.farSum), farComp: f64Bytes(hs.farComp) };
}

/** The snapshot bytes (format version 2) of a decoder's config and state (deterministic: equal states give equal bytes). */
export function encodeSnapshot(decoder: DecoderCore): Uint8Array {
  return encodeState(decoder.config, decoder.exportState());
}

/** Snapshot bytes of a config and a state as given (unchecked: restore checks). */
export function encodeState(config: ResolvedConfig, s: DecoderState): Uint8Array {
  const payloadObject = {
    library: LIBRARY_VERSION,
    config: encodeConfig(config),
    // dtype only for float32 (absent = float64): float64 snapshots are byte for byte what they were before it
    options: s.dtype === 'float32' ? { method: s.method, backend: s.backend, dtype: s.dtype } : { method: s.method, backend: s.backend },
    state: { position: s.position, heads: s.heads.map(encodeHead) },
  };
  const payload = msgpack().packr.pack(payloadObject);
  if (payload.length > 0xffffffff) throw new SnapshotError('inconsistent', `state too large for snapshot format version ${SNAPSHOT_FORMAT_VERSION} (${payload.length} payload bytes > 4 GiB, the header's 32-bit length)`);
  return frameSnapshot(payload);
}

/** A snapshot's bytes around a msgpack payload (< 4 GiB): magic, format version, payload length, CRC-32, payload. */
export function frameSnapshot(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(SNAPSHOT_HEADER_BYTES + payload.length);
  out.set(SNAPSHOT_MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint16(8, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint32(10, payload.length, true);
  view.setUint32(14, crc32(payload), true);
  out.set(payload, SNAPSHOT_HEADER_BYTES);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Header

export interface SnapshotHeader {
  formatVersion: number;
  payloadBytes: number;
  totalBytes: number;
  storedChecksum: number;
}

function fail(code: 'truncated' | 'corrupt' | 'unsupported-version' | 'not-a-snapshot' | 'inconsistent', message: string): never {
  throw new SnapshotError(code, message);
}

/** Magic, version and length; throws SnapshotError. Does not check the checksum. */
export function readHeader(bytes: Uint8Array): SnapshotHeader {
  if (!(bytes instanceof Uint8Array)) fail('not-a-snapshot', `expected a Uint8Array, got ${describe(bytes)}`);
  const n = bytes.length;
  const magicLen = Math.min(n, SNAPSHOT_MAGIC.length);
  for (let i = 0; i < magicLen; i++) {
    if (bytes[i] !== SNAPSHOT_MAGIC[i]) {
      fail('not-a-snapshot', `bytes do not start with the snapshot magic "\\x89TZATTN\\n" (byte ${i} is 0x${bytes[i]!.toString(16).padStart(2, '0')}, expected 0x${SNAPSHOT_MAGIC[i]!.toString(16).padStart(2, '0')})`);
    }
  }
  if (n < SNAPSHOT_HEADER_BYTES) fail('truncated', `a snapshot header is ${SNAPSHOT_HEADER_BYTES} bytes, got ${n}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const formatVersion = view.getUint16(8, true);
  if (!SNAPSHOT_READABLE_VERSIONS.includes(formatVersion)) {
    fail('unsupported-version', `format version ${formatVersion} is not supported (this library reads versions ${SNAPSHOT_READABLE_VERSIONS.join(' and ')})`);
  }
  const payloadBytes = view.getUint32(10, true);
  const storedChecksum = view.getUint32(14, true);
  const have = n - SNAPSHOT_HEADER_BYTES;
  if (payloadBytes > have) fail('truncated', `header declares a ${payloadBytes}-byte payload, only ${have} bytes follow`);
  if (payloadBytes < have) fail('corrupt', `header declares a ${payloadBytes}-byte payload, but ${have - payloadBytes} unexpected bytes follow it`);
  return { formatVersion, payloadBytes, totalBytes: n, storedChecksum };
}

// ---------------------------------------------------------------------------------------------------
// Structure validation (payload -> plain checked data; nothing allocated from an unchecked size)

type Path = string;

function asMap(v: unknown, path: Path, keys: readonly string[]): Map<unknown, unknown> {
  if (!(v instanceof Map)) fail('inconsistent', `${path} must be a map, got ${describe(v)}`);
  if (v.size !== keys.length) {
    fail('inconsistent', `${path} must have exactly the keys [${keys.join(', ')}], got ${v.size} keys [${[...v.keys()].slice(0, 8).map((k) => describe(k)).join(', ')}]`);
  }
  for (const k of v.keys()) {
    if (typeof k !== 'string' || !keys.includes(k)) fail('inconsistent', `${path} has an unexpected key ${describe(k)} (expected [${keys.join(', ')}])`);
  }
  return v;
}

function get(m: Map<unknown, unknown>, key: string): unknown {
  return m.get(key);
}

function int(v: unknown, path: Path, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail('inconsistent', `${path} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  return v;
}

function bin(v: unknown, path: Path, floats: number, dtype: DType = 'float64'): Uint8Array {
  const size = dtype === 'float32' ? 4 : 8;
  if (!(v instanceof Uint8Array)) fail('inconsistent', `${path} must be binary ${dtype} data, got ${describe(v)}`);
  if (v.length !== floats * size) fail('inconsistent', `${path} must hold ${floats} ${dtype} values (${floats * size} bytes), got ${v.length} bytes`);
  return v;
}

function binAnyLength(v: unknown, path: Path, maxFloats: number): Uint8Array {
  if (!(v instanceof Uint8Array)) fail('inconsistent', `${path} must be binary float64 data, got ${describe(v)}`);
  if (v.length % 8 !== 0 || v.length === 0 || v.length / 8 > maxFloats) fail('inconsistent', `${path} must hold 1 to ${maxFloats} float64 values, got ${v.length} bytes`);
  return v;
}

function finiteArray(bytes: Uint8Array, path: Path, nonNegative = false): Float64Array {
  const a = bytesF64(bytes);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (!Number.isFinite(x) || (nonNegative && !(x >= 0))) fail('inconsistent', `${path}[${i}] must be a finite${nonNegative ? ' non-negative' : ''} number, got ${describe(x)}`);
  }
  return a;
}

// Structure only: the rules on values (tails, biases, sizes) are resolveConfig's, applied after.
function decodeTail(v: unknown, path: Path): Tail {
  if (v === 'clip' || v === 'zero') return v;
  if (v instanceof Map) return { decay: asMap(v, path, ['decay']).get('decay') as number };
  fail('inconsistent', `${path} must be 'clip', 'zero' or { decay }, got ${describe(v)}`);
}

function decodeSide(v: unknown, path: Path): RpeSide {
  const m = asMap(v, path, ['bias', 'tail']);
  const bias = bytesF64(binAnyLength(get(m, 'bias'), `${path}.bias`, MAX_TABLE));
  return { bias, tail: decodeTail(get(m, 'tail'), `${path}.tail`) };
}

function decodeRpe(v: unknown, path: Path): RpeSpec {
  const m = asMap(v, path, ['past', 'future']);
  const past = decodeSide(get(m, 'past'), `${path}.past`);
  const fut = get(m, 'future');
  return fut === null ? { past } : { past, future: decodeSide(fut, `${path}.future`) };
}

interface DecodedConfig {
  spec: AttentionConfig;
  seed: number | null;
}

/** The stored config as a plain spec (structure and sizes checked here; values by resolveConfig after). */
function decodeConfig(v: unknown, maxDerivedBytes: number): DecodedConfig {
  const c = asMap(v, 'config', ['heads', 'keyDim', 'valueDim', 'causal', 'features', 'sharedRpe', 'rpe']);
  const heads = int(get(c, 'heads'), 'config.heads', 1, 4096);
  const keyDim = int(get(c, 'keyDim'), 'config.keyDim', 1, 1 << 16);
  const valueDim = int(get(c, 'valueDim'), 'config.valueDim', 1, 1 << 16);
  const causal = get(c, 'causal');
  if (causal !== true) fail('inconsistent', `config.causal must be true (a Decoder is causal), got ${describe(causal)}`);
  const fv = get(c, 'features');
  let features: FeatureSpec;
  let seed: number | null = null;
  const kind = fv instanceof Map ? fv.get('kind') : undefined;
  if (kind === 'elu+1' || kind === 'relu') {
    asMap(fv, 'config.features', ['kind']);
    features = { kind };
  } else if (kind === 'prf') {
    const f = asMap(fv, 'config.features', ['kind', 'count', 'normalize', 'orthogonal', 'seed', 'projection']);
    const count = int(get(f, 'count'), 'config.features.count', 1, 1 << 16);
    const s = get(f, 'seed');
    if (s !== null && (typeof s !== 'number' || !Number.isFinite(s))) fail('inconsistent', `config.features.seed must be a finite number or nil, got ${describe(s)}`);
    seed = s;
    // W's size is checked against count x keyDim before it is decoded
    const projection = bytesF64(bin(get(f, 'projection'), 'config.features.projection', count * keyDim));
    features = { kind: 'prf', count, normalize: get(f, 'normalize') as 'l2', orthogonal: get(f, 'orthogonal') as boolean, projection };
  } else {
    fail('inconsistent', `config.features must be a map with kind 'prf', 'elu+1' or 'relu', got ${describe(fv)}`);
  }
  const shared = get(c, 'sharedRpe');
  if (typeof shared !== 'boolean') fail('inconsistent', `config.sharedRpe must be a boolean, got ${describe(shared)}`);
  const rpeList = get(c, 'rpe');
  const want = shared ? 1 : heads;
  if (!Array.isArray(rpeList) || rpeList.length !== want) fail('inconsistent', `config.rpe must be an array of ${want} RPE spec(s), got ${describe(rpeList)}`);
  // the kernel tables a decoder derives: one float64 per lag of each stored table (shared: stored once)
  let derived = 0;
  for (const r of rpeList) {
    const past = r instanceof Map ? (r.get('past') as unknown) : undefined;
    const bias = past instanceof Map ? (past.get('bias') as unknown) : undefined;
    if (bias instanceof Uint8Array) derived += bias.length;
  }
  if (derived > maxDerivedBytes) fail('inconsistent', `the RPE tables need ${derived} bytes of kernel values, more than the restore budget of ${maxDerivedBytes} bytes`);
  const rpe = rpeList.map((r, h) => decodeRpe(r, `config.rpe[${h}]`));
  const spec: AttentionConfig = { heads, keyDim, valueDim, causal: true, features, rpe: shared ? rpe[0]! : rpe };
  return { spec, seed };
}

interface RawHead {
  keyExp: unknown;
  valueExp: unknown;
  ringK: Uint8Array;
  ringV: Uint8Array;
  farSum: Uint8Array;
  farComp: Uint8Array;
}

/** Version 2 state: per-head rings, linearized oldest first, of min(position, K_h) rows (float32 for dtype 'float32'). */
function decodeStateV2(v: unknown, cfg: ResolvedConfig, method: unknown, backend: unknown, dtype: DType): DecoderState {
  const s = asMap(v, 'state', ['position', 'heads']);
  const { heads, valueDim: dv, featureDim: m } = cfg;
  const position = int(get(s, 'position'), 'state.position', 0, Number.MAX_SAFE_INTEGER);
  const hl = get(s, 'heads');
  if (!Array.isArray(hl) || hl.length !== heads) fail('inconsistent', `state.heads must be an array of ${heads} head states, got ${describe(hl)}`);
  // every size first, then the values (allocation only after every size matched)
  const raw: RawHead[] = hl.map((hv, h) => {
    const p = `state.heads[${h}]`;
    const hm = asMap(hv, p, ['keyExp', 'valueExp', 'ringK', 'ringV', 'farSum', 'farComp']);
    const len = Math.min(position, cfg.past[h]!.logBias.length);
    return {
      keyExp: get(hm, 'keyExp'),
      valueExp: get(hm, 'valueExp'),
      ringK: bin(get(hm, 'ringK'), `${p}.ringK`, len * m, dtype),
      ringV: bin(get(hm, 'ringV'), `${p}.ringV`, len * dv, dtype),
      farSum: bin(get(hm, 'farSum'), `${p}.farSum`, m * (dv + 1)),
      farComp: bin(get(hm, 'farComp'), `${p}.farComp`, m * (dv + 1)),
    };
  });
  const ring = dtype === 'float32' ? bytesF32 : bytesF64;
  const state: DecoderState = {
    position,
    method: method as DecoderState['method'],
    backend: backend as DecoderState['backend'],
    heads: raw.map((r) => ({
      keyExp: r.keyExp as number,
      valueExp: r.valueExp as number,
      ringK: ring(r.ringK),
      ringV: ring(r.ringV),
      farSum: bytesF64(r.farSum),
      farComp: bytesF64(r.farComp),
    })),
  };
  if (dtype === 'float32') state.dtype = dtype;
  return state;
}

/**
 * Version 1 state: one ring shared by all heads (every head had the same K), stored at its capacity with a
 * start index; no value scaling; deterministic features unscaled; method and backend not recorded (a v1
 * decoder ran on the JS backend; the method is taken as 'auto', as v1 restored it).
 */
function decodeStateV1(v: unknown, cfg: ResolvedConfig): DecoderState {
  const s = asMap(v, 'state', ['position', 'ringStart', 'ringLen', 'ringCap', 'heads']);
  const { heads, valueDim: dv, featureDim: m } = cfg;
  const K = cfg.past[0]!.logBias.length;
  for (let h = 1; h < heads; h++) {
    if (cfg.past[h]!.logBias.length !== K) fail('inconsistent', `a version 1 snapshot has one table length, got ${K} in head 0 and ${cfg.past[h]!.logBias.length} in head ${h}`);
  }
  const position = int(get(s, 'position'), 'state.position', 0, Number.MAX_SAFE_INTEGER);
  const ringCap = int(get(s, 'ringCap'), 'state.ringCap', 1, K);
  const ringLen = int(get(s, 'ringLen'), 'state.ringLen', 0, ringCap);
  const ringStart = int(get(s, 'ringStart'), 'state.ringStart', 0, ringCap - 1);
  if (ringLen !== Math.min(position, K)) fail('inconsistent', `state.ringLen must be min(position, K) = min(${position}, ${K}) = ${Math.min(position, K)}, got ${ringLen}`);
  if (ringStart !== 0 && ringLen !== ringCap) fail('inconsistent', `state.ringStart must be 0 while the ring is not full (ringLen ${ringLen} < ringCap ${ringCap}), got ${ringStart}`);
  const hl = get(s, 'heads');
  if (!Array.isArray(hl) || hl.length !== heads) fail('inconsistent', `state.heads must be an array of ${heads} head states, got ${describe(hl)}`);
  const raw = hl.map((hv, h) => {
    const p = `state.heads[${h}]`;
    const hm = asMap(hv, p, ['keyExp', 'ringK', 'ringV', 'farSum', 'farComp']);
    return {
      keyExp: get(hm, 'keyExp'),
      ringK: bin(get(hm, 'ringK'), `${p}.ringK`, ringCap * m),
      ringV: bin(get(hm, 'ringV'), `${p}.ringV`, ringCap * dv),
      farSum: bin(get(hm, 'farSum'), `${p}.farSum`, m * (dv + 1)),
      farComp: bin(get(hm, 'farComp'), `${p}.farComp`, m * (dv + 1)),
    };
  });
  const headStates: HeadState[] = raw.map((r) => {
    const capK = bytesF64(r.ringK);
    const capV = bytesF64(r.ringV);
    const ringK = new Float64Array(ringLen * m);
    const ringV = new Float64Array(ringLen * dv);
    for (let i = 0; i < ringLen; i++) {
      const slot = (ringStart + i) % ringCap;
      ringK.set(capK.subarray(slot * m, slot * m + m), i * m);
      ringV.set(capV.subarray(slot * dv, slot * dv + dv), i * dv);
    }
    const head: HeadState = { keyExp: r.keyExp as number, valueExp: 0, ringK, ringV, farSum: bytesF64(r.farSum), farComp: bytesF64(r.farComp) };
    if (cfg.features.kind !== 'prf') scaleDeterministicV1(head, m, dv);
    return head;
  });
  return { position, method: 'auto', backend: 'js', heads: headStates };
}

/** v1 stored deterministic key features unscaled: give them the exponent v2 keeps (exact: a power of two). */
function scaleDeterministicV1(h: HeadState, m: number, dv: number): void {
  let top = 0;
  for (const x of h.ringK) if (x > top) top = x;
  for (let r = 0; r < m; r++) top = Math.max(top, h.farSum[r * (dv + 1) + dv]!);
  if (!(top > 0 && top < Infinity)) {
    h.keyExp = NO_KEY;
    return;
  }
  const e = powerOfTwoAbove(top);
  const f = exp2(-e);
  for (const a of [h.ringK, h.farSum, h.farComp]) for (let i = 0; i < a.length; i++) a[i] = a[i]! * f;
  h.keyExp = e;
}

/** A fully validated snapshot, before any Decoder is built. */
export interface ParsedSnapshot {
  header: SnapshotHeader;
  library: string;
  config: ResolvedConfig;
  state: DecoderState;
}

export interface DecodeOptions extends DecoderOptions {
  /** budget for the kernel tables the config derives; default (and maximum useful): what resolveConfig allows */
  maxDerivedBytes?: number;
}

function checksumOf(bytes: Uint8Array, header: SnapshotHeader): number {
  return crc32(bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + header.payloadBytes));
}

/** Unpack and validate the payload (header and checksum already checked). */
function parsePayload(bytes: Uint8Array, header: SnapshotHeader, maxDerivedBytes: number): ParsedSnapshot {
  const payload = bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + header.payloadBytes);
  let root: unknown;
  try {
    root = msgpack().unpackr.unpack(payload);
  } catch (e) {
    fail('corrupt', `payload is not valid msgpack (${(e instanceof Error ? e.message : String(e)).slice(0, 200)})`);
  }
  const v1 = header.formatVersion === 1;
  const r = asMap(root, 'payload', v1 ? ['library', 'config', 'state'] : ['library', 'config', 'options', 'state']);
  const library = get(r, 'library');
  if (typeof library !== 'string' || library.length > 64) fail('inconsistent', `payload.library must be a version string, got ${describe(library)}`);
  const { spec, seed } = decodeConfig(get(r, 'config'), maxDerivedBytes);
  let resolved: ResolvedConfig;
  try {
    resolved = resolveConfig(spec);
  } catch (e) {
    if (e instanceof ConfigError) fail('inconsistent', `config is invalid: ${e.message}`);
    throw e;
  }
  if (resolved.features.kind === 'prf' && seed !== null) {
    // the stored W is authoritative; keep the seed it was drawn from so the next snapshot is identical
    (resolved.features as { seed: number | null }).seed = seed;
    (resolved.spec.features as { seed?: number }).seed = seed;
  }
  let state: DecoderState;
  if (v1) {
    state = decodeStateV1(get(r, 'state'), resolved);
  } else {
    // dtype is present only in float32 snapshots (absent: float64, as every snapshot before it)
    const ov = get(r, 'options');
    const o = asMap(ov, 'payload.options', ov instanceof Map && ov.has('dtype') ? ['method', 'backend', 'dtype'] : ['method', 'backend']);
    const stored = o.has('dtype') ? o.get('dtype') : 'float64';
    if (stored !== 'float64' && stored !== 'float32') fail('inconsistent', `payload.options.dtype must be 'float64' or 'float32' (or absent: float64), got ${describe(stored)}`);
    const dtype: DType = stored;
    state = decodeStateV2(get(r, 'state'), resolved, get(o, 'method'), get(o, 'backend'), dtype);
  }
  try {
    checkDecoderState(resolved, state);
  } catch (e) {
    if (e instanceof StateError) fail('inconsistent', e.message);
    throw e;
  }
  return { header, library, config: resolved, state };
}

/** Validate everything and return the config and state, without building a Decoder. Throws SnapshotError. */
export function parseSnapshot(bytes: Uint8Array, options: { maxDerivedBytes?: number } = {}): ParsedSnapshot {
  const header = readHeader(bytes);
  const computed = checksumOf(bytes, header);
  if (computed !== header.storedChecksum) {
    fail('corrupt', `payload checksum mismatch (stored CRC-32 0x${header.storedChecksum.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`);
  }
  return parsePayload(bytes, header, options.maxDerivedBytes ?? DEFAULT_MAX_DERIVED_BYTES);
}

/** Check restore options (a ConfigError, before any byte is read): method, backend, budget. */
export function checkDecodeOptions(options: unknown): DecodeOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') throw new ConfigError(`options must be an object { method?, backend?, arena?, maxDerivedBytes? }, got ${describe(options)}`);
  const o = options as DecodeOptions;
  if (o.method !== undefined) checkMethodOption(o.method);
  if (o.backend !== undefined) checkBackendOption(o.backend);
  checkArenaOption(o.arena, o.backend);
  if (o.dtype !== undefined) checkDtypeOption(o.dtype);
  if (o.maxDerivedBytes !== undefined && (typeof o.maxDerivedBytes !== 'number' || !(o.maxDerivedBytes >= 0))) {
    throw new ConfigError(`options.maxDerivedBytes must be a number >= 0, got ${describe(o.maxDerivedBytes)}`);
  }
  return o;
}

/**
 * Restore a decoder (built by `fromState`: DecoderCore's or a subclass's) from snapshot bytes; bad bytes are a
 * SnapshotError with a code, bad options a ConfigError. The snapshot's method and backend are used unless
 * options override them (then the continuation is no longer bit-identical).
 */
export function decodeSnapshotAs<T extends DecoderCore>(fromState: (config: ResolvedConfig, state: DecoderState, options: DecoderOptions) => T, bytes: Uint8Array, options?: DecodeOptions): T {
  const opts = checkDecodeOptions(options);
  const parsed = parseSnapshot(bytes, opts);
  const decoderOptions: DecoderOptions = {};
  if (opts.method !== undefined) decoderOptions.method = opts.method;
  if (opts.backend !== undefined) decoderOptions.backend = opts.backend;
  if (opts.arena !== undefined) decoderOptions.arena = opts.arena;
  if (opts.dtype !== undefined) decoderOptions.dtype = opts.dtype;
  return fromState(parsed.config, parsed.state, decoderOptions);
}

export interface SnapshotInfo {
  formatVersion: number;
  totalBytes: number;
  payloadBytes: number;
  checksum: { stored: number; computed: number; valid: boolean };
  /** null when the payload could not be validated (see error) */
  library: string | null;
  config: {
    heads: number;
    keyDim: number;
    valueDim: number;
    featureKind: string;
    featureDim: number;
    seed: number | null;
    /** K_h per head */
    windows: number[];
    tails: Tail[];
  } | null;
  position: number | null;
  method: string | null;
  backend: string | null;
  /** the rings' arithmetic ('float64' for snapshots without the field) */
  dtype: string | null;
  /** bytes of the state arrays (rings, far sums and compensations) */
  stateArrayBytes: number | null;
  /** SnapshotError message when the payload is refused (header problems throw); restore refuses exactly these */
  error: string | null;
}

/** Header, config, position and sizes, and whether the snapshot restores (same checks as restore), without building a decoder. */
export function inspectSnapshot(bytes: Uint8Array): SnapshotInfo {
  const header = readHeader(bytes);
  const computed = checksumOf(bytes, header);
  const info: SnapshotInfo = {
    formatVersion: header.formatVersion,
    totalBytes: header.totalBytes,
    payloadBytes: header.payloadBytes,
    checksum: { stored: header.storedChecksum, computed, valid: computed === header.storedChecksum },
    library: null,
    config: null,
    position: null,
    method: null,
    backend: null,
    dtype: null,
    stateArrayBytes: null,
    error: null,
  };
  try {
    const p = info.checksum.valid ? parsePayload(bytes, header, DEFAULT_MAX_DERIVED_BYTES) : parseSnapshot(bytes);
    const c = p.config;
    const s = p.state;
    info.library = p.library;
    info.config = {
      heads: c.heads,
      keyDim: c.keyDim,
      valueDim: c.valueDim,
      featureKind: c.features.kind,
      featureDim: c.featureDim,
      seed: c.features.kind === 'prf' ? c.features.seed : null,
      windows: c.past.map((k) => k.logBias.length),
      tails: c.past.map((k) => (k.tail.kind === 'decay' ? { decay: k.tail.rate } : k.tail.kind)),
    };
    info.position = s.position;
    info.method = s.method;
    info.backend = s.backend;
    info.dtype = s.dtype ?? 'float64';
    info.stateArrayBytes = s.heads.reduce((a, h) => a + h.ringK.byteLength + h.ringV.byteLength + h.farSum.byteLength + h.farComp.byteLength, 0);
  } catch (e) {
    if (!(e instanceof SnapshotError)) throw e;
    info.error = e.message;
  }
  return info;
}
