// Checkpoints of one subscription: when one is due (every N tokens, or on demand), the decoder's snapshot
// bytes are taken at once, at that boundary, and handed to the sink; sink calls are serialized (an async
// sink finishes before the next call) and a sink that fails stops the queue. After close() (teardown) the
// sink is never called again: queued checkpoints are dropped, a write already in flight finishes alone.
import type { Decoder } from '../codec/decoder.js';
import { writeFileAtomic } from '../codec/file.js';
import type { CheckpointOptions, CheckpointSinkFn } from './types.js';

export class Checkpoints {
  private readonly decoder: Decoder;
  private readonly every: number;
  private readonly sink: CheckpointSinkFn | null;
  /** the next multiple of `every` at or past which a checkpoint is due */
  private next: number;
  private readonly waiting: { bytes: Uint8Array; position: number }[] = [];
  private busy = false;
  private closed = false;
  private idle: (() => void)[] = [];
  private error: { error: unknown } | null = null;
  /** called once when a sink fails (nothing more is delivered after the first failure) */
  onError: ((error: unknown) => void) | null = null;

  constructor(decoder: Decoder, options: CheckpointOptions | undefined) {
    this.decoder = decoder;
    this.every = options?.every ?? 0;
    const sink = options?.sink;
    // a path: the snapshot bytes written atomically (temp file + fsync + rename)
    this.sink = typeof sink === 'function' ? sink : typeof sink === 'string' ? (bytes) => writeFileAtomic(sink, bytes) : null;
    this.next = this.every > 0 ? this.after(decoder.position) : Infinity;
  }

  private after(position: number): number {
    return (Math.floor(position / this.every) + 1) * this.every;
  }

  /** After the outputs up to the decoder's position were delivered: take a checkpoint if a multiple was reached. */
  ifDue(): void {
    const position = this.decoder.position;
    if (this.closed || position < this.next) return;
    this.next = this.after(position);
    this.take();
  }

  /** Take a checkpoint now (on demand), whatever `every` says. */
  now(): void {
    if (!this.closed) this.take();
  }

  private take(): void {
    if (this.sink === null || this.error !== null) return;
    this.waiting.push({ bytes: this.decoder.snapshot(), position: this.decoder.position });
    if (!this.busy) this.pump();
  }

  /** Deliver queued checkpoints one at a time; a sink that returns synchronously is called synchronously. */
  private pump(): void {
    while (!this.closed && this.error === null) {
      const item = this.waiting.shift();
      if (item === undefined) break;
      let result: void | Promise<void>;
      try {
        result = this.sink!(item.bytes, item.position);
      } catch (error) {
        this.fail(error);
        return;
      }
      if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
        this.busy = true;
        (result as Promise<void>).then(
          () => {
            this.busy = false;
            this.pump();
          },
          (error: unknown) => {
            this.busy = false;
            this.fail(error);
          },
        );
        return;
      }
    }
    this.settle();
  }

  private fail(error: unknown): void {
    if (this.error !== null || this.closed) return;
    this.error = { error };
    this.waiting.length = 0;
    this.onError?.(error);
    this.settle();
  }

  private settle(): void {
    const idle = this.idle.splice(0);
    for (const cb of idle) cb();
  }

  /** The first sink error, if any. */
  get failed(): { error: unknown } | null {
    return this.error;
  }

  /** True while a checkpoint is being written or waits to be. */
  get pending(): boolean {
    return this.busy || this.waiting.length > 0;
  }

  /** Call cb once every checkpoint handed out so far has been written (or the sink failed): synchronously if idle. */
  whenIdle(cb: () => void): void {
    if (!this.pending || this.error !== null) cb();
    else this.idle.push(cb);
  }

  /** Promise form of whenIdle. */
  drain(): Promise<void> {
    return new Promise((resolve) => this.whenIdle(resolve));
  }

  /** Teardown: drop queued checkpoints and callbacks; the sink is never called again. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    this.idle.length = 0;
    this.onError = null;
  }
}
