import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { createRng, detLog, Rng } from '../../src/math/rng.js';

// ---------------------------------------------------------------------------------------------------
// Helpers.

const f64 = new Float64Array(1);
const i64 = new BigInt64Array(f64.buffer);

/** Position of a double on the ordered line of doubles (so |ord(a) - ord(b)| is the ulp distance). */
function ord(x: number): bigint {
  f64[0] = x;
  const b = i64[0]!;
  return b < 0n ? -(b & 0x7fffffffffffffffn) : b;
}

function ulpDistance(a: number, b: number): number {
  const d = ord(a) - ord(b);
  return Number(d < 0n ? -d : d);
}

/** Double with the given bits (hi, lo words). */
function fromWords(hi: number, lo: number): number {
  i64[0] = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return f64[0]!;
}

// ln 2 to 60 digits: correctly rounded k ln 2 through the (correctly rounded) string -> number parse.
const LN2_60 = 693147180559945309417232121458176568075500134360255254120680n; // times 10^-60
function kLn2(k: number): number {
  const p = BigInt(k) * LN2_60;
  const neg = p < 0n;
  const s = (neg ? -p : p).toString().padStart(61, '0');
  return Number(`${neg ? '-' : ''}${s.slice(0, -60)}.${s.slice(-60)}`);
}

// ---------------------------------------------------------------------------------------------------

describe('Rng determinism', () => {
  it('pins the first draws of seed 42 (any change here changes every seeded W)', () => {
    const a = new Rng(42);
    expect([a.nextUint32(), a.nextUint32(), a.nextUint32(), a.nextUint32()]).toEqual([
      1029902495, 1799890498, 4016924757, 1258123039,
    ]);
    const b = new Rng(42);
    expect([b.nextFloat64(), b.nextFloat64(), b.nextFloat64(), b.nextFloat64()]).toEqual([
      0.2397928567161386, 0.9352631739745259, 0.3502884378814307, 0.13427774231940248,
    ]);
    const c = new Rng(42);
    expect([c.nextGaussian(), c.nextGaussian(), c.nextGaussian(), c.nextGaussian()]).toEqual([
      -0.3675146087439456, -0.8977815109162239, -0.784007875794238, 0.3615367789888777,
    ]);
  });

  it('is xoshiro128** (reference output for state [1, 2, 3, 4])', () => {
    const r = new Rng(0);
    (r as unknown as { s: Uint32Array }).s.set([1, 2, 3, 4]);
    const out = Array.from({ length: 6 }, () => r.nextUint32());
    expect(out).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('gives identical sequences for the same seed, different ones for different seeds', () => {
    const seeds = [0, 1, 42, 43, -1, 0.5, 1.5, -3.25, 2 ** 40 + 1, 1e300, -1e-300, Number.MAX_VALUE, 5e-324];
    const seqs = seeds.map((s) => {
      const r = createRng(s);
      return Array.from({ length: 16 }, () => r.nextUint32());
    });
    seeds.forEach((s, i) => {
      const r = new Rng(s);
      expect(Array.from({ length: 16 }, () => r.nextUint32())).toEqual(seqs[i]);
    });
    const keys = new Set(seqs.map((q) => q.join(',')));
    expect(keys.size).toBe(seeds.length);
  });

  it('maps -0 to the same stream as +0', () => {
    const a = new Rng(0);
    const b = new Rng(-0);
    for (let i = 0; i < 8; i++) expect(a.nextUint32()).toBe(b.nextUint32());
  });

  it('rejects non-finite seeds with a ConfigError', () => {
    expect(() => new Rng(NaN)).toThrow(ConfigError);
    expect(() => new Rng(NaN)).toThrow('seed must be a finite number, got NaN');
    expect(() => new Rng(Infinity)).toThrow('seed must be a finite number, got Infinity');
    expect(() => new Rng('1' as unknown as number)).toThrow('seed must be a finite number, got "1"');
  });
});

describe('Rng distributions', () => {
  it('nextUint32 is an unsigned 32-bit integer', () => {
    const r = new Rng(3);
    for (let i = 0; i < 10_000; i++) {
      const u = r.nextUint32();
      expect(Number.isInteger(u) && u >= 0 && u <= 0xffffffff).toBe(true);
    }
  });

  it('nextFloat64 is uniform in [0, 1) with 53 random bits', () => {
    const r = new Rng(5);
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let min = 1;
    let max = 0;
    let fine = 0; // values not on the 2^-32 grid: the low word contributes
    for (let i = 0; i < n; i++) {
      const x = r.nextFloat64();
      if (!(x >= 0 && x < 1)) throw new Error(`out of range: ${x}`);
      sum += x;
      sumSq += x * x;
      if (x < min) min = x;
      if (x > max) max = x;
      if (x * 2 ** 32 !== Math.floor(x * 2 ** 32)) fine++;
    }
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(sumSq / n - sum * sum / n / n - 1 / 12)).toBeLessThan(0.002);
    expect(min).toBeLessThan(1e-3);
    expect(max).toBeGreaterThan(1 - 1e-3);
    expect(fine).toBeGreaterThan(n * 0.99);
  });

  it('nextGaussian has mean 0 and variance 1 (200k draws)', () => {
    const r = new Rng(11);
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let sum4 = 0;
    let within1 = 0;
    for (let i = 0; i < n; i++) {
      const g = r.nextGaussian();
      sum += g;
      sumSq += g * g;
      sum4 += g * g * g * g;
      if (Math.abs(g) < 1) within1++;
    }
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    expect(Math.abs(sum4 / n - 3)).toBeLessThan(0.1); // kurtosis of a normal
    expect(Math.abs(within1 / n - 0.6826894921370859)).toBeLessThan(0.005);
  });
});

describe('detLog', () => {
  it('handles the special values', () => {
    expect(Object.is(detLog(1), 0)).toBe(true);
    expect(detLog(0)).toBe(-Infinity);
    expect(detLog(-0)).toBe(-Infinity);
    expect(detLog(Infinity)).toBe(Infinity);
    expect(detLog(-1)).toBeNaN();
    expect(detLog(-5e-324)).toBeNaN();
    expect(detLog(-Infinity)).toBeNaN();
    expect(detLog(NaN)).toBeNaN();
  });

  it('is the correctly rounded k ln 2 at every power of two, subnormals included', () => {
    for (let k = -1074; k <= 1023; k++) {
      const x = 2 ** k;
      const want = kLn2(k);
      if (detLog(x) !== want) throw new Error(`detLog(2^${k}) = ${detLog(x)}, want ${want}`);
    }
    expect(detLog(2)).toBe(Math.LN2);
    expect(detLog(0.5)).toBe(-Math.LN2);
  });

  it('is within 1 ulp of Math.log on 100k random doubles across all exponents', () => {
    const r = new Rng(2024);
    let worst = 0;
    for (let i = 0; i < 100_000; i++) {
      // random biased exponent 1..2046 and random mantissa: every binade is equally likely
      const e = 1 + (r.nextUint32() % 2046);
      const hi = (e << 20) | (r.nextUint32() & 0xfffff);
      const x = fromWords(hi, r.nextUint32());
      const d = ulpDistance(detLog(x), Math.log(x));
      if (d > worst) worst = d;
      if (d > 1) throw new Error(`detLog(${x}) = ${detLog(x)}, Math.log = ${Math.log(x)}`);
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('is within 1 ulp of Math.log near 1, on subnormals and at the extremes', () => {
    const r = new Rng(77);
    const xs: number[] = [
      Number.MIN_VALUE, 2 * Number.MIN_VALUE, 3e-320, 2.2250738585072009e-308, 2.2250738585072014e-308,
      Number.MAX_VALUE, 1e308, 1e300, 1e-300, 1 + Number.EPSILON, 1 - Number.EPSILON / 2, 3, 10, Math.E,
      Math.SQRT2, Math.SQRT1_2, 0.7071067811865476, 1.4142135623730951,
    ];
    for (let i = 0; i < 5_000; i++) {
      xs.push(fromWords(r.nextUint32() & 0xfffff, r.nextUint32())); // subnormal (or 0)
      xs.push(1 + (r.nextFloat64() - 0.5) * 2 ** -(1 + (r.nextUint32() % 50))); // around 1
      xs.push(r.nextFloat64()); // (0, 1)
    }
    for (const x of xs) {
      if (x === 0) continue;
      const d = ulpDistance(detLog(x), Math.log(x));
      if (d > 1) throw new Error(`detLog(${x}) = ${detLog(x)}, Math.log = ${Math.log(x)}`);
    }
  });
});

describe('Rng state get/set and advance', () => {
  it('getState / setState / Rng.fromState continue the same stream (words and a pending Gaussian spare)', () => {
    const a = new Rng(99);
    for (let i = 0; i < 17; i++) a.nextUint32();
    a.nextGaussian(); // leaves a spare
    const st = a.getState();
    expect(st.words).toHaveLength(4);
    expect(st.spare).not.toBeNull();
    const b = Rng.fromState(st);
    const c = new Rng(1);
    c.setState(st);
    const draws = (r: Rng): number[] => [r.nextGaussian(), r.nextUint32(), r.nextFloat64(), r.nextGaussian(), r.nextGaussian()];
    const ref = draws(a);
    expect(draws(b)).toEqual(ref);
    expect(draws(c)).toEqual(ref);
    // the state is a copy: drawing does not change a taken state
    expect(Rng.fromState(st).nextUint32()).toBe(Rng.fromState(st).nextUint32());
  });

  it('setState refuses malformed states with a ConfigError and leaves the generator unchanged', () => {
    const r = new Rng(5);
    const before = r.getState();
    const bad: unknown[] = [
      null, {}, { words: [1, 2, 3], spare: null }, { words: [1, 2, 3, 2 ** 32], spare: null }, { words: [1, 2, 3, -1], spare: null },
      { words: [1, 2, 3, 1.5], spare: null }, { words: [0, 0, 0, 0], spare: null }, { words: [1, 2, 3, 4], spare: NaN }, { words: [1, 2, 3, 4], spare: Infinity },
    ];
    for (const s of bad) expect(() => r.setState(s as never), JSON.stringify(s)).toThrow(ConfigError);
    expect(r.getState()).toEqual(before);
  });

  it('advance(n) equals n nextUint32 draws, for n at and around powers of two', () => {
    for (const n of [0, 1, 2, 3, 7, 8, 9, 127, 128, 1000, 4097, 65535]) {
      const a = new Rng(n + 3);
      const b = new Rng(n + 3);
      for (let i = 0; i < n; i++) a.nextUint32();
      b.advance(n);
      expect(b.getState(), `n = ${n}`).toEqual(a.getState());
    }
  });

  it('advance(2^30) takes milliseconds and composes: advance(a + b) = advance(a) then advance(b)', () => {
    const t = performance.now();
    const x = new Rng(7);
    x.advance(2 ** 30);
    expect(performance.now() - t).toBeLessThan(250);
    const y = new Rng(7);
    y.advance(2 ** 29 + 12345);
    y.advance(2 ** 29 - 12345);
    expect(y.getState()).toEqual(x.getState());
    expect(() => x.advance(-1)).toThrow(ConfigError);
    expect(() => x.advance(1.5)).toThrow(ConfigError);
    expect(() => x.advance(2 ** 53)).toThrow(ConfigError);
  });
});
