// The npm start demo (the language model) runs in its small mode in CI so it cannot silently rot.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

describe('npm start demo', () => {
  it('generates in small mode, checkpoints, and the resumed continuation is identical', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/demo.ts'], { env: { ...process.env, DEMO_SMALL: '1' }, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^toeplitz-lm \(.*\): [\d.]+M parameters, \d+ layers x \d+ heads/);
    expect(r.stdout).toMatch(/generated 120 tokens in [\d.]+ s \([\d,]+ tokens\/s\); session state [\d,]+ bytes/);
    expect(r.stdout).toMatch(/checkpoint at token 60: [\d,]+ bytes on disk; restored in a fresh session, the next 60 tokens are identical/);
  });
});
