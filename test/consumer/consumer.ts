// (b) A TypeScript consumer of the installed package. scripts/consumer-check.mjs type-checks it with the
// consumer's strictest usual flags (strict, noUnusedLocals, exactOptionalPropertyTypes, no skipLibCheck)
// under `module: node16` and under `moduleResolution: bundler`, with no @types/node.
import ndarray, { type NdArray } from 'ndarray';
import {
  attention,
  referenceAttention,
  Decoder,
  ConfigError,
  ToeplitzAttentionError,
  drawProjection,
  rpe,
  type AttentionConfig,
  type FeatureSpec,
} from 'toeplitz-attention';
import { encodeSnapshot, decodeSnapshot, inspectSnapshot, saveSnapshot, loadSnapshot } from 'toeplitz-attention/codec';
import { attend, attendChunks, type Attended, type Token } from 'toeplitz-attention/rx';
import { from, type Observable } from 'rxjs';

const features: FeatureSpec = { kind: 'prf', count: 8, seed: 1, projection: new Float32Array(8 * 4) };
const config: AttentionConfig = {
  heads: 2,
  keyDim: 4,
  valueDim: 3,
  causal: true,
  features,
  rpe: [{ past: { bias: [0, -1], tail: 'clip' } }, { past: { bias: [0, -2], tail: { decay: 0.5 } } }],
};
const q: NdArray<Float64Array> = ndarray(new Float64Array(2 * 5 * 4), [2, 5, 4]);
const v: NdArray<Float32Array> = ndarray(new Float32Array(2 * 5 * 3), [2, 5, 3]);

const z: NdArray<Float64Array> = attention(config, q, q, v, { method: 'fft' });
const zr: NdArray<Float64Array> = referenceAttention(config, q, q, v);
const first: number = z.get(0, 0, 0) - zr.get(0, 0, 0);

const dec = new Decoder(config, { method: 'direct' });
const zt: NdArray<Float64Array> = dec.step(q.pick(null, 0, null), q.pick(null, 0, null), v.pick(null, 0, null));
const position: number = dec.position;
const bytes: Uint8Array = dec.snapshot();
const restored: Decoder = Decoder.restore(bytes);
const viaCodec: Decoder = decodeSnapshot(encodeSnapshot(restored));
const valid: boolean = inspectSnapshot(bytes).checksum.valid;
const files = (path: string): Decoder => {
  saveSnapshot(path, dec);
  return loadSnapshot(path);
};

const tokens: Observable<Token> = from([{ q: q.pick(null, 0, null), k: q.pick(null, 0, null), v: v.pick(null, 0, null) }]);
const outputs: Observable<Attended> = tokens.pipe(attend(config));
const chunked = from([{ q, k: q, v }]).pipe(attendChunks(config));

const w: Float64Array = drawProjection(8, 4, 1);
const preset = rpe.decay(0.1);

function isConfigError(e: unknown): string | undefined {
  return e instanceof ConfigError && e instanceof ToeplitzAttentionError ? e.name : undefined;
}

// @ts-expect-error 'softmax' is not a feature kind
const wrongKind: AttentionConfig = { ...config, features: { kind: 'softmax' } };
// @ts-expect-error method must be 'auto' | 'fft' | 'direct'
attention(config, q, q, v, { method: 'fast' });

export { first, zt, position, viaCodec, valid, files, outputs, chunked, w, preset, isConfigError, wrongKind };
