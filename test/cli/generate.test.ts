// `generate` at its edges (issue 22, findings 8 and 9): a stdout closed early (`| head -c 10`) stops generation
// quietly (exit 0) and the session is still saved; bad sampling options, an empty --stop and a --save into a
// missing folder are usage errors (exit 2) found before anything is generated.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, loadModel, randomWeights } from '../../src/model/index.js';
import { tinyConfig } from '../model/tiny.js';
import { cli } from './runCli.js';

const dir = mkdtempSync(join(tmpdir(), 'tz-gen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cfg = tinyConfig();
const modelBytes = encodeModel(cfg, randomWeights(cfg, 3));
const modelPath = join(dir, 'tiny.safetensors');
writeFileSync(modelPath, modelBytes);


const CHILD = [process.execPath, '--import', 'tsx', 'test/cli/entry.ts'] as const;

describe('generate: bad arguments exit 2 before anything is generated', () => {
  const base = ['generate', '--model', modelPath, '--prompt', 'Call me', '--tokens', '20'];
  for (const [extra, message] of [
    [['--temperature', '-1'], /temperature must be a finite number >= 0 \(0 = greedy\), got -1/],
    [['--top-p', '0'], /topP must be a number in \(0, 1\] \(1 = off\), got 0/],
    [['--top-p', '1.5'], /topP must be a number in \(0, 1\] \(1 = off\), got 1.5/],
    [['--stop', ''], /--stop must be a non-empty text, got ""/],
    [['--save', join(dir, 'no', 'such', 'folder', 's.bin')], /output folder does not exist: .*no\/such\/folder \(--save /],
    [['--save', dir], /--save .* names a directory; give a file path/],
  ] as const) {
    it(`${extra.join(' ')}`, async () => {
      const r = await cli([...base, ...extra]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stdout).toBe(''); // nothing generated
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('as a process too: --save into a missing folder exits 2 with nothing on stdout', () => {
    const r = spawnSync(CHILD[0], [...CHILD.slice(1), ...base, '--save', join(dir, 'gone', 's.bin')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/output folder does not exist/);
  }, 60_000);
});

describe('generate into a pipe closed early (| head -c 10)', () => {
  it('stops quietly with exit 0 and still saves the session, which restores at the position reached', async () => {
    const save = join(dir, 'piped.bin');
    const child = spawn(CHILD[0], [...CHILD.slice(1), 'generate', '--model', modelPath, '--prompt', 'Call me', '--tokens', '1000000', '--seed', '4', '--save', save], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    let got = 0;
    // read the first bytes, then close our end of the pipe, as `head -c 10` does
    child.stdout.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= 10) child.stdout.destroy();
    });
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    expect(stderr).not.toMatch(/Unhandled|EPIPE.*\n\s+at |\n\s+at /);
    expect(status, stderr).toBe(0);
    expect(stderr).toMatch(/stdout closed/);
    expect(existsSync(save)).toBe(true);
    const model = loadModel(modelBytes);
    const s = model.restore(readFileSync(save));
    const m = /\[(\d+) tokens in .*position (\d+);/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(s.position).toBe(Number(m![2]));
    expect(Number(m![1])).toBeLessThan(1_000_000); // it stopped early
    expect(s.position).toBe(7 + Number(m![1]));
  }, 60_000);
});
