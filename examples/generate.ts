// examples/generate.ts: streaming text generation as an RxJS pipeline. `fromGeneration(session, prompt,
// options)` is an Observable of generated tokens; operators shape it (here: text pieces buffered into words,
// and take() stopping generation after a number of words). At the end the session's streamed logits (one
// Decoder per layer, token by token) are checked against whole-sequence attention() over everything
// generated (model.logits).
//
// The model is models/toeplitz-lm.safetensors when it exists (trained on Moby-Dick); otherwise a tiny model
// with RANDOM weights (the text is noise; the plumbing is the same).
//
// Run: npx tsx examples/generate.ts          (SMALL=1 for a short run, as in CI)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { filter, lastValueFrom, map, scan, take, tap } from 'rxjs';
import { checkModelConfig, createModel, randomWeights, type GeneratedToken } from '../src/model/index.js';
import { loadModelFile } from '../src/model/file.js';
import { fromGeneration } from '../src/stream/generate.js';

const SMALL = process.env.SMALL === '1';
const WORDS = SMALL ? 12 : 80;
const modelPath = fileURLToPath(new URL('../models/toeplitz-lm.safetensors', import.meta.url));

function openModel() {
  if (existsSync(modelPath)) return loadModelFile(modelPath);
  console.log('models/toeplitz-lm.safetensors not found: a tiny model with RANDOM weights stands in (the text is noise)');
  const cfg = checkModelConfig({ vocab: 256, dim: 32, layers: 2, heads: 2, keyDim: 8, valueDim: 8, hidden: 64, features: { kind: 'prf', count: 16, normalize: 'l2' }, rpe: { length: 32, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true });
  return createModel(cfg, randomWeights(cfg, 7));
}

async function main(): Promise<void> {
  const model = openModel();
  const prompt = 'Queequeg was ';
  const session = model.session({ seed: 7, temperature: 0.8, topP: 0.95 });
  const generated: GeneratedToken[] = [];
  const started = performance.now();
  process.stdout.write(prompt);
  // words: accumulate text pieces, emit a word at each space or newline; stop after WORDS of them
  const words = await lastValueFrom(
    fromGeneration(session, prompt, { maxTokens: 20 * WORDS }).pipe(
      tap((g) => {
        generated.push(g);
        process.stdout.write(g.text);
      }),
      scan((acc, g) => ({ word: /\s/.test(g.text) ? '' : acc.word + g.text, done: /\s/.test(g.text) && acc.word.length > 0 ? acc.word : null }), { word: '', done: null as string | null }),
      map((s) => s.done),
      filter((w): w is string => w !== null),
      take(WORDS),
      scan((n) => n + 1, 0),
    ),
    { defaultValue: 0 },
  );
  const ms = performance.now() - started;
  console.log(`\n\n${words} words, ${generated.length} tokens in ${ms.toFixed(0)} ms (${((generated.length / ms) * 1000).toFixed(0)} tokens/s); take(${WORDS}) stopped generation at position ${session.position}`);

  // check: the streamed logits equal whole-sequence attention() over prompt + generated (model.logits)
  const all = [...new TextEncoder().encode(prompt), ...generated.map((g) => g.token)];
  await new Promise((r) => setTimeout(r, 0)); // the generation finalizes after take() unsubscribes
  const whole = model.logits(all);
  const streamed = session.lastLogits()!;
  const last = whole.subarray(whole.length - 256);
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < 256; i++) {
    worst = Math.max(worst, Math.abs(streamed[i]! - last[i]!));
    scale = Math.max(scale, Math.abs(last[i]!));
  }
  console.log(`max |streamed - attention(whole sequence)| = ${(worst / scale).toExponential(2)} (relative, logits of the last token)`);
  if (session.position !== all.length || !(worst / scale < 1e-9)) {
    console.error('MISMATCH between the streamed session and whole-sequence logits');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
