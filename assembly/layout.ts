// Memory layout of one workspace (every workspace instantiates this module with its own imported memory).
//
//   [0, STATIC_END)           static data of the module (AssemblyScript's Math tables; placed at 1024 by asc)
//   [SCRATCH, HEADER_BYTES)   fixed kernel scratch: A-form weight chunks, GEMM packed panels
//   [HEADER_BYTES, ...)       the workspace's own arrays (bump allocator in src/backend/wasm.ts), and FFT plans
//                             (twiddles, bit-reversal table) allocated from the top down
//
// The scratch is private to one kernel call at a time (calls are synchronous; a workspace is not shared), so
// the kernels never allocate and the JS side never has to size scratch per call.

/** Static data must end below this (checked by the test suite through staticEnd()). */
export const STATIC_END: usize = 4096;

/** Keys per chunk of the A-form weight phase. */
export const AFORM_JC: i32 = 512;
/** [AFORM_JC][4] f64: weights of up to four queries against one chunk of keys. */
export const AFORM_W: usize = STATIC_END;

/** GEMM blocking: depth of a packed panel, rows of a packed block of a. */
export const GEMM_KC: i32 = 256;
export const GEMM_MC: i32 = 64;
/** [GEMM_MC / 4][GEMM_KC][4] f64: a block of a, packed in 4-row panels. */
export const GEMM_A: usize = AFORM_W + <usize>(AFORM_JC * 4 * 8);
/** [GEMM_KC][4] f64: a 4-column panel of b. */
export const GEMM_B: usize = GEMM_A + <usize>(GEMM_MC * GEMM_KC * 8);
/** [4][4] f64: an edge tile of c. */
export const GEMM_T: usize = GEMM_B + <usize>(GEMM_KC * 4 * 8);

/** spectralConv packs four bins of every block here (64 bytes per block); it shares the GEMM scratch. */
export const SPEC_S: usize = GEMM_A;
export const SPEC_BYTES: usize = <usize>(GEMM_MC * GEMM_KC * 8);

/** [4][2] f64: per-row factors of a block of PRF rows. */
export const PRF_F: usize = GEMM_T + 128;

/** First byte the JS allocator may hand out (a multiple of 64). */
export const HEADER: usize = (PRF_F + 64 + 63) & ~<usize>63;
