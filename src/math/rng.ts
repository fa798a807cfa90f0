// Platform-independent seeded generator.
//
// Everything here uses only 32-bit integer ops (Math.imul, >>>, ^, |0), IEEE-754 + - * / and Math.sqrt,
// which every conforming JS engine computes bit-identically. Math.log/exp/sin are NOT used: their
// results may differ in the last bit between engines, so `detLog` below is a port of fdlibm's log.
//
// Generator: xoshiro128** (Blackman & Vigna), state seeded by splitmix32 from the seed's float64 bits.
// Changing anything in this file changes every seeded projection W: the pinned values in
// test/math/rng.test.ts and test/math/projection.test.ts guard against that.

import { ConfigError, describe } from '../core/errors.js';

// ---------------------------------------------------------------------------------------------------
// Float64 <-> two uint32 words, allocation-free (one shared scratch buffer).

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
// Word order of a float64 in memory follows the platform's endianness; detect it once.
f64[0] = 1; // 0x3ff00000_00000000
const HI = u32[1] === 0x3ff00000 ? 1 : 0;
const LO = 1 - HI;

// ---------------------------------------------------------------------------------------------------
// detLog: port of fdlibm 5.3 e_log.c (__ieee754_log). Error < 1 ulp.
//
//   x = 2^k (1 + f), sqrt(2)/2 < 1 + f < sqrt(2)
//   log(1 + f) = 2s + s R(s^2),  s = f / (2 + f),  R a Remez polynomial (|error| <= 2^-58.45)
//   log(x) = k ln2_hi + (f - (hfsq - (s (hfsq + R) + k ln2_lo))),  hfsq = f^2 / 2

const ln2_hi = 6.93147180369123816490e-1; // 3fe62e42 fee00000
const ln2_lo = 1.90821492927058770002e-10; // 3dea39ef 35793c76
const two54 = 1.8014398509481984e16; // 43500000 00000000
const Lg1 = 6.666666666666735130e-1; // 3FE55555 55555593
const Lg2 = 3.999999999940941908e-1; // 3FD99999 9997FA04
const Lg3 = 2.857142874366239149e-1; // 3FD24924 94229359
const Lg4 = 2.222219843214978396e-1; // 3FCC71C5 1D8E78AF
const Lg5 = 1.818357216161805012e-1; // 3FC74664 96CB03DE
const Lg6 = 1.531383769920937332e-1; // 3FC39A09 D078C69F
const Lg7 = 1.479819860511658591e-1; // 3FC2F112 DF3E5244

/** Natural logarithm, bit-identical on every engine (fdlibm __ieee754_log; < 1 ulp from the true value). */
export function detLog(x: number): number {
  f64[0] = x;
  let hx = u32[HI]! | 0; // signed high word
  const lx = u32[LO]!;
  let k = 0;
  if (hx < 0x00100000) {
    // x < 2^-1022: zero, negative or subnormal
    if (((hx & 0x7fffffff) | lx) === 0) return -Infinity; // log(+-0)
    if (hx < 0) return NaN; // log(negative)
    k -= 54;
    x *= two54; // scale subnormal up
    f64[0] = x;
    hx = u32[HI]! | 0;
  }
  if (hx >= 0x7ff00000) return x + x; // +Infinity or NaN
  k += (hx >> 20) - 1023;
  hx &= 0x000fffff;
  const i0 = (hx + 0x95f64) & 0x100000;
  u32[HI] = hx | (i0 ^ 0x3ff00000); // normalize x or x/2 into [sqrt(2)/2, sqrt(2))
  x = f64[0]!;
  k += i0 >> 20;
  const f = x - 1.0;
  if ((0x000fffff & (2 + hx)) < 3) {
    // -2^-20 <= f < 2^-20
    if (f === 0) {
      if (k === 0) return 0;
      return k * ln2_hi + k * ln2_lo;
    }
    const R = f * f * (0.5 - 0.33333333333333333 * f);
    if (k === 0) return f - R;
    return k * ln2_hi - (R - k * ln2_lo - f);
  }
  const s = f / (2.0 + f);
  const dk = k;
  const z = s * s;
  let i = hx - 0x6147a;
  const w = z * z;
  const j = 0x6b851 - hx;
  const t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
  const t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
  i |= j;
  const R = t2 + t1;
  if (i > 0) {
    const hfsq = 0.5 * f * f;
    if (k === 0) return f - (hfsq - s * (hfsq + R));
    return dk * ln2_hi - (hfsq - (s * (hfsq + R) + dk * ln2_lo) - f);
  }
  if (k === 0) return f - s * (f - R);
  return dk * ln2_hi - (s * (f - R) - dk * ln2_lo - f);
}

// ---------------------------------------------------------------------------------------------------
// Seeding.

/** splitmix32 finalizer (murmur3 fmix32 constants). */
function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const GOLDEN = 0x9e3779b9;

/**
 * Seeding (documented; it fixes every seeded W):
 *   (hi, lo) = the two 32-bit words of the seed's float64 bits (-0 is first mapped to +0);
 *   splitmix32 state t = mix32(hi ^ mix32(lo ^ 0x9e3779b9));
 *   four times: t = t + 0x9e3779b9 (mod 2^32); s[i] = mix32(t).
 * An all-zero xoshiro state (never observed, but not excluded) is replaced by s = [1, 0, 0, 0].
 */
function seedState(seed: number, s: Uint32Array): void {
  f64[0] = seed === 0 ? 0 : seed; // -0 -> +0
  const hi = u32[HI]!;
  const lo = u32[LO]!;
  let t = mix32(hi ^ mix32((lo ^ GOLDEN) >>> 0));
  for (let n = 0; n < 4; n++) {
    t = (t + GOLDEN) >>> 0;
    s[n] = mix32(t);
  }
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1;
}

// ---------------------------------------------------------------------------------------------------
// Generator.

const TWO_POW_M53 = 1 / 9007199254740992; // 2^-53
const TWO_POW_26 = 67108864;

/** A generator's whole state: the four xoshiro128** words (uint32, not all 0) and a pending Gaussian, if any. */
export interface RngState {
  readonly words: readonly [number, number, number, number];
  readonly spare: number | null;
}

/** xoshiro128**'s state transition (the words only; the output function is not needed to move the state). */
function stepState(s: Uint32Array): void {
  const s0 = s[0]!;
  const s1 = s[1]!;
  const t = s1 << 9;
  const n2 = s[2]! ^ s0;
  const n3 = s[3]! ^ s1;
  s[0] = s0 ^ n3;
  s[1] = s1 ^ n2;
  s[2] = n2 ^ t;
  s[3] = (n3 << 11) | (n3 >>> 21);
}

// The transition is linear over GF(2) on the 128 state bits, so T^n is a 128 x 128 bit matrix and advancing
// by n draws costs O(log n) matrix-vector products. A matrix is stored by columns: column j (4 words) is the
// image of the state with only bit j set (bit j = bit (j & 31) of word j >> 5). POWERS[k] = T^(2^k), made
// on demand by squaring (at most 53 of them, 2 KiB each).
const POWERS: Uint32Array[] = [];

/** out = M v (out may not alias v). */
function applyMatrix(M: Uint32Array, v: Uint32Array, vOff: number, out: Uint32Array, outOff: number): void {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  for (let j = 0; j < 128; j++) {
    if ((v[vOff + (j >>> 5)]! >>> (j & 31)) & 1) {
      a ^= M[4 * j]!;
      b ^= M[4 * j + 1]!;
      c ^= M[4 * j + 2]!;
      d ^= M[4 * j + 3]!;
    }
  }
  out[outOff] = a;
  out[outOff + 1] = b;
  out[outOff + 2] = c;
  out[outOff + 3] = d;
}

function power(k: number): Uint32Array {
  if (POWERS.length === 0) {
    const T = new Uint32Array(512);
    const e = new Uint32Array(4);
    for (let j = 0; j < 128; j++) {
      e.fill(0);
      e[j >>> 5] = 1 << (j & 31);
      stepState(e);
      T.set(e, 4 * j);
    }
    POWERS.push(T);
  }
  while (POWERS.length <= k) {
    const M = POWERS[POWERS.length - 1]!;
    const M2 = new Uint32Array(512);
    for (let j = 0; j < 128; j++) applyMatrix(M, M, 4 * j, M2, 4 * j); // (M M) e_j = M (M e_j)
    POWERS.push(M2);
  }
  return POWERS[k]!;
}

function checkState(state: unknown): RngState {
  const fail = (what: string): never => {
    throw new ConfigError(`an Rng state must be { words: [4 uint32, not all 0], spare: finite number or null }, got ${what}`);
  };
  if (state === null || typeof state !== 'object') fail(describe(state));
  const { words, spare } = state as { words?: unknown; spare?: unknown };
  if (!Array.isArray(words) && !(words instanceof Uint32Array)) return fail(`words ${describe(words)}`);
  if (words.length !== 4) fail(`words of length ${words.length}`);
  let any = 0;
  for (let i = 0; i < 4; i++) {
    const w = words[i] as unknown;
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w > 0xffffffff) fail(`words[${i}] = ${describe(w)}`);
    any |= w as number;
  }
  if (any === 0) fail('the all-zero state (xoshiro never leaves it)');
  if (spare !== null && (typeof spare !== 'number' || !Number.isFinite(spare))) fail(`spare ${describe(spare)}`);
  return { words: [words[0], words[1], words[2], words[3]] as [number, number, number, number], spare: spare as number | null };
}

/**
 * Seeded PRNG: xoshiro128** over a 128-bit state, with float64 and standard-normal draws.
 * The same seed gives the same sequence on every conforming JS engine.
 */
export class Rng {
  /** xoshiro128** state: [4] uint32. */
  private readonly s = new Uint32Array(4);
  /** Second value of the last polar-method pair, returned by the next `nextGaussian()`. */
  private spare = 0;
  private hasSpare = false;

  /** `seed`: any finite number (non-integers, negatives and large values map deterministically). */
  constructor(seed: number) {
    if (typeof seed !== 'number' || !Number.isFinite(seed)) {
      throw new ConfigError(`seed must be a finite number, got ${describe(seed)}`);
    }
    seedState(seed, this.s);
  }

  /** A generator continuing from `state` (as getState returned it); a malformed state is a ConfigError. */
  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  /** The whole state (a copy): setState or Rng.fromState continue exactly from here. */
  getState(): RngState {
    const s = this.s;
    return { words: [s[0]!, s[1]!, s[2]!, s[3]!], spare: this.hasSpare ? this.spare : null };
  }

  /** Continue from `state`; a malformed one is a ConfigError and leaves this generator unchanged. */
  setState(state: RngState): void {
    const st = checkState(state);
    this.s.set(st.words);
    this.hasSpare = st.spare !== null;
    this.spare = st.spare ?? 0;
  }

  /** Take over another generator's whole state (a cheap save/restore point: no allocation). */
  copyFrom(other: Rng): void {
    this.s.set(other.s);
    this.spare = other.spare;
    this.hasSpare = other.hasSpare;
  }

  /** Skip `n` nextUint32 draws in O(log n) (a pending Gaussian spare is kept): n an integer in [0, 2^53). */
  advance(n: number): void {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= 2 ** 53) throw new ConfigError(`advance needs an integer count in [0, 2^53), got ${describe(n)}`);
    const v = new Uint32Array(4);
    v.set(this.s);
    const tmp = new Uint32Array(4);
    for (let k = 0; n > 0; k++, n = Math.floor(n / 2)) {
      if (n % 2 === 1) {
        applyMatrix(power(k), v, 0, tmp, 0);
        v.set(tmp);
      }
    }
    this.s.set(v);
  }

  /** Next uniform integer in [0, 2^32). xoshiro128**: result = rotl(s1 * 5, 7) * 9. */
  nextUint32(): number {
    const s = this.s;
    const s0 = s[0]!;
    const s1 = s[1]!;
    const s2 = s[2]!;
    const s3 = s[3]!;
    const m = Math.imul(s1, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[0] = s0 ^ n3;
    s[1] = s1 ^ n2;
    s[2] = n2 ^ t;
    s[3] = (n3 << 11) | (n3 >>> 21);
    return result;
  }

  /** Next uniform double in [0, 1) with 53 random bits: (a >>> 5) * 2^26 + (b >>> 6), times 2^-53. */
  nextFloat64(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * TWO_POW_26 + b) * TWO_POW_M53;
  }

  /**
   * Next standard normal, by the Marsaglia polar method:
   *   u = 2 U1 - 1, v = 2 U2 - 1 (two nextFloat64 draws), rejected unless 0 < s = u^2 + v^2 < 1;
   *   r = sqrt(-2 detLog(s) / s); returns u r now and v r at the next call.
   */
  nextGaussian(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.nextFloat64() - 1;
      v = 2 * this.nextFloat64() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const r = Math.sqrt((-2 * detLog(s)) / s);
    this.spare = v * r;
    this.hasSpare = true;
    return u * r;
  }
}

/** Same as `new Rng(seed)`. */
export function createRng(seed: number): Rng {
  return new Rng(seed);
}
