// Prometheus text exposition (format 0.0.4), written by hand: a counter, a gauge and a histogram are a few
// lines each, and prom-client would add a dependency (with its own) to every install of the library for
// what these 60 lines do. Histograms are plain data so workers can send theirs to the main thread to merge.

/** Upper bounds (seconds) of the checkpoint latency buckets: on-path snapshots are ~ms, store writes ~0.1-1 s. */
export const CHECKPOINT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A histogram as plain data: counts[i] = observations <= bounds[i] (not cumulative), plus the +Inf overflow. */
export interface HistogramData {
  counts: number[];
  sum: number;
  count: number;
}

export function newHistogram(bounds: readonly number[] = CHECKPOINT_BUCKETS): HistogramData {
  return { counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
}

export function observe(h: HistogramData, value: number, bounds: readonly number[] = CHECKPOINT_BUCKETS): void {
  if (!Number.isFinite(value)) return;
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i++;
  h.counts[i]!++;
  h.sum += value;
  h.count++;
}

export function mergeHistograms(into: HistogramData, from: HistogramData): void {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i] ?? 0;
  into.sum += from.sum;
  into.count += from.count;
}

/** Label values escaped as the format says (backslash, quote, newline). */
function labels(l: Record<string, string> | undefined): string {
  if (l === undefined) return '';
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function num(x: number): string {
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  if (Number.isNaN(x)) return 'NaN';
  return String(x);
}

/** Builds one exposition: families in the order they are added. */
export class Exposition {
  private readonly lines: string[] = [];

  private head(name: string, type: string, help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }

  counter(name: string, help: string, samples: Array<[Record<string, string> | undefined, number]>): this {
    this.head(name, 'counter', help);
    for (const [l, v] of samples) this.lines.push(`${name}${labels(l)} ${num(v)}`);
    return this;
  }

  gauge(name: string, help: string, value: number): this {
    this.head(name, 'gauge', help);
    this.lines.push(`${name} ${num(value)}`);
    return this;
  }

  histogram(name: string, help: string, series: Array<[Record<string, string>, HistogramData]>, bounds: readonly number[] = CHECKPOINT_BUCKETS): this {
    this.head(name, 'histogram', help);
    for (const [l, h] of series) {
      let cumulative = 0;
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += h.counts[i] ?? 0;
        this.lines.push(`${name}_bucket${labels({ ...l, le: i < bounds.length ? num(bounds[i]!) : '+Inf' })} ${cumulative}`);
      }
      this.lines.push(`${name}_sum${labels(l)} ${num(h.sum)}`, `${name}_count${labels(l)} ${h.count}`);
    }
    return this;
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}
