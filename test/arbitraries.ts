// fast-check arbitraries shared by the property tests of attention() and the decoder across backends and dtypes.
import fc from 'fast-check';
import type { FeatureSpec, RpeSide, Tail } from '../src/index.js';
import { Rng } from '../src/math/rng.js';

/** clip, zero, or a decay rate in [0, 2]. */
export const tailArb: fc.Arbitrary<Tail> = fc.oneof(fc.constant<Tail>('clip'), fc.constant<Tail>('zero'), fc.double({ min: 0, max: 2, noNaN: true }).map((r) => ({ decay: r })));

/** PRF (1-17 features, any normalization), elu+1 or relu. */
export const featureArb: fc.Arbitrary<FeatureSpec> = fc.oneof(
  fc.record({ kind: fc.constant('prf' as const), count: fc.integer({ min: 1, max: 17 }), seed: fc.integer({ min: 0, max: 1000 }), normalize: fc.constantFrom('l2', 'scale', 'none') as fc.Arbitrary<'l2' | 'scale' | 'none'> }),
  fc.constant<FeatureSpec>({ kind: 'elu+1' }),
  fc.constant<FeatureSpec>({ kind: 'relu' }),
);

/** What side() builds an RPE side from: K biases, the tail, the fraction of them -Infinity, a seed. */
export interface SideSpec {
  K: number;
  tail: Tail;
  inf: number;
  seed: number;
}

/** Up to maxK biases, the fraction -Infinity drawn from `infs`. */
export const sideSpecArb = (maxK: number, infs: readonly number[]): fc.Arbitrary<SideSpec> =>
  fc.record({ K: fc.integer({ min: 1, max: maxK }), tail: tailArb, inf: fc.constantFrom(...infs), seed: fc.integer() });

/** The side: K biases uniform in [lo, hi), each -Infinity with probability s.inf. */
export function side(s: SideSpec, lo: number, hi: number): RpeSide {
  const rng = new Rng(s.seed);
  return { bias: Array.from({ length: s.K }, () => (rng.nextFloat64() < s.inf ? -Infinity : lo + (hi - lo) * rng.nextFloat64())), tail: s.tail };
}
