// Far field: F (m x (dv + 1), row-major) with its Kahan compensation. Every element sees exactly the operations
// of the JS loop in the same order (SIMD lanes are independent elements, no fused multiply-add), so the results
// are bit-identical to the JS backend.

// one Kahan step of one or two elements; gamma applied after (as the JS scaleFar pass does); far32.ts uses them too
@inline export function kahan2(sp: usize, cp: usize, u: v128, g: v128, scale: bool): void {
  const y = f64x2.sub(u, v128.load(cp));
  const s = v128.load(sp);
  const t = f64x2.add(s, y);
  let comp = f64x2.sub(f64x2.sub(t, s), y);
  let sum = t;
  if (scale) {
    comp = f64x2.mul(comp, g);
    sum = f64x2.mul(sum, g);
  }
  v128.store(cp, comp);
  v128.store(sp, sum);
}

@inline export function kahan1(sp: usize, cp: usize, u: f64, g: f64, scale: bool): void {
  const y = u - load<f64>(cp);
  const s = load<f64>(sp);
  const t = s + y;
  let comp = (t - s) - y;
  let sum = t;
  if (scale) {
    comp = comp * g;
    sum = sum * g;
  }
  store<f64>(cp, comp);
  store<f64>(sp, sum);
}

@inline function absorb(sum: usize, comp: usize, gamma: f64, k: usize, v: usize, m: i32, dv: i32, scale: bool): void {
  const w18 = <usize>(dv + 1) << 3;
  const g = f64x2.splat(gamma);
  for (let r = 0; r < m; r++) {
    const kr = load<f64>(k + (<usize>r << 3));
    const kv = f64x2.splat(kr);
    const sp = sum + <usize>r * w18;
    const cp = comp + <usize>r * w18;
    let col = 0;
    for (; col + 2 <= dv; col += 2) {
      const o = <usize>col << 3;
      kahan2(sp + o, cp + o, f64x2.mul(kv, v128.load(v + o)), g, scale);
    }
    for (; col < dv; col++) {
      const o = <usize>col << 3;
      kahan1(sp + o, cp + o, kr * load<f64>(v + o), gamma, scale);
    }
    const o = <usize>dv << 3;
    kahan1(sp + o, cp + o, kr, gamma, scale);
  }
}

/** F <- gamma (F + k [v; 1]^T), compensated. k: [m], v: [dv]. */
export function farAbsorb(sum: usize, comp: usize, gamma: f64, k: usize, v: usize, m: i32, dv: i32): void {
  if (gamma != 1) absorb(sum, comp, gamma, k, v, m, dv, true);
  else absorb(sum, comp, gamma, k, v, m, dv, false);
}

/** sum <- factor sum, comp <- factor comp (len elements each). */
export function scaleFar(sum: usize, comp: usize, factor: f64, len: i32): void {
  const g = f64x2.splat(factor);
  let i = 0;
  for (; i + 2 <= len; i += 2) {
    const o = <usize>i << 3;
    v128.store(sum + o, f64x2.mul(v128.load(sum + o), g));
    v128.store(comp + o, f64x2.mul(v128.load(comp + o), g));
  }
  if (i < len) {
    const o = <usize>i << 3;
    store<f64>(sum + o, load<f64>(sum + o) * factor);
    store<f64>(comp + o, load<f64>(comp + o) * factor);
  }
}

/** acc[0 .. dv] += (cFar q)^T F (rows r with cFar q_r = 0 are skipped, as in JS). q: [m]; acc: [dv + 1]. */
export function farContract(sum: usize, cFar: f64, q: usize, m: i32, dv: i32, acc: usize): void {
  const w1 = dv + 1;
  const w18 = <usize>w1 << 3;
  let col = 0;
  for (; col + 8 <= w1; col += 8) {
    const ap = acc + (<usize>col << 3);
    let a0 = v128.load(ap);
    let a1 = v128.load(ap, 16);
    let a2 = v128.load(ap, 32);
    let a3 = v128.load(ap, 48);
    let fp = sum + (<usize>col << 3);
    for (let r = 0; r < m; r++) {
      const x = cFar * load<f64>(q + (<usize>r << 3));
      if (x != 0) {
        const xv = f64x2.splat(x);
        a0 = f64x2.add(a0, f64x2.mul(xv, v128.load(fp)));
        a1 = f64x2.add(a1, f64x2.mul(xv, v128.load(fp, 16)));
        a2 = f64x2.add(a2, f64x2.mul(xv, v128.load(fp, 32)));
        a3 = f64x2.add(a3, f64x2.mul(xv, v128.load(fp, 48)));
      }
      fp += w18;
    }
    v128.store(ap, a0);
    v128.store(ap, a1, 16);
    v128.store(ap, a2, 32);
    v128.store(ap, a3, 48);
  }
  for (; col + 2 <= w1; col += 2) {
    const ap = acc + (<usize>col << 3);
    let a0 = v128.load(ap);
    let fp = sum + (<usize>col << 3);
    for (let r = 0; r < m; r++) {
      const x = cFar * load<f64>(q + (<usize>r << 3));
      if (x != 0) a0 = f64x2.add(a0, f64x2.mul(f64x2.splat(x), v128.load(fp)));
      fp += w18;
    }
    v128.store(ap, a0);
  }
  if (col < w1) {
    const ap = acc + (<usize>col << 3);
    let a = load<f64>(ap);
    let fp = sum + (<usize>col << 3);
    for (let r = 0; r < m; r++) {
      const x = cFar * load<f64>(q + (<usize>r << 3));
      if (x != 0) a += x * load<f64>(fp);
      fp += w18;
    }
    store<f64>(ap, a);
  }
}
