// Entry of the WebAssembly SIMD module (compiled by scripts/build-wasm.mjs into src/backend/wasmBinary.ts).
// Every export takes byte offsets into the imported memory; see layout.ts for the memory map.
import { HEADER } from './layout';

export { aformRows, aformRing } from './aform';
export { farAbsorb, farContract, scaleFar } from './far';
export { gemm, gemmPacked, gemmPacked32, gemvPacked, gemvPacked32, packPanels, packedBytes } from './gemm';
export { prfLogits } from './prf';
export { fftPlanBytes, fftInit, fftForward, fftInverse, spectralMac, spectralConv } from './fft';

/** First byte of memory the JS side may allocate. */
export function headerBytes(): usize {
  return HEADER;
}

/** End of the module's static data (must not reach the kernel scratch). */
export function staticEnd(): usize {
  return __heap_base;
}
export { sformChannels } from './sform';
export { expShift, expRows } from './exp';
export { swiglu, expFdlibm, expPairs } from './swiglu';
// float32 (attention()'s dtype 'float32'): FFT without permutation passes, and the S-form's channel convolutions
export { fft32PlanBytes, fft32Init, fft32Forward, fft32Inverse } from './fft32';
export { spectralConv32, sformChannels32, transpose32 } from './sform32';
