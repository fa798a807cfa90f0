// What exactness across machines depends on outside the WASM kernels (DESIGN section 11): the JS engine's
// Math.exp and Math.log (the sampler's softmax, the forward pass's SiLU). They are not correctly rounded and
// differ between engines and versions: measured, V8 in Node 20 and in Chromium 156 disagree in the last bit
// on ~10% of exp arguments and ~7% of log arguments (test/browser-sessions.test.ts). A checkpoint records
// this fingerprint, so a session moved to a runtime whose arithmetic differs is stated, never silent.

/** FNV-1a (64-bit, as two 32-bit halves) over the float64 bits of Math.exp / Math.log at fixed arguments. */
export function arithmeticFingerprint(): string {
  const v = new Float64Array(1);
  const w = new Uint32Array(v.buffer);
  let h1 = 0x811c9dc5;
  let h2 = 0xcbf29ce4;
  const mix = (x: number): void => {
    v[0] = x;
    for (let k = 0; k < 2; k++) {
      h1 = Math.imul(h1 ^ w[k]!, 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ w[k]! ^ h1, 0x01000193) >>> 0;
    }
  };
  // arguments spread over what the sampler (<= 0) and SiLU (exp(-u)) and a log see; 1,024 of each is enough
  // to tell engines apart that differ on a few per cent of arguments
  for (let i = 0; i < 1024; i++) {
    mix(Math.exp(-60 * (i / 1024) - 1e-7 * i));
    mix(Math.exp(30 - 60 * (i / 1024) + 1e-9 * i));
    mix(Math.log(1e-6 + 10 * (i / 1024)));
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}
