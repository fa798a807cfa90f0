// Sampling the next token from logits (llama2.c's sample(): argmax, multinomial, top-p), with top-k too,
// driven by the library's seeded generator. The sampler's whole state is plain numbers (options, the
// generator's four state words and how many 32-bit words it has drawn), so a session snapshot stores it and
// restore sets it back in O(1) (a version-1 snapshot, which has only the draw count, advances a fresh
// generator by that many words in O(log draws)).
import { ConfigError, describe } from '../core/errors.js';
import { Rng } from '../math/rng.js';

/** Sampling options of a session. */
export interface SamplerOptions {
  /** seed of the generator (default 0): the same seed and inputs give the same tokens everywhere */
  seed?: number;
  /** 0 = greedy (argmax); default 1 (the model's own distribution) */
  temperature?: number;
  /** keep only the k most likely tokens; 0 (default) = all */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (nucleus); 1 (default) = all */
  topP?: number;
  /**
   * sample only bytes that keep the generated text valid UTF-8 (default true): bytes that cannot continue the
   * session's unfinished character (or start one) get probability 0 in the sampling step; logits are unchanged
   */
  validUtf8?: boolean;
}

export type ResolvedSampler = Required<SamplerOptions>;


/** Validate sampling options (the one place), filling in defaults. */
export function checkSamplerOptions(o: SamplerOptions | undefined): ResolvedSampler {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw new ConfigError(`session options must be an object { seed?, temperature?, topK?, topP?, validUtf8? }, got ${describe(o)}`);
  const seed = o?.seed ?? 0;
  const temperature = o?.temperature ?? 1;
  const topK = o?.topK ?? 0;
  const topP = o?.topP ?? 1;
  const validUtf8 = o?.validUtf8 ?? true;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ConfigError(`seed must be a finite number, got ${describe(seed)}`);
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new ConfigError(`temperature must be a finite number >= 0 (0 = greedy), got ${describe(temperature)}`);
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0) throw new ConfigError(`topK must be an integer >= 0 (0 = off), got ${describe(topK)}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new ConfigError(`topP must be a number in (0, 1] (1 = off), got ${describe(topP)}`);
  if (typeof validUtf8 !== 'boolean') throw new ConfigError(`validUtf8 must be a boolean, got ${describe(validUtf8)}`);
  return { seed, temperature, topK, topP, validUtf8 };
}

export class Sampler {
  private resolved: ResolvedSampler;
  private readonly rng: Rng;
  /** 32-bit words drawn from rng so far (the generator's position) */
  private drawn = 0;
  // scratch, reused: probs: [vocab]; order: [vocab] token ids, most likely first
  private readonly probs: Float64Array;
  private readonly order: Int32Array;
  private readonly byProbDesc: (a: number, b: number) => number;

  /**
   * `resume`: continue a generator that had drawn `draws` words, from its state `words` when known, else by
   * advancing a fresh one (both validated by the caller).
   */
  constructor(options: ResolvedSampler, vocab: number, resume?: { draws: number; words: readonly number[] | null }) {
    this.resolved = options;
    this.rng = new Rng(options.seed);
    if (resume !== undefined) {
      if (resume.words !== null) this.rng.setState({ words: resume.words as [number, number, number, number], spare: null });
      else this.rng.advance(resume.draws);
      this.drawn = resume.draws;
    }
    this.probs = new Float64Array(vocab);
    this.order = new Int32Array(vocab);
    const p = this.probs;
    this.byProbDesc = (a, b) => p[b]! - p[a]! || a - b;
  }

  /** The generator's four state words (what a session snapshot stores). */
  stateWords(): readonly number[] {
    return this.rng.getState().words;
  }

  /** Save the generator into `r` (no allocation); returns the draw count to pass back to restoreFrom. */
  saveTo(r: Rng): number {
    r.copyFrom(this.rng);
    return this.drawn;
  }

  /** Put the generator back to what saveTo saved. */
  restoreFrom(r: Rng, draws: number): void {
    this.rng.copyFrom(r);
    this.drawn = draws;
  }

  /** The options in force. */
  get options(): ResolvedSampler {
    return this.resolved;
  }

  /** Change temperature / topK / topP from the next token on; the generator (seed, draws) goes on as it is. */
  retune(options: ResolvedSampler): void {
    if (options.seed !== this.resolved.seed) throw new ConfigError(`the seed cannot change in a running sampler (${this.resolved.seed}), got ${describe(options.seed)}`);
    this.resolved = options;
  }

  /** Words drawn so far. */
  get draws(): number {
    return this.drawn;
  }

  /**
   * The next token from logits[off .. off + vocab). `allowed` ([vocab], optional): tokens where it is 0 are never
   * drawn (probability 0, skipped by argmax); at least one token must be allowed. Without it: all tokens.
   */
  sample(logits: Float64Array, off = 0, allowed: Uint8Array | null = null): number {
    const V = this.probs.length;
    const { temperature, topK, topP } = this.resolved;
    let best = 0;
    let max = -Infinity;
    for (let i = 0; i < V; i++) {
      const l = logits[off + i]!;
      if (l > max && (allowed === null || allowed[i] === 1)) {
        max = l;
        best = i;
      }
    }
    if (temperature === 0) return best;
    // softmax(logits / T), unnormalized
    const p = this.probs;
    let total = 0;
    for (let i = 0; i < V; i++) total += p[i] = allowed === null || allowed[i] === 1 ? Math.exp((logits[off + i]! - max) / temperature) : 0;
    const u = this.rng.nextFloat64(); // two 32-bit words
    this.drawn += 2;
    const k = topK > 0 && topK < V ? topK : V;
    if (k === V && topP >= 1) {
      // multinomial over all tokens in id order
      let r = u * total;
      for (let i = 0; i < V; i++) if ((r -= p[i]!) < 0) return i;
      return best;
    }
    // most likely first (ties by id), keep the top k, then the smallest prefix reaching topP
    const order = this.order;
    for (let i = 0; i < V; i++) order[i] = i;
    order.sort(this.byProbDesc);
    let kept = 0;
    for (let j = 0; j < k; j++) kept += p[order[j]!]!;
    let n = k;
    if (topP < 1) {
      let cum = 0;
      for (let j = 0; j < k; j++) {
        cum += p[order[j]!]!;
        if (cum >= topP * kept) {
          n = j + 1;
          kept = cum;
          break;
        }
      }
    }
    let r = u * kept;
    for (let j = 0; j < n; j++) if ((r -= p[order[j]!]!) < 0) return order[j]!;
    return order[0]!;
  }
}
