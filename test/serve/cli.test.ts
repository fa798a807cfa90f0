// The `serve` command's arguments: binding off loopback without --api-key is a usage error (exit 2, one line);
// bad numbers are usage errors; --help lists the flags of DESIGN section 11. (Serving itself from the CLI is
// exercised by crash.test.ts and replicas.test.ts, which run it as a child process.)
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';

const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'test/cli/entry.ts', 'serve', ...args], { encoding: 'utf8', timeout: 30_000 });

describe('toeplitz-attention serve: arguments', () => {
  it('refuses to bind off loopback without --api-key; refuses bad numbers; --help lists the flags', () => {
    const off = cli(['--host', '0.0.0.0', '--port', '0', '--store', 'memory:']);
    expect(off.status).toBe(2);
    expect(off.stderr.trim().split('\n')).toHaveLength(1);
    expect(off.stderr).toMatch(/binding 0\.0\.0\.0 \(not a loopback address\) needs an API key \(--api-key\)/);
    const bad = cli(['--workers', 'two']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/expected an integer >= 0, got "two"/);
    const help = cli(['--help']);
    expect(help.status).toBe(0);
    for (const flag of ['--host', '--port', '--store', '--workers', '--max-live', '--max-concurrent', '--api-key', '--model']) expect(help.stdout).toContain(flag);
  });
});
