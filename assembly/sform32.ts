// The S-form's channel convolutions in float32 (the float32 twin of sform.ts; dtype 'float32' of attention()).
// Two real channels a, b ride in one complex transform; per channel pair: fill x = xa + i xb for every input block
// (first half only: the second is the zero padding) and transform (fft32Forward, bit-reversed spectra); every output
// spectrum Y_r = sum_p X_{r-p} H_p (spectralConv32); inverse-transform each (fft32Inverse, natural order, in place),
// overlap-add the previous block's second half, and contract with phiQ into accT.
//   channel c of U is phiK[:, r] * v[:, col] (col < dv) or phiK[:, r] (col = dv, the denominator).
// Layouts (column-major float32): phiKT [m, nb], vT [dv, nb], phiQT [m, nq], accT [dv + 1, nq], nq = nb - q0.
// Kernel spectra h are packed by chunks of 8 bins: [N / 8][P][re 0..3, im 0..3, re 4..7, im 4..7] (64 bytes per
// partition per chunk), bit-reversed bin order, scaled by 1/N (src/backend/wasm.ts kernelSpectra32 writes them).
import { fft32ForwardChannels, fft32ForwardTo, fft32Inverse } from './fft32';
import { SPEC_BYTES, SPEC_S } from './layout';

/**
 * Y[r] = sum_p X[r0 + r - p] H[p] over p in [0, P) with 0 <= r0 + r - p < nx, for r < ny. Y: [ny][n] complex float32
 * interleaved; H packed by chunks (see above); X: [nx][n] interleaved (xPacked 0) or packed by chunks as H
 * ([n / 8][nx][64 bytes], fft32ForwardTo's output). n a multiple of 8.
 */
export function spectralConv32(y: usize, x: usize, h: usize, n: i32, nx: i32, P: i32, ny: i32, r0: i32, xPacked: i32): void {
  if (ny <= 0 || n <= 0) return;
  const blk = <usize>n << 3;
  const packX = xPacked != 0 || <usize>nx * 64 <= SPEC_BYTES;
  const zero = f32x4.splat(0);
  const hChunk = <usize>P << 6;
  for (let k: usize = 0; k < blk; k += 64) {
    // X: eight bins of every block packed as H is (blocks are a power of two apart: read in place they collide in cache)
    const hs0 = h + (k >> 6) * hChunk;
    const xs0 = xPacked != 0 ? x + (k >> 6) * (<usize>nx << 6) : SPEC_S;
    if (packX && xPacked == 0) pack8(SPEC_S, x + k, blk, nx);
    for (let half: usize = 0; half < 64; half += 32) {
      const hs = hs0 + half;
      let r = 0;
      if (packX) {
        const xs = xs0 + half;
        // two outputs at a time: B = r + 1 at partition p reads the block A = r read at p - 1, and both read H_p
        for (; r + 2 <= ny; r += 2) {
          const loA = max(0, r0 + r - nx + 1);
          const hiA = min(P - 1, r0 + r);
          const loB = max(0, r0 + r + 2 - nx);
          const hiB = min(P - 1, r0 + r + 1);
          let aR = zero, aI = zero, bR = zero, bI = zero;
          let p = loA;
          if (p < loB && p <= hiA) {
            const xo = xs + (<usize>(r0 + r - p) << 6);
            const ho = hs + (<usize>p << 6);
            const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
            aR = f32x4.add(aR, f32x4.sub(f32x4.mul(xr, hr), f32x4.mul(xi, hi)));
            aI = f32x4.add(aI, f32x4.add(f32x4.mul(xr, hi), f32x4.mul(xi, hr)));
            p++;
          }
          p = max(p, loB);
          const both = min(hiA, hiB);
          if (p <= both) {
            // pointers stepped, not recomputed: A's block moves down and H's up by one per partition
            let xo = xs + (<usize>(r0 + r - p) << 6);
            let ho = hs + (<usize>p << 6);
            const hEnd = hs + (<usize>both << 6);
            let bxr = v128.load(xo, 64), bxi = v128.load(xo, 80);
            for (; ho <= hEnd; ho += 64, xo -= 64) {
              const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
              aR = f32x4.add(aR, f32x4.sub(f32x4.mul(xr, hr), f32x4.mul(xi, hi)));
              aI = f32x4.add(aI, f32x4.add(f32x4.mul(xr, hi), f32x4.mul(xi, hr)));
              bR = f32x4.add(bR, f32x4.sub(f32x4.mul(bxr, hr), f32x4.mul(bxi, hi)));
              bI = f32x4.add(bI, f32x4.add(f32x4.mul(bxr, hi), f32x4.mul(bxi, hr)));
              bxr = xr;
              bxi = xi;
            }
            p = both + 1;
          }
          for (; p <= hiB; p++) {
            if (p < loB) continue;
            const xo = xs + (<usize>(r0 + r + 1 - p) << 6);
            const ho = hs + (<usize>p << 6);
            const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
            bR = f32x4.add(bR, f32x4.sub(f32x4.mul(xr, hr), f32x4.mul(xi, hi)));
            bI = f32x4.add(bI, f32x4.add(f32x4.mul(xr, hi), f32x4.mul(xi, hr)));
          }
          const ya = y + <usize>r * blk + k + half;
          v128.store(ya, v128.shuffle<f32>(aR, aI, 0, 4, 1, 5));
          v128.store(ya, v128.shuffle<f32>(aR, aI, 2, 6, 3, 7), 16);
          const yb = ya + blk;
          v128.store(yb, v128.shuffle<f32>(bR, bI, 0, 4, 1, 5));
          v128.store(yb, v128.shuffle<f32>(bR, bI, 2, 6, 3, 7), 16);
        }
      }
      for (; r < ny; r++) {
        const lo = max(0, r0 + r - nx + 1);
        const hi = min(P - 1, r0 + r);
        let aR = zero, aI = zero;
        if (packX) {
          const xs = xs0 + half;
          for (let p = lo; p <= hi; p++) {
            const xo = xs + (<usize>(r0 + r - p) << 6);
            const ho = hs + (<usize>p << 6);
            const xr = v128.load(xo), xi = v128.load(xo, 16), hr = v128.load(ho), hi = v128.load(ho, 16);
            aR = f32x4.add(aR, f32x4.sub(f32x4.mul(xr, hr), f32x4.mul(xi, hi)));
            aI = f32x4.add(aI, f32x4.add(f32x4.mul(xr, hi), f32x4.mul(xi, hr)));
          }
        } else {
          for (let p = lo; p <= hi; p++) {
            const xo = x + <usize>(r0 + r - p) * blk + k + half;
            const v0 = v128.load(xo), v1 = v128.load(xo, 16);
            const xr = v128.shuffle<f32>(v0, v1, 0, 2, 4, 6), xi = v128.shuffle<f32>(v0, v1, 1, 3, 5, 7);
            const ho = hs + (<usize>p << 6);
            const hr = v128.load(ho), hi = v128.load(ho, 16);
            aR = f32x4.add(aR, f32x4.sub(f32x4.mul(xr, hr), f32x4.mul(xi, hi)));
            aI = f32x4.add(aI, f32x4.add(f32x4.mul(xr, hi), f32x4.mul(xi, hr)));
          }
        }
        const ya = y + <usize>r * blk + k + half;
        v128.store(ya, v128.shuffle<f32>(aR, aI, 0, 4, 1, 5));
        v128.store(ya, v128.shuffle<f32>(aR, aI, 2, 6, 3, 7), 16);
      }
    }
  }
}

/** dst[j] = eight bins of block j of src (stride blk bytes), re and im split: [re0..3][im0..3][re4..7][im4..7]. */
@inline function pack8(dst: usize, src: usize, blk: usize, count: i32): void {
  for (let j = 0; j < count; j++) {
    const v0 = v128.load(src);
    const v1 = v128.load(src, 16);
    const v2 = v128.load(src, 32);
    const v3 = v128.load(src, 48);
    v128.store(dst, v128.shuffle<f32>(v0, v1, 0, 2, 4, 6));
    v128.store(dst, v128.shuffle<f32>(v0, v1, 1, 3, 5, 7), 16);
    v128.store(dst, v128.shuffle<f32>(v2, v3, 0, 2, 4, 6), 32);
    v128.store(dst, v128.shuffle<f32>(v2, v3, 1, 3, 5, 7), 48);
    src += blk;
    dst += 64;
  }
}

/**
 * Channels [ch0, ch1) in pairs, in column-major order: channel ch = col m + r (feature r, value column col, col = dv
 * the denominator), so a pair shares its value column and adds into one row of accT (m even: always). The last pair
 * may be a single channel. h: packed kernel spectra (P partitions, N = 2B bins); X: nIn blocks of N complex (packed by
 * chunks); Y: yBlocks blocks of N complex; tmp: 2N complex (the input half, then the overlap carry; then a
 * transform's work block). All float32.
 */
export function sformChannels32(
  h: usize, P: i32, B: i32,
  phiKT: usize, vT: usize, nb: i32, q0: i32, phiQT: usize, accT: usize, dv: i32, m: i32,
  ch0: i32, ch1: i32,
  X: usize, Y: usize, yBlocks: i32, tmp: usize, plan: usize,
): void {
  for (let ch = ch0; ch < ch1; ch += 2) {
    const hasB = ch + 1 < ch1;
    pair(h, P, B, phiKT, vT, nb, q0, phiQT, accT, dv, ch % m, ch / m, hasB ? (ch + 1) % m : -1, hasB ? (ch + 1) / m : 0, X, Y, yBlocks, tmp, plan);
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
  const blk = <usize>N << 3;
  const halfBytes = <usize>B << 3;
  const nq = nb - q0;
  const blocks = (nb + B - 1) / B;
  const rStart = max(0, q0 / B - 1);
  const sStart = max(0, rStart - (P - 1));
  const nIn = blocks - sStart;
  const nb4 = <usize>nb << 2;
  const hasB = rb >= 0;
  const ka = phiKT + <usize>ra * nb4;
  const va = ca < dv ? vT + <usize>ca * nb4 : 0;
  const kb = hasB ? phiKT + <usize>rb * nb4 : 0;
  const vb = hasB && cb < dv ? vT + <usize>cb * nb4 : 0;
  const input = tmp;
  const zero = f32x4.splat(0);

  // forward transforms of the input blocks (first halves; the second halves are the zero padding)
  for (let s = sStart; s < blocks; s++) {
    const j0 = s * B;
    const len = min(nb, j0 + B) - j0;
    const o = <usize>j0 << 2;
    if (len == B && B >= 8) {
      // a whole block: the transform forms the channels itself
      fft32ForwardChannels(plan, N, input + blk, ka + o, va != 0 ? va + o : 0, kb != 0 ? kb + o : 0, vb != 0 ? vb + o : 0, X + (<usize>(s - sStart) << 6), <usize>nIn << 6);
      continue;
    }
    let u = 0;
    for (; u + 4 <= len; u += 4) {
      const uo = o + (<usize>u << 2);
      let xa = v128.load(ka + uo);
      if (va != 0) xa = f32x4.mul(xa, v128.load(va + uo));
      let xb = zero;
      if (hasB) {
        xb = v128.load(kb + uo);
        if (vb != 0) xb = f32x4.mul(xb, vb == va ? v128.load(va + uo) : v128.load(vb + uo));
      }
      const io = input + (<usize>u << 3);
      v128.store(io, v128.shuffle<f32>(xa, xb, 0, 4, 1, 5));
      v128.store(io, v128.shuffle<f32>(xa, xb, 2, 6, 3, 7), 16);
    }
    for (; u < len; u++) {
      const uo = o + (<usize>u << 2);
      let xa = load<f32>(ka + uo);
      if (va != 0) xa *= load<f32>(va + uo);
      let xb: f32 = 0;
      if (hasB) {
        xb = load<f32>(kb + uo);
        if (vb != 0) xb *= load<f32>(vb + uo);
      }
      store<f32>(input + (<usize>u << 3), xa);
      store<f32>(input + (<usize>u << 3), xb, 4);
    }
    if (len < B) memory.fill(input + (<usize>len << 3), 0, halfBytes - (<usize>len << 3));
    fft32ForwardTo(plan, N, input + blk, input, 1, X + (<usize>(s - sStart) << 6), <usize>nIn << 6);
  }

  // output blocks, yBlocks spectra at a time: inverse in place, overlap-add (rows of block r take the first half
  // of y_r plus the second half of y_{r-1}, kept in `carry`), contract
  const carry = tmp;
  memory.fill(carry, 0, halfBytes);
  const nq4 = <usize>nq << 2;
  const qa = phiQT + <usize>ra * nq4;
  const aa = accT + <usize>ca * nq4;
  const qb = hasB ? phiQT + <usize>rb * nq4 : 0;
  const ab = hasB ? accT + <usize>cb * nq4 : 0;
  for (let r1 = rStart; r1 < blocks; r1 += yBlocks) {
    const ny = min(yBlocks, blocks - r1);
    spectralConv32(Y, X, h, N, nIn, P, ny, r1 - sStart, 1);
    for (let r = r1; r < r1 + ny; r++) {
      const yb = Y + <usize>(r - r1) * blk;
      fft32Inverse(plan, N, yb);
      // the previous block's second half: still in Y within this batch of spectra, else its copy in `carry`
      const prev = r > r1 ? yb - blk + halfBytes : carry;
      const base = r * B;
      const bLo = max(q0, base);
      const bHi = min(nb, base + B);
      let b = bLo;
      if (ab == aa) {
        // both channels add into one row of accT (one value column): one load and store of it
        for (; b + 4 <= bHi; b += 4) {
          const yo = <usize>(b - base) << 3;
          const t0 = f32x4.add(v128.load(yb + yo), v128.load(prev + yo));
          const t1 = f32x4.add(v128.load(yb + yo, 16), v128.load(prev + yo, 16));
          const qo = <usize>(b - q0) << 2;
          const sa = f32x4.mul(v128.load(qa + qo), v128.shuffle<f32>(t0, t1, 0, 2, 4, 6));
          const sb = f32x4.mul(v128.load(qb + qo), v128.shuffle<f32>(t0, t1, 1, 3, 5, 7));
          v128.store(aa + qo, f32x4.add(v128.load(aa + qo), f32x4.add(sa, sb)));
        }
      }
      // four rows at a time: (a, b) lanes of rows b..b+3 regrouped into a_b..a_b+3 and b_b..b_b+3
      for (; b + 4 <= bHi; b += 4) {
        const yo = <usize>(b - base) << 3;
        const t0 = f32x4.add(v128.load(yb + yo), v128.load(prev + yo));
        const t1 = f32x4.add(v128.load(yb + yo, 16), v128.load(prev + yo, 16));
        const qo = <usize>(b - q0) << 2;
        v128.store(aa + qo, f32x4.add(v128.load(aa + qo), f32x4.mul(v128.load(qa + qo), v128.shuffle<f32>(t0, t1, 0, 2, 4, 6))));
        if (hasB) v128.store(ab + qo, f32x4.add(v128.load(ab + qo), f32x4.mul(v128.load(qb + qo), v128.shuffle<f32>(t0, t1, 1, 3, 5, 7))));
      }
      for (; b < bHi; b++) {
        const yo = <usize>(b - base) << 3;
        const qo = <usize>(b - q0) << 2;
        store<f32>(aa + qo, load<f32>(aa + qo) + load<f32>(qa + qo) * (load<f32>(yb + yo) + load<f32>(prev + yo)));
        if (hasB) store<f32>(ab + qo, load<f32>(ab + qo) + load<f32>(qb + qo) * (load<f32>(yb + yo, 4) + load<f32>(prev + yo, 4)));
      }
    }
    if (r1 + ny < blocks) memory.copy(carry, Y + <usize>(ny - 1) * blk + halfBytes, halfBytes);
  }
}

/** out: [cols, rows] float32 = transpose of x: [rows, cols] float64 (rounded to nearest), in 4 x 4 tiles of 64-row bands. */
export function transpose32(x: usize, rows: i32, cols: i32, out: usize): void {
  const rows4 = rows & ~3;
  const cols4 = cols & ~3;
  const xr = <usize>cols << 3; // bytes per row of x
  const orow = <usize>rows << 2; // bytes per row of out
  for (let i0 = 0; i0 < rows4; i0 += 64) {
    const i1 = min(rows4, i0 + 64);
    for (let c = 0; c < cols4; c += 4) {
      for (let i = i0; i < i1; i += 4) {
        const p = x + <usize>i * xr + (<usize>c << 3);
        const R0 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(p)), f32x4.demote_f64x2_zero(v128.load(p, 16)), 0, 1, 4, 5);
        const R1 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(p + xr)), f32x4.demote_f64x2_zero(v128.load(p + xr, 16)), 0, 1, 4, 5);
        const R2 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(p + 2 * xr)), f32x4.demote_f64x2_zero(v128.load(p + 2 * xr, 16)), 0, 1, 4, 5);
        const R3 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(p + 3 * xr)), f32x4.demote_f64x2_zero(v128.load(p + 3 * xr, 16)), 0, 1, 4, 5);
        const t0 = v128.shuffle<f32>(R0, R1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(R2, R3, 0, 4, 1, 5);
        const t2 = v128.shuffle<f32>(R0, R1, 2, 6, 3, 7);
        const t3 = v128.shuffle<f32>(R2, R3, 2, 6, 3, 7);
        const o = out + <usize>c * orow + (<usize>i << 2);
        v128.store(o, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
        v128.store(o + orow, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
        v128.store(o + 2 * orow, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
        v128.store(o + 3 * orow, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
      }
    }
  }
  // edges: the last rows % 4 rows, and the last cols % 4 columns of every row
  for (let i = 0; i < rows; i++) {
    const c0 = i < rows4 ? cols4 : 0;
    for (let c = c0; c < cols; c++) store<f32>(out + <usize>c * orow + (<usize>i << 2), <f32>load<f64>(x + <usize>i * xr + (<usize>c << 3)));
  }
}
