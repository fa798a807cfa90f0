// SwiGLU's gate, the plain kernel (the WASM backend's is assembly/swiglu.ts: the same bits in V8, whose Math.exp
// it reproduces).

/** h1[i] <- silu(h1[i]) * h3[i] for i < len; silu(u) = u / (1 + exp(-u)). h1, h3: [len] (rows of the FFN block). */
export function swiglu(h1: Float64Array, h3: Float64Array, len: number): void {
  for (let i = 0; i < len; i++) {
    const u = h1[i]!;
    h1[i] = (u / (1 + Math.exp(-u))) * h3[i]!;
  }
}
