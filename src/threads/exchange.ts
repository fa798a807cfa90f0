// One head over two workers: both run the same attention() call on the same inputs (math/fftconv.ts
// ChannelSplit). In every FFT pass half 1 convolves the channels above channelCut and publishes them through one
// SharedArrayBuffer, without waiting; half 0 convolves the ones below, waits for half 1's and adds them in the
// order one thread adds them, so its result is attention()'s bit for bit. Half 1's own result is not kept.
//
// Layout of the shared buffer (SplitLayout):
//   [0, 64)            Int32 control: [0] = passes half 1 has published; [1] = abort (nonzero: half 0 gives up)
//   q, k: [n, keyDim]  v: [n, valueDim]   (float64, the head's inputs, read by both workers)
//   regions: [passes, (valueDim + 1) n] float64: half 1's channels of FFT pass e in region e (one per pass);
//            a float32 call's (dtype 'float32', fewer rows of float32) take the region's first bytes
import type { ChannelSplit } from '../math/fftconv.js';

const CONTROL_BYTES = 64;
const PUBLISHED = 0;
const ABORT = 1;

/** Why half 0 gave up: half 1 failed or the pool ended the call (the pool reports the cause instead). */
export const ABORTED_MESSAGE = 'toeplitz-attention/threads: the other half of this split head did not finish';

/** Byte offsets in a split call's SharedArrayBuffer. */
export interface SplitLayout {
  bytes: number;
  q: number;
  k: number;
  v: number;
  regions: number;
  /** float64 entries per region: (valueDim + 1) n */
  regionLength: number;
  /** exchanges the call may make: one per FFT pass (past, and future when bidirectional) */
  passes: number;
}

export function splitLayout(n: number, d: number, dv: number, passes: number): SplitLayout {
  const q = CONTROL_BYTES;
  const k = q + 8 * n * d;
  const v = k + 8 * n * d;
  const regions = v + 8 * n * dv;
  const regionLength = (dv + 1) * n;
  return { bytes: regions + 8 * passes * regionLength, q, k, v, regions, regionLength, passes };
}

/** What a worker gets: the shared buffer, its layout and which half it convolves. */
export interface SplitSpec {
  half: 0 | 1;
  shared: SharedArrayBuffer;
  layout: SplitLayout;
}

export function controlOf(shared: SharedArrayBuffer): Int32Array {
  return new Int32Array(shared, 0, CONTROL_BYTES / 4);
}

/** Half 0 gives up at its next exchange (or now, if it waits). Safe from any thread, any number of times. */
export function abortSplit(control: Int32Array): void {
  Atomics.store(control, ABORT, 1);
  Atomics.notify(control, PUBLISHED);
}

/** One worker's side of the exchanges of one call. */
export class SharedExchange implements ChannelSplit {
  readonly half: 0 | 1;
  private readonly control: Int32Array;
  private readonly shared: SharedArrayBuffer;
  private readonly layout: SplitLayout;
  private round = 0;

  constructor(spec: SplitSpec) {
    this.half = spec.half;
    this.shared = spec.shared;
    this.layout = spec.layout;
    this.control = controlOf(spec.shared);
  }

  /** Region e as upper's element type: regionLength float64 or twice as many float32. */
  private region(e: number, like: Float64Array | Float32Array): Float64Array | Float32Array {
    const { regions, regionLength } = this.layout;
    const at = regions + 8 * e * regionLength;
    return like instanceof Float32Array ? new Float32Array(this.shared, at, 2 * regionLength) : new Float64Array(this.shared, at, regionLength);
  }

  /** Half 1: publish this pass's upper channels. Half 0: wait for half 1's of this pass and copy them in. */
  exchange(upper: Float64Array | Float32Array, length: number): void {
    const e = this.round++;
    const bytes = upper.BYTES_PER_ELEMENT * length;
    if (e >= this.layout.passes || bytes > 8 * this.layout.regionLength) {
      throw new Error(`toeplitz-attention/threads: split exchange ${e} of ${bytes} bytes does not fit ${this.layout.passes} passes of ${8 * this.layout.regionLength}`);
    }
    const c = this.control;
    if (this.half === 1) {
      this.region(e, upper).set(upper.subarray(0, length));
      Atomics.store(c, PUBLISHED, e + 1);
      Atomics.notify(c, PUBLISHED);
      return;
    }
    for (;;) {
      if (Atomics.load(c, ABORT) !== 0) throw new Error(ABORTED_MESSAGE);
      const seen = Atomics.load(c, PUBLISHED);
      if (seen > e) break;
      // woken by half 1's notify or an abort; the timeout only bounds a missed wake-up
      Atomics.wait(c, PUBLISHED, seen, 1000);
    }
    upper.set(this.region(e, upper).subarray(0, length));
  }

  abort(): void {
    abortSplit(this.control);
  }
}
