// One head over two workers: both run the same attention() call on the same inputs (math/fftconv.ts
// ChannelSplit). In every FFT pass half 1 convolves the channels above channelCut and publishes them through one
// SharedArrayBuffer, without waiting; half 0 convolves the ones below, waits for half 1's and adds them in the
// order one thread adds them, so its result is attention()'s bit for bit. Half 1's own result is not kept.
//
// Before the passes the halves swap feature maps (ChannelSplit.swapFeatures): half 0 computes phi(q), half 1
// phi(k); each publishes its own and waits for the other's (the one wait of half 1).
//
// Layout of the shared buffer (SplitLayout):
//   [0, 64)            Int32 control: [0] = passes half 1 has published; [1] = abort (nonzero: a waiting half
//                      gives up); [2 + h] = 1 when half h has published its feature map
//   q, k: [n, keyDim]  v: [n, valueDim]   (float64, the head's inputs, read by both workers)
//   features: [2, n, featureDim] float64: phi(q) from half 0, phi(k) from half 1
//   regions: [passes, (valueDim + 1) n] float64: half 1's channels of FFT pass e in region e (one per pass);
//            a float32 call's (dtype 'float32', fewer rows of float32) take the region's first bytes
import type { ChannelSplit } from '../math/fftconv.js';

const CONTROL_BYTES = 64;
const PUBLISHED = 0;
const ABORT = 1;
/** FEATURES + h: half h's feature map is published */
const FEATURES = 2;

/** Why half 0 gave up: half 1 failed or the pool ended the call (the pool reports the cause instead). */
export const ABORTED_MESSAGE = 'toeplitz-attention/threads: the other half of this split head did not finish';

/** Byte offsets in a split call's SharedArrayBuffer. */
export interface SplitLayout {
  bytes: number;
  q: number;
  k: number;
  v: number;
  regions: number;
  /** two feature maps of featureLength float64: phi(q) (half 0's), phi(k) (half 1's) */
  features: number;
  featureLength: number;
  /** float64 entries per region: (valueDim + 1) n */
  regionLength: number;
  /** exchanges the call may make: one per FFT pass (past, and future when bidirectional) */
  passes: number;
}

export function splitLayout(n: number, d: number, dv: number, m: number, passes: number): SplitLayout {
  const q = CONTROL_BYTES;
  const k = q + 8 * n * d;
  const v = k + 8 * n * d;
  const features = v + 8 * n * dv;
  const featureLength = n * m;
  const regions = features + 8 * 2 * featureLength;
  const regionLength = (dv + 1) * n;
  return { bytes: regions + 8 * passes * regionLength, q, k, v, features, featureLength, regions, regionLength, passes };
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
  for (const i of [PUBLISHED, FEATURES, FEATURES + 1]) Atomics.notify(control, i);
}

/** Wait until control[i] > after, or throw ABORTED_MESSAGE once an abort is seen. */
function waitAbove(c: Int32Array, i: number, after: number): void {
  for (;;) {
    if (Atomics.load(c, ABORT) !== 0) throw new Error(ABORTED_MESSAGE);
    const seen = Atomics.load(c, i);
    if (seen > after) return;
    // woken by the partner's notify or an abort; the timeout only bounds a missed wake-up
    Atomics.wait(c, i, seen, 1000);
  }
}

/** One worker's side of the exchanges of one call. */
export class SharedExchange implements ChannelSplit {
  readonly half: 0 | 1;
  private readonly control: Int32Array;
  private readonly shared: SharedArrayBuffer;
  private readonly layout: SplitLayout;
  private round = 0;
  private swapped = false;

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
    waitAbove(c, PUBLISHED, e);
    upper.set(this.region(e, upper).subarray(0, length));
  }

  /** Publish this half's feature map (half 0: phi(q), half 1: phi(k)) and wait for the other's. Once per call. */
  swapFeatures(mine: Float64Array, theirs: Float64Array, length: number): void {
    const { features, featureLength } = this.layout;
    if (this.swapped || length > featureLength) throw new Error(`toeplitz-attention/threads: split features of ${length} float64 do not fit ${featureLength}, or swapped twice`);
    this.swapped = true;
    const region = (h: number) => new Float64Array(this.shared, features + 8 * h * featureLength, length);
    const c = this.control;
    region(this.half).set(mine.subarray(0, length));
    Atomics.store(c, FEATURES + this.half, 1);
    Atomics.notify(c, FEATURES + this.half);
    waitAbove(c, FEATURES + 1 - this.half, 0);
    theirs.set(region(1 - this.half));
  }

  abort(): void {
    abortSplit(this.control);
  }
}
