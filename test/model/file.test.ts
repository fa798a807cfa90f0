// Model, session and text files are read with bounded memory and time (issue 22, finding 1): stat first,
// anything but a regular file refused before it is opened, the header read and checked before the rest,
// and the rest read only when the file is as long as its header says.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelError, encodeModel, randomWeights } from '../../src/model/index.js';
import { loadModelFile, loadSession, readTextFile, saveSession } from '../../src/model/file.js';
import { generateCommand } from '../../src/cli/model.js';
import { Decoder } from '../../src/index.js';
import { saveSnapshot } from '../../src/codec/index.js';
import { bytesOf, tinyConfig, tinyModel } from './tiny.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const posix = process.platform !== 'win32';
const GiB = 2 ** 30;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tzlm-file-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusal(fn: () => unknown): ModelError {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelError);
  return error as ModelError;
}

function grown(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

const modelBytes = encodeModel(tinyConfig(), randomWeights(tinyConfig(), 11), { dtype: 'F64' });

describe('bounded reads of model, session and text files', () => {
  it('round trip: loadModelFile, saveSession / loadSession, readTextFile', () => {
    withDir((dir) => {
      writeFileSync(join(dir, 'm.safetensors'), modelBytes);
      const model = loadModelFile(join(dir, 'm.safetensors'));
      expect(model.fingerprint).toEqual(tinyModel(11).fingerprint);
      const s = model.session({ seed: 2 });
      s.feed(bytesOf('hello'));
      saveSession(join(dir, 's.bin'), s);
      expect(loadSession(join(dir, 's.bin'), model).snapshot()).toEqual(s.snapshot());
      writeFileSync(join(dir, 't.txt'), 'some text');
      expect(readTextFile(join(dir, 't.txt'))).toEqual(bytesOf('some text'));
      writeFileSync(join(dir, 'empty.txt'), '');
      expect(readTextFile(join(dir, 'empty.txt'))).toEqual(new Uint8Array(0));
    });
  });

  it.runIf(posix)('a FIFO, /dev/zero and a directory are refused at once (they blocked forever / grew without limit), as model, session and eval --text', () => {
    withDir((dir) => {
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      writeFileSync(join(dir, 'm.safetensors'), modelBytes);
      const reads = ['model', 'session', 'text'].flatMap((w) => [`${w}:${fifo}`, `${w}:/dev/zero`, `${w}:${dir}`]);
      const child = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'read-child.ts'), join(dir, 'm.safetensors'), ...reads], { cwd: root, encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
      expect(child.signal, `the child hung (killed after 20 s); stdout so far:\n${child.stdout}`).toBeNull();
      expect(child.status, child.stderr).toBe(0);
      const lines = child.stdout.trim().split('\n').map((l) => JSON.parse(l) as { what: string; path: string; result: string; ms: number });
      expect(lines).toHaveLength(reads.length);
      for (const l of lines) {
        const kind = l.path === fifo ? 'a FIFO' : l.path === '/dev/zero' ? 'a character device' : 'a directory';
        expect(l.result, `${l.what} ${l.path}`).toBe(`ModelError io: ${l.path} must be a regular file, got ${kind}`);
        expect(l.ms).toBeLessThan(1000);
      }
    });
  });

  it('a 1 GiB file that is no model is refused from its first bytes, without reading the rest', () => {
    withDir((dir) => {
      const zeros = join(dir, 'zeros.bin');
      writeFileSync(zeros, '');
      truncateSync(zeros, GiB);
      const text = join(dir, 'text.bin'); // 8 bytes of text: a header length far beyond the file
      writeFileSync(text, 'Call me Ishmael. Some years ago');
      truncateSync(text, GiB);
      const big = join(dir, 'big.bin'); // a header length within the file but over the 16 MiB cap
      const head = new Uint8Array(8);
      new DataView(head.buffer).setUint32(0, 20 * 2 ** 20, true);
      writeFileSync(big, head);
      truncateSync(big, GiB);
      const t0 = performance.now();
      let a: ModelError | null = null;
      let b: ModelError | null = null;
      let c: ModelError | null = null;
      const growth = grown(() => {
        a = refusal(() => loadModelFile(zeros));
        b = refusal(() => loadModelFile(text));
        c = refusal(() => loadModelFile(big));
      });
      expect(c!.message).toBe('header: the header length must be at most 16777216 bytes, got 20971520');
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(growth).toBeLessThan(1 << 20);
      expect(a!.message).toMatch(/^header: the header must be a JSON object of at least 2 bytes, got a length of 0/);
      expect(b!.message).toMatch(/^truncated: the header length field says \d+ bytes, but only 1073741816 bytes follow it/);
    });
  });

  it('a model file with 1 GiB more data than its header announces is refused after reading only the header', () => {
    withDir((dir) => {
      const path = join(dir, 'padded.safetensors');
      writeFileSync(path, modelBytes);
      truncateSync(path, modelBytes.length + GiB);
      let e: ModelError | null = null;
      const t0 = performance.now();
      expect(grown(() => (e = refusal(() => loadModelFile(path))))).toBeLessThan(1 << 20);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(e!.message).toBe(`header: the data section must end with the last tensor at byte ${modelBytes.length - 8 - new DataView(modelBytes.buffer).getUint32(0, true)}, got ${GiB} extra bytes after it`);
    });
  });

  it('generate --resume refuses a decoder snapshot with the one-line ModelError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tzlm-file-'));
    try {
      writeFileSync(join(dir, 'm.safetensors'), modelBytes);
      saveSnapshot(join(dir, 'd.snap'), new Decoder(tinyModel(11).attentionConfigs[0]!));
      const io = { stdout: () => {}, stderr: () => {}, progress: false };
      await expect(generateCommand({ model: join(dir, 'm.safetensors'), resume: join(dir, 'd.snap'), tokens: 1 }, io)).rejects.toThrow(/^snapshot: not a toeplitz-lm session snapshot/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a session file with 1 GiB after its declared payload, or of another format, is refused from its header', () => {
    withDir((dir) => {
      const model = tinyModel(11);
      const s = model.session();
      s.feed(bytesOf('hi'));
      const path = join(dir, 's.bin');
      saveSession(path, s);
      truncateSync(path, s.snapshot().length + GiB);
      const other = join(dir, 'm.safetensors');
      writeFileSync(other, modelBytes);
      appendFileSync(other, new Uint8Array(16));
      truncateSync(other, GiB);
      let a: ModelError | null = null;
      let b: ModelError | null = null;
      expect(grown(() => {
        a = refusal(() => loadSession(path, model));
        b = refusal(() => loadSession(other, model));
      })).toBeLessThan(1 << 20);
      expect(a!.message).toMatch(new RegExp(`^snapshot: the session snapshot declares a \\d+-byte payload, got ${GiB} extra bytes after it`));
      expect(b!.message).toMatch(/^snapshot: not a toeplitz-lm session snapshot/);
      // a decoder snapshot is no session snapshot (library and CLI --resume alike)
      const dec = join(dir, 'decoder.snap');
      saveSnapshot(dec, new Decoder(model.attentionConfigs[0]!));
      expect(refusal(() => loadSession(dec, model)).message).toMatch(/^snapshot: not a toeplitz-lm session snapshot: expected the magic bytes 89 54 5a 4c 4d 53 53 0a, got 89 54 5a 41/);
      // truncated: the decoder's message, as for bytes
      truncateSync(path, 30);
      expect(refusal(() => loadSession(path, model)).code).toBe('truncated');
      expect(refusal(() => loadSession(join(dir, 'missing.bin'), model)).message).toBe(`io: cannot read session file ${join(dir, 'missing.bin')}: ENOENT`);
    });
  });
});
