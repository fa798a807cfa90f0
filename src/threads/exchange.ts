// One head over two workers: both run the same attention() call on the same inputs, each convolving one half of
// every FFT pass's S-form channels (math/fftconv.ts ChannelSplit), and they swap halves through one
// SharedArrayBuffer. The halves are added in the order one thread adds them, so both workers end with the
// single-threaded bits; the pool keeps the result of half 0.
//
// Layout of the shared buffer (SplitLayout):
//   [0, 64)           Int32 control: [0], [1] = exchanges published by half 0, 1; [2] = abort (nonzero: give up)
//   q, k: [n, keyDim]  v: [n, valueDim]   (float64, the head's inputs, read by both workers)
//   regions: [passes, 2, (valueDim + 1) n] float64: exchange e of half h in region (e, h) (never reused in a call)
import type { ChannelSplit } from '../math/fftconv.js';

const CONTROL_BYTES = 64;
const ABORT = 2;

/** Why a half gave up: its partner failed or the pool ended the call (the pool reports the partner's error). */
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
  return { bytes: regions + 8 * 2 * passes * regionLength, q, k, v, regions, regionLength, passes };
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

/** Both halves give up at their next exchange (or now, if one waits). Safe from any thread, any number of times. */
export function abortSplit(control: Int32Array): void {
  Atomics.store(control, ABORT, 1);
  Atomics.notify(control, 0);
  Atomics.notify(control, 1);
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

  private region(e: number, h: number): Float64Array {
    const { regions, regionLength } = this.layout;
    return new Float64Array(this.shared, regions + 8 * (2 * e + h) * regionLength, regionLength);
  }

  /** Publish `mine`, wait for the partner's half of the same pass, copy it into `theirs`. */
  exchange(mine: Float64Array, theirs: Float64Array, length: number): void {
    const e = this.round++;
    if (e >= this.layout.passes || length > this.layout.regionLength) {
      throw new Error(`toeplitz-attention/threads: split exchange ${e} of ${length} float64 does not fit ${this.layout.passes} passes of ${this.layout.regionLength}`);
    }
    const c = this.control;
    this.region(e, this.half).set(mine.subarray(0, length));
    Atomics.store(c, this.half, e + 1);
    Atomics.notify(c, this.half);
    const other = 1 - this.half;
    for (;;) {
      if (Atomics.load(c, ABORT) !== 0) throw new Error(ABORTED_MESSAGE);
      const seen = Atomics.load(c, other);
      if (seen > e) break;
      // woken by the partner's notify or an abort; the timeout only bounds a missed wake-up
      Atomics.wait(c, other, seen, 1000);
    }
    theirs.set(this.region(e, other).subarray(0, length));
  }

  abort(): void {
    abortSplit(this.control);
  }
}
