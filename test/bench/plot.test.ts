import { describe, expect, it } from 'vitest';
import { lineChartSpec, lineChartSvg, type Series } from '../../bench/plot.js';

const ns = [16, 64, 256, 1024, 4096];
const series: Series[] = [
  { name: 'quadratic', points: ns.map((n) => ({ x: n, y: 1e-4 * n * n })) },
  { name: 'fft', points: ns.map((n) => ({ x: n, y: 1e-2 * n * Math.log2(n) })) },
  { name: 'streaming <decoder>', points: ns.map((n) => ({ x: n, y: 0.05 * n })) },
];

/** The text content of every <text> element, in document order. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

/** The <path> elements drawn by the line mark, one per series (Vega puts each in its own group). */
function linePaths(svg: string): string[] {
  return [...svg.matchAll(/<g class="mark-line role-mark[^"]*"[^>]*>(<path[^>]*\/>)<\/g>/g)].map((m) => m[1]!);
}

describe('lineChartSvg', () => {
  it('renders a log-log chart with title, one line per series, a legend and log ticks', async () => {
    const started = Date.now();
    const svg = await lineChartSvg({
      title: 'Time vs n',
      xLabel: 'sequence length n',
      yLabel: 'time (ms)',
      series,
      logX: true,
      logY: true,
      width: 400,
      height: 300,
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);

    const labels = texts(svg);
    expect(labels).toContain('Time vs n');
    expect(labels).toContain('sequence length n');
    expect(labels).toContain('time (ms)');
    // Legend in the given order; markup characters escaped.
    const legend = labels.filter((t) => ['quadratic', 'fft', 'streaming &lt;decoder&gt;'].includes(t));
    expect(legend).toEqual(['quadratic', 'fft', 'streaming &lt;decoder&gt;']);

    const paths = linePaths(svg);
    expect(paths).toHaveLength(series.length);
    for (const p of paths) expect(p).toMatch(/ d="M[^"]+L/); // a polyline through the points
    // Point markers: 5 points × 3 series.
    expect(svg.match(/<g class="mark-symbol role-mark[^"]*"[^>]*>(.*?)<\/g>/)?.[1]?.match(/<path/g)).toHaveLength(15);

    // Log scales: decade ticks on both axes (x formatted with SI prefixes).
    for (const tick of ['10', '100', '1k']) expect(labels).toContain(tick);
    for (const tick of ['0.1', '1', '10', '100', '1000']) expect(labels).toContain(tick);
  });

  it('uses linear scales unless asked, so decade ticks do not appear', async () => {
    const svg = await lineChartSvg({ title: 'Per-token time', xLabel: 'position', yLabel: 'µs', series });
    const labels = texts(svg);
    expect(labels).toContain('Per-token time');
    expect(linePaths(svg)).toHaveLength(3);
    expect(labels).not.toContain('1k');
    expect(labels).not.toContain('0.1');
    expect(svg).toMatch(/width="\d+"/);
  });

  it('leaves out points a log axis cannot show and refuses bad options', () => {
    const spec = lineChartSpec({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      logY: true,
      series: [{ name: 'a', points: [{ x: 0, y: 0 }, { x: 1, y: 2 }, { x: 2, y: Number.NaN }] }],
    });
    expect((spec as { data: { values: unknown[] } }).data.values).toEqual([{ series: 'a', x: 1, y: 2 }]);
    expect(() => lineChartSpec({ title: 't', xLabel: 'x', yLabel: 'y', series: [], width: 0 })).toThrow(
      'expected width to be a positive number, got 0',
    );
    expect(() =>
      lineChartSpec({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [] }, { name: 'a', points: [] }] }),
    ).toThrow('expected distinct series names, got "a" twice');
  });
});
