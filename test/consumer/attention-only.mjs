// (e) What a bundle that uses only attention() costs: minified by esbuild, its size is reported and its
// inputs must not include msgpackr (the snapshot codec's dependency).
import { attention } from 'toeplitz-attention';

globalThis.tzaAttention = attention;
