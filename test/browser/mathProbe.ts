// The JS arithmetic a session's continuation depends on outside the WASM kernels: Math.exp in the sampler's
// softmax (arguments (logit - max) / temperature <= 0) and in the forward pass's SiLU (exp(-u)), Math.log,
// Math.sqrt (rmsnorm). Run in Node and in Chromium on the same arguments; any differing bit shows that a
// session moving between the two engines could continue differently.
/** results: [count] float64 values, in a fixed order of functions and arguments. */
export function mathProbe(): Float64Array {
  const n = 40_000;
  const out = new Float64Array(5 * n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const t = i / n;
    out[k++] = Math.exp(-60 * t - 1e-7 * i); // sampler softmax: (logit - max) / temperature in [-60, 0]
    out[k++] = Math.exp(30 - 60 * t + 1e-9 * i); // silu's exp(-u), u in [-30, 30]
    out[k++] = Math.log(1e-6 + 10 * t); // log over (0, 10]
    out[k++] = Math.sqrt(1e-3 + 1000 * t); // rmsnorm (IEEE: correctly rounded everywhere)
    out[k++] = Math.exp(-0.5 * Math.sin(i) * 20); // scattered arguments
  }
  return out;
}
