// The model CLI commands (generate, eval), called directly and through commander, on a tiny random model.
import { afterAll, describe, expect, it } from 'vitest';
import { Command, CommanderError } from '../../src/cli/args.js';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, evaluate, randomWeights, ModelError } from '../../src/model/index.js';
import { HELDOUT_TEXT, evalCommand, generateCommand, heldOut, registerModelCommands, type ModelCliIo } from '../../src/cli/model.js';
import { loadModelFile } from '../../src/model/file.js';
import { tinyConfig } from './tiny.js';

const dir = mkdtempSync(join(tmpdir(), 'tzlm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelPath = join(dir, 'tiny.safetensors');
const cfg = tinyConfig();
writeFileSync(modelPath, encodeModel(cfg, randomWeights(cfg, 3)));
const textPath = join(dir, 'text.txt');
const text = 'It was the Bottle Conjurer! '.repeat(40); // 1,120 bytes
writeFileSync(textPath, text);

function capture(): ModelCliIo & { out: string; err: string } {
  const io = { out: '', err: '', progress: false, stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

describe('generate command', () => {
  it('streams the generated text to stdout and a summary to stderr; seeded', async () => {
    const io = capture();
    const r = await generateCommand({ model: modelPath, prompt: 'Call me', tokens: 40, seed: 3 }, io);
    expect(r.tokens).toHaveLength(40);
    expect(io.out).toBe('Call me' + r.text); // the prompt is echoed first
    const quiet = capture();
    await generateCommand({ model: modelPath, prompt: 'Call me', tokens: 40, seed: 3, echo: false }, quiet);
    expect(quiet.out).toBe(r.text);
    expect(io.err).toMatch(/\[40 tokens in [\d.]+ s \(\d+ tokens\/s\); position 47; state [\d,]+ bytes; seed 3, temperature 0.8, top-k 0, top-p 0.95\]/);
    const again = await generateCommand({ model: modelPath, prompt: 'Call me', tokens: 40, seed: 3, quiet: true }, capture());
    expect(again.tokens).toEqual(r.tokens);
  });

  it('--save then --resume continues exactly like one longer run', async () => {
    const session = join(dir, 'session.bin');
    const whole = await generateCommand({ model: modelPath, prompt: 'Ahab', tokens: 30, seed: 8, temperature: 1 }, capture());
    await generateCommand({ model: modelPath, prompt: 'Ahab', tokens: 12, seed: 8, temperature: 1, save: session }, capture());
    expect(existsSync(session)).toBe(true);
    const rest = await generateCommand({ model: modelPath, resume: session, tokens: 18 }, capture());
    expect([...(await generateCommand({ model: modelPath, prompt: 'Ahab', tokens: 12, seed: 8, temperature: 1 }, capture())).tokens, ...rest.tokens]).toEqual(whole.tokens);
    expect(rest.position).toBe(4 + 30);
  });

  it('refuses a missing model, a damaged model and another model\'s session with one clear error', async () => {
    await expect(generateCommand({ model: join(dir, 'nope.safetensors'), prompt: 'a', tokens: 1 }, capture())).rejects.toThrow(/^io: cannot read model file .*nope.safetensors: ENOENT/);
    const broken = join(dir, 'broken.safetensors');
    writeFileSync(broken, Uint8Array.of(1, 2, 3));
    await expect(generateCommand({ model: broken, prompt: 'a', tokens: 1 }, capture())).rejects.toThrow(ModelError);
    const otherPath = join(dir, 'other.safetensors');
    writeFileSync(otherPath, encodeModel(cfg, randomWeights(cfg, 4)));
    const session = join(dir, 's2.bin');
    await generateCommand({ model: modelPath, prompt: 'a', tokens: 2, save: session, quiet: true }, capture());
    await expect(generateCommand({ model: otherPath, resume: session, tokens: 1 }, capture())).rejects.toThrow(/^wrong-model: /);
  });
});

describe('eval command', () => {
  it('prints bits per byte overall and by position bucket; equals the mean of -log2 p from model.logits', () => {
    const io = capture();
    const r = evalCommand({ model: modelPath, text: textPath, chunk: 100 }, io);
    expect(r.count).toBe(text.length - 1);
    const model = loadModelFile(modelPath);
    const bytes = new TextEncoder().encode(text);
    const logits = model.logits(bytes);
    let bits = 0;
    for (let i = 0; i + 1 < bytes.length; i++) {
      const row = logits.subarray(i * 256, (i + 1) * 256);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      bits += (lse - row[bytes[i + 1]!]!) / Math.LN2;
    }
    expect(r.bitsPerByte).toBeCloseTo(bits / (bytes.length - 1), 9);
    expect(r.buckets.map((b) => b.count)).toEqual([255, 768, 96, 0, 0]);
    expect(io.out).toMatch(/bits per byte: \d+\.\d{4}\nby position of the predicted byte:\n  0-256 +\d+\.\d{4}  \(255 bytes\)\n  256-1k +\d+\.\d{4}  \(768 bytes\)\n  1k-4k +\d+\.\d{4}  \(96 bytes\)\n$/);
  });

  it('--heldout scores the bytes after floor(0.95 N); --json prints the result', () => {
    expect(heldOut(new Uint8Array(1000)).length).toBe(50);
    const io = capture();
    const r = evalCommand({ model: modelPath, text: textPath, heldout: true, chunk: 512, json: true }, io);
    expect(r.count).toBe(text.length - Math.floor(0.95 * text.length) - 1);
    expect(JSON.parse(io.out)).toMatchObject({ count: r.count, bitsPerByte: r.bitsPerByte });
  });
});

describe('the shipped held-out split (data/moby-dick-heldout.txt)', () => {
  it('is the corpus bytes after floor(0.95 N), N = 1,204,997: 60,250 bytes with the recorded SHA-256', () => {
    const bytes = readFileSync(HELDOUT_TEXT);
    expect(bytes.length).toBe(1204997 - Math.floor(0.95 * 1204997));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe('42c4ef24d40895bda1d1313b825fdbd5019d057f776a8b5336c14f884a6ec10e');
    expect(readFileSync(join(HELDOUT_TEXT, '..', 'README.md'), 'utf8')).toContain('42c4ef24d40895bda1d1313b825fdbd5019d057f776a8b5336c14f884a6ec10e');
    const corpus = join(HELDOUT_TEXT, '..', '..', 'train', '.cache', 'moby-dick.txt'); // the trainer's copy, when present
    if (existsSync(corpus)) expect(Buffer.compare(heldOut(readFileSync(corpus)), bytes)).toBe(0);
  });

  it('eval --heldout without --text scores it as it is (nothing split off); neither flag is a usage error', async () => {
    const io = capture();
    const r = evalCommand({ model: modelPath, heldout: true, limit: 600, chunk: 512 }, io);
    expect(r.count).toBe(599);
    expect(io.out).toMatch(/moby-dick-heldout\.txt \(held-out split\): 600 bytes in /);
    const direct = evaluate(loadModelFile(modelPath), readFileSync(HELDOUT_TEXT).subarray(0, 600), { chunkSize: 512 });
    expect(r.bitsPerByte).toBe(direct.bitsPerByte);
    expect(() => evalCommand({ model: modelPath, chunk: 512 }, capture())).toThrow(/eval needs --text <file>, or --heldout to score the held-out split/);
    const io2 = capture();
    const p = new Command().exitOverride().configureOutput({ writeErr: (t) => io2.stderr(t), writeOut: (t) => io2.stdout(t) });
    registerModelCommands(p, io2);
    await p.parseAsync(['eval', '--model', modelPath, '--heldout', '--limit', '300'], { from: 'user' });
    expect(io2.out).toMatch(/moby-dick-heldout\.txt \(held-out split\): 300 bytes in /);
  });
});

describe('registerModelCommands', () => {
  function program(io: ModelCliIo): Command {
    const p = new Command().exitOverride().configureOutput({ writeErr: (t) => io.stderr(t), writeOut: (t) => io.stdout(t) });
    registerModelCommands(p, io);
    return p;
  }

  it('parses the options of generate and eval', async () => {
    const io = capture();
    await program(io).parseAsync(['generate', '--model', modelPath, '--prompt', 'Queequeg', '--tokens', '5', '--seed', '2', '--temperature', '0', '--top-k', '3', '--top-p', '0.5', '--stop', 'zz', '--quiet'], { from: 'user' });
    expect(io.err).toBe('');
    const greedy = await generateCommand({ model: modelPath, prompt: 'Queequeg', tokens: 5, temperature: 0, quiet: true }, capture());
    expect(io.out).toBe('Queequeg' + greedy.text);
    const noEcho = capture();
    await program(noEcho).parseAsync(['generate', '--model', modelPath, '--prompt', 'Queequeg', '--tokens', '5', '--temperature', '0', '--quiet', '--no-echo'], { from: 'user' });
    expect(noEcho.out).toBe(greedy.text);
    const io2 = capture();
    await program(io2).parseAsync(['eval', '--model', modelPath, '--text', textPath, '--limit', '300'], { from: 'user' });
    expect(io2.out).toMatch(/: 300 bytes in/);
  });

  it('usage errors are one line and a CommanderError (main() exits 2 on those)', async () => {
    for (const [args, message] of [
      [['generate', '--model', modelPath, '--tokens', '5'], /error: generate needs --prompt <text> \(or --resume <session> to continue a saved session\)/],
      [['generate', '--model', modelPath, '--prompt', 'a', '--tokens', '0'], /expected a positive integer, got "0"/],
      [['generate', '--model', modelPath, '--resume', 'x.bin', '--seed', '3'], /option '--resume <file>' cannot be used with option '--seed <s>'/],
      [['eval', '--model', modelPath], /error: eval needs --text <file>, or --heldout to score the held-out split of the model's corpus \(shipped in data\/\)/],
    ] as const) {
      const io = capture();
      const err = await program(io).parseAsync([...args], { from: 'user' }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(CommanderError);
      expect(io.err).toMatch(message);
    }
  });
});
