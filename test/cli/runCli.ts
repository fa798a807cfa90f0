// main(argv) of the CLI in this process, with everything it prints captured (shared by the CLI tests).
import { vi } from 'vitest';
import { main } from '../../src/cli/main.js';

export interface CliResult { status: number; stdout: string; stderr: string }

export async function cli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const spies = [
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (stdout += a.join(' ') + '\n')),
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void (stderr += a.join(' ') + '\n')),
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true)),
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true)),
  ];
  try {
    return { status: await main(args), stdout, stderr };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}
