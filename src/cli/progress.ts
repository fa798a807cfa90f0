// A one-line progress bar on stderr for the CLI (what cli-progress did here, without its five dependencies):
// on a terminal the line is redrawn in place at most every 100 ms; elsewhere (a pipe, a log file) a plain line
// is written at most every 2 s, and one at the end.

export interface ProgressOptions {
  /** written before the bar, e.g. 'scoring' */
  label: string;
  /** the unit of the counts, e.g. 'bytes' */
  unit: string;
  /** append "<rate> <unit>/s" */
  rate?: boolean;
  /** where to draw (default process.stderr) */
  stream?: { write(text: string): unknown; isTTY?: boolean };
}

const WIDTH = 40;

export class ProgressBar {
  private readonly o: Required<ProgressOptions>;
  private readonly tty: boolean;
  private total = 0;
  private value = 0;
  private t0 = 0;
  private drawn = -Infinity;

  constructor(options: ProgressOptions) {
    this.o = { rate: false, stream: process.stderr, ...options };
    this.tty = this.o.stream.isTTY === true;
  }

  start(total: number): void {
    this.total = total;
    this.value = 0;
    this.t0 = performance.now();
    this.draw(true);
  }

  update(value: number): void {
    this.value = value;
    this.draw(false);
  }

  /** Draw the final state and end the line. */
  stop(): void {
    this.draw(true);
    if (this.tty) this.o.stream.write('\n');
  }

  private draw(force: boolean): void {
    const now = performance.now();
    if (!force && now - this.drawn < (this.tty ? 100 : 2000)) return;
    this.drawn = now;
    const share = this.total > 0 ? Math.min(1, this.value / this.total) : 1;
    const full = Math.round(share * WIDTH);
    const seconds = (now - this.t0) / 1000;
    const rate = this.o.rate ? `  ${seconds > 0 ? Math.round(this.value / seconds) : 0} ${this.o.unit}/s` : '';
    const line = `${this.o.label} |${'\u2588'.repeat(full)}${'\u2591'.repeat(WIDTH - full)}| ${this.value}/${this.total} ${this.o.unit}${rate}`;
    this.o.stream.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`);
  }
}
