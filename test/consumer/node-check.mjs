// (a) The installed package from plain `node` (no loader): every entry imports and works.
// Run inside the temporary consumer project by scripts/consumer-check.mjs; prints one JSON line.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import ndarray from 'ndarray';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention, referenceAttention, Decoder, ConfigError, ShapeError, ToeplitzAttentionError, drawProjection, rpe } from 'toeplitz-attention';
import { encodeSnapshot, decodeSnapshot, saveSnapshot, loadSnapshot, inspectSnapshot } from 'toeplitz-attention/codec';
import { attend, attendChunks } from 'toeplitz-attention/rx';
import { from, lastValueFrom, toArray } from 'rxjs';
import { config, heads, n, keyDim, valueDim, q, k, v, constantV, maxAbsDiff } from './inputs.mjs';

const report = {};

// package.json is exported; its version is what the CLI prints
const pkg = createRequire(import.meta.url)('toeplitz-attention/package.json');
report.version = pkg.version;

// attention() against the O(n^2) oracle, and against an analytic value
const z = attention(config, q(), k(), v());
assert.deepEqual(z.shape, [heads, n, valueDim]);
assert.ok(z.data instanceof Float64Array);
const ref = referenceAttention(config, q(), k(), v());
report.attentionVsReference = maxAbsDiff(z.data, ref.data);
assert.ok(report.attentionVsReference < 1e-12, `attention vs referenceAttention: ${report.attentionVsReference}`);
const zc = attention(config, q(), k(), constantV(0.75));
report.constantValues = maxAbsDiff(zc.data, new Float64Array(zc.data.length).fill(0.75));
assert.ok(report.constantValues < 1e-12);
assert.ok(Math.abs(attention(config, q(), k(), v(), { method: 'fft' }).data[17] - z.data[17]) < 1e-12);

// typed errors keep their names
try {
  attention({ ...config, heads: 0 }, q(), k(), v());
  assert.fail('a config with heads 0 was accepted');
} catch (e) {
  assert.ok(e instanceof ConfigError && e instanceof ToeplitzAttentionError, String(e));
  assert.equal(e.name, 'ConfigError');
}
const shortV = ndarray(new Float64Array(heads * (n - 1) * valueDim), [heads, n - 1, valueDim]);
assert.throws(() => attention(config, q(), k(), shortV), (e) => e instanceof ShapeError && e.name === 'ShapeError');

// Decoder: step and chunk equal attention(); snapshot + restore continue bit-identically
const dec = new Decoder(config);
const zs = new Float64Array(heads * n * valueDim);
const split = 9;
for (let p = 0; p < split; p++) {
  const out = dec.step(q().pick(null, p, null), k().pick(null, p, null), v().pick(null, p, null));
  for (let h = 0; h < heads; h++) for (let c = 0; c < valueDim; c++) zs[(h * n + p) * valueDim + c] = out.get(h, c);
}
const bytes = dec.snapshot();
assert.ok(bytes instanceof Uint8Array);
const restored = Decoder.restore(bytes);
assert.equal(restored.position, split);
const tail = (d) => d.chunk(q().lo(0, split, 0), k().lo(0, split, 0), v().lo(0, split, 0));
const a = tail(dec);
const b = tail(restored);
assert.deepEqual(Array.from(a.data), Array.from(b.data), 'restored decoder differs');
for (let h = 0; h < heads; h++) for (let p = split; p < n; p++) for (let c = 0; c < valueDim; c++) zs[(h * n + p) * valueDim + c] = a.get(h, p - split, c);
report.decoderVsAttention = maxAbsDiff(zs, z.data);
assert.ok(report.decoderVsAttention < 1e-12, `decoder vs attention: ${report.decoderVsAttention}`);

// codec: bytes and files
const again = decodeSnapshot(encodeSnapshot(restored));
assert.equal(again.position, n);
const dir = mkdtempSync(join(process.cwd(), 'out-')); // inside the consumer project: removed with it
const snap = join(dir, 'session.tza');
saveSnapshot(snap, again);
assert.equal(loadSnapshot(snap).position, n);
const info = inspectSnapshot(readFileSync(snap));
assert.equal(info.checksum.valid, true);
report.snapshotBytes = bytes.length;
report.snapshotFile = snap;

// rx: a token stream and a chunk stream give attention()'s rows
const tokens = Array.from({ length: n }, (_, p) => ({ q: q().pick(null, p, null), k: k().pick(null, p, null), v: v().pick(null, p, null) }));
const outs = await lastValueFrom(from(tokens).pipe(attend(config), toArray()));
assert.equal(outs.length, n);
let rxDiff = 0;
for (const { position, z: zt } of outs) for (let h = 0; h < heads; h++) for (let c = 0; c < valueDim; c++) rxDiff = Math.max(rxDiff, Math.abs(zt.get(h, c) - z.get(h, position, c)));
report.rxVsAttention = rxDiff;
assert.ok(rxDiff < 1e-12, `rx vs attention: ${rxDiff}`);
const chunks = await lastValueFrom(from([{ q: q(), k: k(), v: v() }]).pipe(attendChunks(config), toArray()));
assert.ok(maxAbsDiff(chunks[0].z.data, z.data) < 1e-12);

// presets and the projection are public
assert.equal(drawProjection(4, keyDim, 5).length, 4 * keyDim);
assert.ok(rpe !== undefined);

// ./model and ./model/file, when the package has them: a tiny random model through a file, logits, a session
if (process.env.TZA_HAS_MODEL === '1') {
  const { checkModelConfig, encodeModel, randomWeights } = await import('toeplitz-attention/model');
  const { loadModelFile } = await import('toeplitz-attention/model/file');
  const cfg = checkModelConfig({
    format: 'toeplitz-lm/1', vocab: 256, dim: 16, layers: 1, heads: 2, keyDim: 4, valueDim: 4, hidden: 24,
    features: { kind: 'prf', count: 8, normalize: 'l2' }, rpe: { length: 8, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true,
  });
  const path = join(dir, 'tiny.safetensors');
  writeFileSync(path, encodeModel(cfg, randomWeights(cfg, 3)));
  const model = loadModelFile(path);
  const tokens = Array.from(Buffer.from('Call me Ishmael.'));
  const logits = model.logits(tokens);
  assert.equal(logits.length, tokens.length * 256);
  const session = model.session({ seed: 1 });
  report.modelSessionVsLogits = maxAbsDiff(session.feed(tokens), logits);
  assert.ok(report.modelSessionVsLogits < 1e-9, `session.feed vs model.logits: ${report.modelSessionVsLogits}`);
  const generated = [];
  for await (const g of session.generate('', { maxTokens: 4 })) generated.push(g.token);
  assert.equal(generated.length, 4);
  if (process.env.TZA_SHIPPED_MODEL) {
    const shipped = new URL(process.env.TZA_SHIPPED_MODEL, import.meta.resolve('toeplitz-attention/package.json')); // relative to the package root
    const lm = loadModelFile(fileURLToPath(shipped));
    report.shippedModel = { path: process.env.TZA_SHIPPED_MODEL, ...lm.config };
  }
}

// inputs and the expected output for the CLI and browser checks
writeFileSync(join(dir, 'expected.json'), JSON.stringify({ z: Array.from(z.data), shape: z.shape }));
for (const [name, t] of [['q', q()], ['k', k()], ['v', v()]]) writeFileSync(join(dir, `${name}.npy`), npy(t.shape, t.data));
report.dir = dir;
console.log(JSON.stringify(report));

/** A .npy (version 1.0, little-endian float64, C order) of a tensor, as numpy.save writes it. */
function npy(shape, data) {
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.length * 8);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(Float64Array.from(data).buffer), 10 + header.length);
  return out;
}
