// The npm start demo runs in a short mode in CI so it cannot silently rot.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('npm start demo', () => {
  it('runs end to end in small mode and reports a matching whole-sequence check', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { env: { ...process.env, DEMO_SMALL: '1' }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/decoded 4,096 tokens/);
    expect(r.stdout).toMatch(/max \|stream - whole\| = \d/);
  });
});
