// Sampling the next token from logits (llama2.c's sample(): argmax, multinomial, top-p), with top-k too,
// driven by the library's seeded generator. The sampler's whole state is plain numbers (options, seed and
// how many 32-bit words it has drawn), so a session snapshot stores it and restore replays the draws.
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
}

export type ResolvedSampler = Required<SamplerOptions>;

/** A snapshot replays at most this many generator draws on restore (2 per sampled token: ~500M tokens). */
export const MAX_DRAWS = 2 ** 30;

/** Validate sampling options (the one place), filling in defaults. */
export function checkSamplerOptions(o: SamplerOptions | undefined): ResolvedSampler {
  if (o !== undefined && (o === null || typeof o !== 'object')) throw new ConfigError(`session options must be an object { seed?, temperature?, topK?, topP? }, got ${describe(o)}`);
  const seed = o?.seed ?? 0;
  const temperature = o?.temperature ?? 1;
  const topK = o?.topK ?? 0;
  const topP = o?.topP ?? 1;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new ConfigError(`seed must be a finite number, got ${describe(seed)}`);
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0) throw new ConfigError(`temperature must be a finite number >= 0 (0 = greedy), got ${describe(temperature)}`);
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0) throw new ConfigError(`topK must be an integer >= 0 (0 = off), got ${describe(topK)}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new ConfigError(`topP must be a number in (0, 1] (1 = off), got ${describe(topP)}`);
  return { seed, temperature, topK, topP };
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

  /** `draws`: resume a generator that had drawn that many words (validated by the caller). */
  constructor(options: ResolvedSampler, vocab: number, draws = 0) {
    this.resolved = options;
    this.rng = new Rng(options.seed);
    for (let i = 0; i < draws; i++) this.rng.nextUint32();
    this.drawn = draws;
    this.probs = new Float64Array(vocab);
    this.order = new Int32Array(vocab);
    const p = this.probs;
    this.byProbDesc = (a, b) => p[b]! - p[a]! || a - b;
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

  /** The next token from logits[off .. off + vocab). */
  sample(logits: Float64Array, off = 0): number {
    const V = this.probs.length;
    const { temperature, topK, topP } = this.resolved;
    let best = 0;
    let max = -Infinity;
    for (let i = 0; i < V; i++) {
      const l = logits[off + i]!;
      if (l > max) {
        max = l;
        best = i;
      }
    }
    if (temperature === 0) return best;
    // softmax(logits / T), unnormalized
    const p = this.probs;
    let total = 0;
    for (let i = 0; i < V; i++) total += p[i] = Math.exp((logits[off + i]! - max) / temperature);
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
