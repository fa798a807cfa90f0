// The training curves of the shipped model (with RPE: stage 1 at context 256, then stage 2 at context 8192) and
// the same model and budget without RPE: held-out bits per byte (windows of each run's training context) against
// training minutes, from train/runs/{main-*,long-8k-aug}.csv, to train/runs/loss.svg.
// Run: npx tsx bench/loss-plot.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { lineChartSvg } from './plot.js';

function curve(name: string, offsetMinutes = 0, includeStart = false): Array<{ x: number; y: number }> {
  const lines = readFileSync(new URL(`../train/runs/${name}.csv`, import.meta.url), 'utf8').trim().split('\n').slice(1);
  return lines
    .map((l) => l.split(','))
    .map((c) => ({ x: offsetMinutes + Number(c[2]) / 60, y: Number(c[4]) }))
    .filter((p) => (includeStart || p.x > offsetMinutes) && Number.isFinite(p.y));
}

// stage 2 continues from the end of the RPE run
const stage1 = curve('main-rpe');
const stage1End = stage1[stage1.length - 1]!.x;

const svg = await lineChartSvg({
  title: 'toeplitz-lm on Moby-Dick: held-out bits per byte',
  xLabel: 'training minutes (two runs sharing 2 cores)',
  yLabel: 'held-out bits per byte',
  series: [
    { name: 'RPE, context 256', points: stage1 },
    { name: 'no RPE, context 256', points: curve('main-no-rpe') },
    { name: 'RPE, stage 2 (8k)', points: curve('long-8k-aug', stage1End, true) },
  ],
});
writeFileSync(new URL('../train/runs/loss.svg', import.meta.url), svg);
console.log('wrote train/runs/loss.svg');
