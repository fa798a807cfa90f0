// The training curves of the shipped model (with RPE) and the same model and budget without RPE:
// held-out bits per byte against training minutes, from train/runs/main-*.csv, to train/runs/loss.svg.
// Run: npx tsx bench/loss-plot.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { lineChartSvg } from './plot.js';

function curve(name: string): Array<{ x: number; y: number }> {
  const lines = readFileSync(new URL(`../train/runs/${name}.csv`, import.meta.url), 'utf8').trim().split('\n').slice(1);
  return lines
    .map((l) => l.split(','))
    .map((c) => ({ x: Number(c[2]) / 60, y: Number(c[4]) }))
    .filter((p) => p.x > 0 && Number.isFinite(p.y));
}

const svg = await lineChartSvg({
  title: 'toeplitz-lm on Moby-Dick: held-out bits per byte',
  xLabel: 'training minutes (two runs sharing 2 cores)',
  yLabel: 'held-out bits per byte',
  series: [
    { name: 'with RPE (learned table, K = 128)', points: curve('main-rpe') },
    { name: 'without RPE (one zero bias)', points: curve('main-no-rpe') },
  ],
});
writeFileSync(new URL('../train/runs/loss.svg', import.meta.url), svg);
console.log('wrote train/runs/loss.svg');
