// The S-form's whole per-channel-pair work in one call (the loop body of sformScratch in src/math/fftconv.ts):
// two real channels a, b ride in one complex transform; for every input block, fill x = xa + i xb and transform;
// every output block Y_r = sum_p X_{r-p} H_p (spectralConv); then for every output block inverse-transform,
// overlap-add the previous block's second half, and contract with phiQ into accT.
//   channel c of U is phiK[:, r] * v[:, col] (col < dv) or phiK[:, r] (col = dv, the denominator).
// Layouts (column-major, as in the JS S-form): phiKT [m, nb], vT [dv, nb], phiQT [m, nq], accT [dv + 1, nq]
// with nq = nb - q0. The error estimates stay in JS (they are cheap); no block is skipped as all-zero (the JS
// loop skips them only for speed: the sums are the same).
import { fftForward, fftInverse, spectralConv } from './fft';

/**
 * Channels [ch0, ch1) in pairs (channel ch = r (dv + 1) + col; the last pair may be a single channel).
 * h: P kernel spectra of 2N f64 (N = 2B); X: nIn blocks of 2N f64; Y: yBlocks blocks of 2N f64 (output spectra are
 * computed yBlocks at a time: any yBlocks >= 1 gives the same bits); tmp: 4N f64.
 */
export function sformChannels(
  h: usize, P: i32, B: i32,
  phiKT: usize, vT: usize, nb: i32, q0: i32, phiQT: usize, accT: usize, dv: i32,
  ch0: i32, ch1: i32,
  X: usize, Y: usize, yBlocks: i32, tmp: usize, plan: usize,
): void {
  const w1 = dv + 1;
  for (let ch = ch0; ch < ch1; ch += 2) {
    const hasB = ch + 1 < ch1;
    pair(h, P, B, phiKT, vT, nb, q0, phiQT, accT, dv, ch / w1, ch % w1, hasB ? (ch + 1) / w1 : -1, hasB ? (ch + 1) % w1 : 0, X, Y, yBlocks, tmp, plan);
  }
}

function pair(
  h: usize, P: i32, B: i32,
  phiKT: usize, vT: usize, nb: i32, q0: i32, phiQT: usize, accT: usize, dv: i32,
  ra: i32, ca: i32, rb: i32, cb: i32,
  X: usize, Y: usize, yBlocks: i32, tmp: usize, plan: usize,
): void {
  if (P <= 0 || nb <= q0) return;
  const N = 2 * B;
  const blk = <usize>N << 4;
  const nq = nb - q0;
  const blocks = (nb + B - 1) / B;
  const rStart = max(0, q0 / B - 1);
  const sStart = max(0, rStart - (P - 1));
  const nIn = blocks - sStart;
  const nb8 = <usize>nb << 3;
  const hasB = rb >= 0;
  const ka = phiKT + <usize>ra * nb8;
  const va = ca < dv ? vT + <usize>ca * nb8 : 0;
  const kb = hasB ? phiKT + <usize>rb * nb8 : 0;
  const vb = hasB && cb < dv ? vT + <usize>cb * nb8 : 0;
  const input = tmp;

  // forward transforms of the input blocks
  for (let s = sStart; s < blocks; s++) {
    const j0 = s * B;
    const len = min(nb, j0 + B) - j0;
    const o = <usize>j0 << 3;
    let u = 0;
    for (; u + 2 <= len; u += 2) {
      const uo = o + (<usize>u << 3);
      let xa = v128.load(ka + uo);
      if (va != 0) xa = f64x2.mul(xa, v128.load(va + uo));
      let xb = f64x2.splat(0);
      if (hasB) {
        xb = v128.load(kb + uo);
        if (vb != 0) xb = f64x2.mul(xb, v128.load(vb + uo));
      }
      v128.store(input + (<usize>u << 4), v128.shuffle<f64>(xa, xb, 0, 2));
      v128.store(input + (<usize>u << 4), v128.shuffle<f64>(xa, xb, 1, 3), 16);
    }
    for (; u < len; u++) {
      const uo = o + (<usize>u << 3);
      let xa = load<f64>(ka + uo);
      if (va != 0) xa *= load<f64>(va + uo);
      let xb: f64 = 0;
      if (hasB) {
        xb = load<f64>(kb + uo);
        if (vb != 0) xb *= load<f64>(vb + uo);
      }
      store<f64>(input + (<usize>u << 4), xa);
      store<f64>(input + (<usize>u << 4), xb, 8);
    }
    memory.fill(input + (<usize>len << 4), 0, blk - (<usize>len << 4));
    fftForward(plan, N, X + <usize>(s - sStart) * blk, input);
  }

  // output blocks, yBlocks spectra at a time: inverse, overlap-add (rows of block r take the first half of y_r
  // plus the second half of y_{r-1}), contract
  let cur = tmp;
  let prev = tmp + blk;
  memory.fill(prev, 0, blk);
  const nq8 = <usize>nq << 3;
  const qa = phiQT + <usize>ra * nq8;
  const aa = accT + <usize>ca * nq8;
  const qb = hasB ? phiQT + <usize>rb * nq8 : 0;
  const ab = hasB ? accT + <usize>cb * nq8 : 0;
  const halfBytes = <usize>B << 4;
  for (let r1 = rStart; r1 < blocks; r1 += yBlocks) {
    const ny = min(yBlocks, blocks - r1);
    spectralConv(Y, X, h, N, nIn, P, ny, r1 - sStart);
    for (let r = r1; r < r1 + ny; r++) {
      fftInverse(plan, N, cur, Y + <usize>(r - r1) * blk);
      const base = r * B;
      const bLo = max(q0, base);
      const bHi = min(nb, base + B);
      let b = bLo;
      // two rows at a time: (a, b) lanes of rows b, b+1 regrouped into (a_b, a_b+1) and (b_b, b_b+1), so the
      // multiply-adds run in f64x2 (the same operations per element as the scalar tail: identical bits)
      for (; b + 2 <= bHi; b += 2) {
        const yo = <usize>(b - base) << 4;
        const t0 = f64x2.add(v128.load(cur + yo), v128.load(prev + halfBytes + yo));
        const t1 = f64x2.add(v128.load(cur + yo, 16), v128.load(prev + halfBytes + yo, 16));
        const qo = <usize>(b - q0) << 3;
        v128.store(aa + qo, f64x2.add(v128.load(aa + qo), f64x2.mul(v128.load(qa + qo), v128.shuffle<f64>(t0, t1, 0, 2))));
        if (hasB) v128.store(ab + qo, f64x2.add(v128.load(ab + qo), f64x2.mul(v128.load(qb + qo), v128.shuffle<f64>(t0, t1, 1, 3))));
      }
      for (; b < bHi; b++) {
        const yo = <usize>(b - base) << 4;
        // (a, b) parts of y + carry in one add
        const t = f64x2.add(v128.load(cur + yo), v128.load(prev + halfBytes + yo));
        const qo = <usize>(b - q0) << 3;
        store<f64>(aa + qo, load<f64>(aa + qo) + load<f64>(qa + qo) * f64x2.extract_lane(t, 0));
        if (hasB) store<f64>(ab + qo, load<f64>(ab + qo) + load<f64>(qb + qo) * f64x2.extract_lane(t, 1));
      }
      const sw = cur;
      cur = prev;
      prev = sw;
    }
  }
}
