// examples/generate.ts: a streaming generation loop with the RxJS operator `attend`, where each attended
// output decides the next token (autoregressive decoding, token by token, bounded state).
//
// The "model" is NOT a trained language model: it is a tiny model with FIXED RANDOM WEIGHTS drawn from a
// seeded generator (embedding table, q/k/v projections, output head), so the text it produces is
// meaningless. What it shows is the plumbing: tokens flow into `attend(config)`, each output picks the
// next token (logits from a fixed random output head, sampled with a seeded generator), which is fed back in; at the end the streamed outputs are
// checked against whole-sequence `attention()` over the generated sequence.
//
// Run: npx tsx examples/generate.ts          (SMALL=1 for a tiny run, as in CI)
import ndarray, { type NdArray } from 'ndarray';
import { Subject, asapScheduler, observeOn } from 'rxjs';
import { attention, Rng, type AttentionConfig } from 'toeplitz-attention';
import { attend, type Attended, type Token } from 'toeplitz-attention/rx';

const SMALL = process.env.SMALL === '1';
const STEPS = SMALL ? 24 : 400;

// ---- the library's seeded generator (xoshiro128**, platform-independent): fixed random weights and sampling
function seededUniform(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.nextFloat64();
}
function seeded(seed: number): () => number {
  const uniform = seededUniform(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

const VOCAB = ['the', 'a', 'cat', 'dog', 'sat', 'ran', 'on', 'under', 'mat', 'log', 'and', 'then', 'slept', 'barked', 'quietly', '.'];
const V = VOCAB.length;
const HEADS = 2;
const DMODEL = 8;
const DK = 4;
const DV = 4;

const gauss = seeded(2024);
const matrix = (rows: number, cols: number, scale: number): Float64Array => Float64Array.from({ length: rows * cols }, () => gauss() * scale);
const embedding = matrix(V, DMODEL, 1); // [V, DMODEL]
const wq = matrix(HEADS * DK, DMODEL, 0.5); // [heads*dk, DMODEL]
const wk = matrix(HEADS * DK, DMODEL, 0.5);
const wv = matrix(HEADS * DV, DMODEL, 1);
const wout = matrix(V, HEADS * DV, 1); // [V, heads*dv]

const config: AttentionConfig = {
  heads: HEADS,
  keyDim: DK,
  valueDim: DV,
  features: { kind: 'prf', count: 16, seed: 1 },
  // recent tokens weigh more; beyond the 8-entry table the bias decays linearly
  rpe: { past: { bias: Array.from({ length: 8 }, (_, t) => -0.25 * t), tail: { decay: 0.05 } } },
};

/** x = embedding[id]; returns one token's q, k: [heads, dk] and v: [heads, dv]. */
function embed(id: number): Token {
  const x = embedding.subarray(id * DMODEL, (id + 1) * DMODEL);
  const project = (w: Float64Array, rows: number, dim: number): NdArray<Float64Array> => {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < DMODEL; c++) s += w[r * DMODEL + c]! * x[c]!;
      out[r] = s;
    }
    return ndarray(out, [HEADS, dim]);
  };
  return { q: project(wq, HEADS * DK, DK), k: project(wk, HEADS * DK, DK), v: project(wv, HEADS * DV, DV) };
}

/** Next token from the attended output z: [heads, dv]: logits = wout z, sampled (temperature 0.7) with a seeded generator. */
const pick = seededUniform(7);
function nextToken(z: NdArray<Float64Array>, current: number): number {
  const logits = new Float64Array(V);
  let max = -Infinity;
  for (let t = 0; t < V; t++) {
    let logit = 0;
    for (let i = 0; i < HEADS * DV; i++) logit += wout[t * HEADS * DV + i]! * z.data[z.offset + i]!;
    if (t === current) logit -= 3; // discourage repeating the same token
    logits[t] = logit / 0.7;
    max = Math.max(max, logits[t]!);
  }
  let total = 0;
  for (let t = 0; t < V; t++) total += logits[t] = Math.exp(logits[t]! - max);
  let u = pick() * total;
  for (let t = 0; t < V; t++) if ((u -= logits[t]!) <= 0) return t;
  return V - 1;
}

async function main(): Promise<void> {
  const ids: number[] = [0]; // start with "the"
  const tokens: Token[] = [];
  const outputs: Attended[] = [];
  const input$ = new Subject<Token>();
  const started = performance.now();

  await new Promise<void>((resolve, reject) => {
    input$
      // observeOn(asap) breaks the synchronous feedback recursion (next token fed from inside next)
      .pipe(attend(config), observeOn(asapScheduler))
      .subscribe({
        next: (out) => {
          outputs.push(out);
          const current = ids[ids.length - 1]!;
          if (ids.length >= STEPS) return input$.complete();
          const next = nextToken(out.z, current);
          ids.push(next);
          const token = embed(next);
          tokens.push(token);
          input$.next(token);
        },
        error: reject,
        complete: resolve,
      });
    const first = embed(ids[0]!);
    tokens.push(first);
    input$.next(first);
  });
  const ms = performance.now() - started;

  const text = ids.map((id) => VOCAB[id]!).join(' ');
  console.log(`generated ${ids.length} tokens in ${ms.toFixed(1)} ms (${((ids.length / ms) * 1000).toFixed(0)} tokens/s):`);
  console.log(SMALL ? text : text.slice(0, 400) + (text.length > 400 ? ' …' : ''));

  // check: the streamed outputs equal whole-sequence attention over the generated sequence
  const n = tokens.length;
  const stackOf = (field: 'q' | 'k' | 'v', dim: number): NdArray<Float64Array> => {
    const out = new Float64Array(HEADS * n * dim);
    tokens.forEach((t, i) => {
      for (let h = 0; h < HEADS; h++) for (let c = 0; c < dim; c++) out[(h * n + i) * dim + c] = t[field].get(h, c);
    });
    return ndarray(out, [HEADS, n, dim]);
  };
  const whole = attention(config, stackOf('q', DK), stackOf('k', DK), stackOf('v', DV));
  let worst = 0;
  outputs.forEach((o, i) => {
    for (let h = 0; h < HEADS; h++) for (let c = 0; c < DV; c++) worst = Math.max(worst, Math.abs(o.z.get(h, c) - whole.get(h, i, c)));
  });
  console.log(`max |streamed - attention(whole sequence)| = ${worst.toExponential(2)}`);
  if (outputs.length !== n || !(worst < 1e-9)) {
    console.error('MISMATCH between the streamed outputs and whole-sequence attention');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
