// SVG line charts for the benchmark reports, rendered by Vega-Lite/Vega headless in Node
// (renderer 'none' + toSVG needs no canvas and no browser).

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

export interface Series {
  name: string;
  points: Array<{ x: number; y: number }>;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Logarithmic x axis (base 10). Points with x <= 0 cannot be drawn there and are left out. */
  logX?: boolean;
  /** Logarithmic y axis (base 10). Points with y <= 0 cannot be drawn there and are left out. */
  logY?: boolean;
  /** Width of the plotting area in pixels (default 640); legend and axes add to it. */
  width?: number;
  /** Height of the plotting area in pixels (default 400). */
  height?: number;
}

/** Build the Vega-Lite spec of a multi-series line chart with point markers and a legend. */
export function lineChartSpec(options: LineChartOptions): TopLevelSpec {
  const { title, xLabel, yLabel, series, logX = false, logY = false, width = 640, height = 400 } = options;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!(Number.isFinite(value) && value > 0)) throw new RangeError(`expected ${name} to be a positive number, got ${value}`);
  }
  const names = series.map((s) => s.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new RangeError(`expected distinct series names, got "${duplicate}" twice`);

  const values = series.flatMap((s) =>
    s.points
      .filter(
        (p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!logX || p.x > 0) && (!logY || p.y > 0),
      )
      .map((p) => ({ series: s.name, x: p.x, y: p.y })),
  );

  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width,
    height,
    background: 'white',
    padding: 8,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 1.5 },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: xLabel,
        scale: logX ? { type: 'log', base: 10, nice: true } : { zero: false },
        axis: { grid: true, ...(logX ? { format: '~s' } : {}) },
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: yLabel,
        scale: logY ? { type: 'log', base: 10, nice: true } : { zero: false },
        axis: { grid: true, ...(logY ? { format: '~g' } : {}) },
      },
      // Legend and colours in the order the series were given, not alphabetical.
      // labelLimit: without a canvas vega over-estimates text widths and would cut labels at half their length
      color: { field: 'series', type: 'nominal', title: null, scale: { domain: names }, sort: names, legend: { labelLimit: 400 } },
      order: { field: 'x', type: 'quantitative' },
    },
  };
}

/** Render a multi-series line chart (lines with point markers, a legend, optional log axes) to SVG text. */
export async function lineChartSvg(options: LineChartOptions): Promise<string> {
  const vegaSpec = compile(lineChartSpec(options)).spec;
  const view = new vega.View(vega.parse(vegaSpec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
