// Causal Toeplitz kernels: c(t) = exp(b(t)) for lags t >= 0, from a bias table and a tail rule.
// Both sides of an RPE reduce to this form (the future side is a causal kernel over the reversed sequence).

/** How b(t) continues past the table: constant, zero weight (window), or linear decay in log space. */
export type ResolvedTail = { kind: 'clip' } | { kind: 'zero' } | { kind: 'decay'; rate: number };

/** A causal kernel over lags t >= 0. */
export interface CausalKernel {
  /** logBias: [K] b(0..K-1); entries may be -Infinity (c = 0), never NaN or +Infinity. */
  readonly logBias: Float64Array;
  readonly tail: ResolvedTail;
}

/** b(t) for any lag t >= 0. */
export function kernelLogAt(kernel: CausalKernel, t: number): number {
  const K = kernel.logBias.length;
  if (t < K) return kernel.logBias[t]!;
  const last = kernel.logBias[K - 1]!;
  switch (kernel.tail.kind) {
    case 'clip':
      return last;
    case 'zero':
      return -Infinity;
    case 'decay':
      return last - kernel.tail.rate * (t - K + 1);
  }
}

/** Largest finite bias the kernel can produce (the table holds it: tails never exceed b(K-1)); -Infinity if none. */
export function kernelMaxLog(kernel: CausalKernel): number {
  let best = -Infinity;
  for (let t = 0; t < kernel.logBias.length; t++) {
    const b = kernel.logBias[t]!;
    if (b > best) best = b;
  }
  return best;
}

/**
 * Kernel values shifted by a common log offset, ready for the hot loops:
 * near: [K] c(t) = exp(b(t) - shift) for t < K; far-field weight cFar = c(K-1) and ratio gamma,
 * so that for t >= K, c(t) = cFar * gamma^(t-K+1). `hasFar` is false for the 'zero' tail.
 */
export interface ShiftedKernel {
  readonly near: Float64Array; // [K]
  readonly cFar: number;
  readonly gamma: number;
  readonly hasFar: boolean;
  /** index of the first lag with c(t) > 0 (K when the near field is all zero) */
  readonly firstNonzero: number;
}

export function shiftKernel(kernel: CausalKernel, shift: number): ShiftedKernel {
  const K = kernel.logBias.length;
  const near = new Float64Array(K);
  let firstNonzero = K;
  for (let t = 0; t < K; t++) {
    const c = Math.exp(kernel.logBias[t]! - shift);
    near[t] = c;
    if (c > 0 && firstNonzero === K) firstNonzero = t;
  }
  const tail = kernel.tail;
  const cFar = near[K - 1]!;
  const hasFar = tail.kind !== 'zero' && cFar > 0;
  const gamma = tail.kind === 'decay' ? Math.exp(-tail.rate) : 1;
  return { near, cFar, gamma, hasFar, firstNonzero };
}
