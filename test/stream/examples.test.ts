// The stream examples run in their small mode (SMALL=1) so they cannot silently rot: each must exit 0.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = ['generate', 'resume', 'document', 'grouping'];

function runExample(name: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join('examples', `${name}.ts`)], { cwd: root, env: { ...process.env, SMALL: '1' }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples (SMALL=1)', () => {
  // started together, awaited per test: the three processes run in parallel
  const runs = new Map(EXAMPLES.map((name) => [name, runExample(name)] as const));

  it.each(EXAMPLES)('examples/%s.ts exits 0', async (name) => {
    const r = await runs.get(name)!;
    if (r.code !== 0) console.error(`examples/${name}.ts failed:\n${r.stdout}\n${r.stderr}`);
    expect(r.code).toBe(0);
  });

  it('the outputs say what was checked', async () => {
    expect((await runs.get('generate')!).stdout).toMatch(/max \|streamed - attention\(whole sequence\)\| = /);
    expect((await runs.get('resume')!).stdout).toMatch(/bit-identical to an uninterrupted run; recomputed overlap \d+\.\.\d+ matches/);
    expect((await runs.get('document')!).stdout).toMatch(/attended 3000 tokens in/);
    expect((await runs.get('grouping')!).stdout).toMatch(/best grouped \/ per-token: [\d.]+x; max \|grouped - per-token\| = /);
  });
});
