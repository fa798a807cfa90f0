// Deterministic inputs shared by the Node, type and browser checks of the installed package (no RNG state:
// every value is a closed-form function of its index, so Node and the browser page build identical tensors).
import ndarray from 'ndarray';

export const heads = 2;
export const n = 24;
export const keyDim = 4;
export const valueDim = 3;

export const config = {
  heads,
  keyDim,
  valueDim,
  features: { kind: 'prf', count: 16, seed: 5 },
  rpe: { past: { bias: [0, -0.5, -1, -1.5], tail: { decay: 0.25 } } },
};

/** A [heads, n, dim] tensor with values in (-1.5, 1.5). */
export function tensor(salt, dim, length = n) {
  const data = new Float64Array(heads * length * dim);
  for (let i = 0; i < data.length; i++) data[i] = 1.5 * Math.sin(0.37 * i + 1.7 * salt) * Math.cos(0.11 * i * salt + 0.3);
  return ndarray(data, [heads, length, dim]);
}

export const q = () => tensor(1, keyDim);
export const k = () => tensor(2, keyDim);
export const v = () => tensor(3, valueDim);

/** Values equal to `c` everywhere: every output row is a weighted average of them, so exactly c (analytically). */
export const constantV = (c) => ndarray(new Float64Array(heads * n * valueDim).fill(c), [heads, n, valueDim]);

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
