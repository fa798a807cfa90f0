// Far field of the Decoder's dtype 'float32': F stays float64 (compensated), so millions of absorbed keys do not
// drift; the absorbed key features and values are float32 (the ring's rows). A float32 times a float32 is exact
// in float64, so every element sees exactly the operations of the JS farAbsorb on the same values promoted to
// float64: the results are bit-identical to it.
import { kahan1, kahan2 } from './far';

@inline function absorb32(sum: usize, comp: usize, gamma: f64, k: usize, v: usize, m: i32, dv: i32, scale: bool): void {
  const w18 = <usize>(dv + 1) << 3;
  const g = f64x2.splat(gamma);
  for (let r = 0; r < m; r++) {
    const kr = <f64>load<f32>(k + (<usize>r << 2));
    const kv = f64x2.splat(kr);
    const sp = sum + <usize>r * w18;
    const cp = comp + <usize>r * w18;
    let col = 0;
    for (; col + 2 <= dv; col += 2) {
      const u = f64x2.mul(kv, f64x2.promote_low_f32x4(v128.load64_zero(v + (<usize>col << 2))));
      const o = <usize>col << 3;
      kahan2(sp + o, cp + o, u, g, scale);
    }
    for (; col < dv; col++) {
      const o = <usize>col << 3;
      kahan1(sp + o, cp + o, kr * <f64>load<f32>(v + (<usize>col << 2)), gamma, scale);
    }
    const o = <usize>dv << 3;
    kahan1(sp + o, cp + o, kr, gamma, scale);
  }
}

/** F <- gamma (F + k [v; 1]^T), compensated. k: [m] f32, v: [dv] f32; F (sum, comp): [m, dv + 1] f64. */
export function farAbsorb32(sum: usize, comp: usize, gamma: f64, k: usize, v: usize, m: i32, dv: i32): void {
  if (gamma != 1) absorb32(sum, comp, gamma, k, v, m, dv, true);
  else absorb32(sum, comp, gamma, k, v, m, dv, false);
}
