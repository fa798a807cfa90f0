// The CLI's progress line (in place of cli-progress): redrawn in place on a terminal, plain throttled lines elsewhere.
import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../../src/cli/progress.js';

function stream(isTTY: boolean): { write(t: string): void; isTTY: boolean; out: string[] } {
  const out: string[] = [];
  return { isTTY, out, write: (t: string) => void out.push(t) };
}

describe('ProgressBar', () => {
  it('not a terminal: a line at the start and at the end, none in between within 2 s', () => {
    const s = stream(false);
    const bar = new ProgressBar({ label: 'streaming', unit: 'tokens', stream: s });
    bar.start(10);
    for (let i = 1; i <= 10; i++) bar.update(i);
    bar.stop();
    expect(s.out).toEqual([`streaming |${'\u2591'.repeat(40)}| 0/10 tokens\n`, `streaming |${'\u2588'.repeat(40)}| 10/10 tokens\n`]);
  });

  it('a terminal: redrawn in place (carriage return, clear to end of line), the rate appended, a newline at the end', () => {
    const s = stream(true);
    const bar = new ProgressBar({ label: 'scoring', unit: 'bytes', rate: true, stream: s });
    bar.start(4);
    bar.update(2);
    bar.stop();
    expect(s.out[0]).toMatch(/^\rscoring \|\u2591{40}\| 0\/4 bytes  \d+ bytes\/s\x1b\[K$/);
    expect(s.out.at(-2)).toMatch(/^\rscoring \|\u2588{20}\u2591{20}\| 2\/4 bytes  \d+ bytes\/s\x1b\[K$/);
    expect(s.out.at(-1)).toBe('\n');
    expect(s.out.join('')).not.toContain('\n\r');
  });
});
