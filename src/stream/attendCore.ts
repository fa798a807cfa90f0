// One attending session over a decoder, shared by the rx operators and attendAsync: single tokens (step),
// groups of tokens (validated on arrival, run through one decoder.chunk), chunks, and the checkpoints that
// follow delivered outputs.
import ndarray, { type NdArray } from 'ndarray';
import type { Decoder } from '../codec/decoder.js';
import { Checkpoints } from './checkpoints.js';
import { TokenStack, requireQkv } from './stack.js';
import type { AttendOptions, Attended, AttendedChunk, ChunkToken, Token } from './types.js';

/** Row i of z: [heads, L, dv] as its own [heads, dv] tensor. */
function rowOf(z: NdArray<Float64Array>, i: number): NdArray<Float64Array> {
  const [heads, L, dv] = z.shape as [number, number, number];
  const out = new Float64Array(heads * dv);
  for (let h = 0; h < heads; h++) out.set(z.data.subarray((h * L + i) * dv, (h * L + i + 1) * dv), h * dv);
  return ndarray(out, [heads, dv]);
}

/**
 * Each method either advances the decoder and emits its outputs in position order, or throws the decoder's
 * typed error with the state as it was before the refused token (nothing emitted for it). Checkpoints are
 * not taken here: the caller calls `checkpoints.ifDue()` once the outputs were delivered, so a checkpoint
 * never precedes an output it covers, and none is taken after teardown.
 */
export class AttendCore {
  readonly decoder: Decoder;
  readonly checkpoints: Checkpoints;
  private readonly groupCapacity: number;
  /** the open group (grouped paths only; made on first use) */
  private stack: TokenStack | null = null;

  constructor(decoder: Decoder, options: AttendOptions) {
    this.decoder = decoder;
    this.checkpoints = new Checkpoints(decoder, options.checkpoint);
    this.groupCapacity = options.group?.count ?? 16;
  }

  private get group(): TokenStack {
    return (this.stack ??= new TokenStack(this.decoder.config, this.groupCapacity));
  }

  /** One token -> one output. */
  step(token: Token, emit: (a: Attended) => void): void {
    requireQkv(token, 'a token');
    const position = this.decoder.position;
    emit({ position, z: this.decoder.step(token.q, token.k, token.v) });
  }

  /** One chunk [heads, L, dim] -> one output [heads, L, dv]. */
  chunk(c: ChunkToken, emit: (a: AttendedChunk) => void): void {
    requireQkv(c, 'a chunk');
    const position = this.decoder.position;
    emit({ position, z: this.decoder.chunk(c.q, c.k, c.v) });
  }

  /** Validate a token and add it to the open group; returns the group's size. A bad token throws its typed error (the group is unchanged). */
  add(token: Token): number {
    this.group.push(token);
    return this.group.length;
  }

  /** Tokens in the open group. */
  get grouped(): number {
    return this.stack?.length ?? 0;
  }

  /**
   * Run the open group (every token already valid): one token through decoder.step, more through one
   * decoder.chunk; then one output per token, in order. An error from the decoder here is a real error
   * and propagates (the decoder refuses atomically, so its state is the one before the group).
   */
  runGroup(emit: (a: Attended) => void): void {
    const L = this.grouped;
    if (L === 0) return;
    const first = this.decoder.position;
    if (L === 1) {
      const t = this.group.token(0);
      const z = this.decoder.step(t.q, t.k, t.v);
      this.group.clear();
      emit({ position: first, z });
      return;
    }
    const c = this.group.chunk();
    const z = this.decoder.chunk(c.q, c.k, c.v);
    this.group.clear();
    for (let i = 0; i < L; i++) emit({ position: first + i, z: rowOf(z, i) });
  }

  /** Drop the open group (never fed to the decoder). */
  dropGroup(): void {
    this.stack?.clear();
  }

  /** Teardown: drop the open group and queued checkpoints; no sink is called after this. */
  dispose(): void {
    this.dropGroup();
    this.checkpoints.close();
  }
}
