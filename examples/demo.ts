// The main demo (npm start): toeplitz-lm, a byte-level language model whose attention is this library's
// kernelized attention with relative positional encoding (trained on Moby-Dick in PyTorch, run here in
// TypeScript), writes text as it streams, with a live tokens/s and state-size line. Half-way it saves its
// session to a file; at the end a fresh session restored from that file writes the second half again and
// the demo checks it is identical, token for token.
//
// Without models/toeplitz-lm.safetensors (a fresh clone before training) it uses a RANDOM-weight model of the
// same architecture and says so: the plumbing is the same, the text is noise.
// DEMO_SMALL=1 (or SMALL=1, or --small) runs a short version for CI.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkModelConfig, createModel, randomWeights, type GeneratedToken, type Model } from '../src/model/index.js';
import { loadModelFile, loadSession, saveSession } from '../src/model/file.js';

const small = process.env.DEMO_SMALL === '1' || process.env.SMALL === '1' || process.argv.includes('--small');
const TOKENS = small ? 120 : 1500;
const CHECKPOINT = TOKENS / 2;
const PROMPT = 'The whale ';
const SAMPLING = { seed: 2024, temperature: 0.8, topP: 0.95 };
const modelPath = fileURLToPath(new URL('../models/toeplitz-lm.safetensors', import.meta.url));

const tty = process.stdout.isTTY === true;
const write = (s: string): void => void process.stdout.write(s);
const fmt = (n: number): string => n.toLocaleString('en-US');

/** Streams text with a status line under it (TTY), or plain text (pipes, CI). */
class Screen {
  private line = '';
  private status = '';
  private readonly width = Math.max(20, (process.stdout.columns ?? 80) - 1);
  text(piece: string): void {
    if (!tty) return write(piece);
    for (const ch of piece) {
      if (ch === '\n' || this.line.length >= this.width) this.flushLine();
      if (ch !== '\n' && ch !== '\r') this.line += ch;
    }
    this.render();
  }
  setStatus(status: string): void {
    this.status = status;
    if (tty) this.render();
  }
  end(): void {
    if (tty) write('\r\x1b[2K' + this.line + '\n\x1b[2K\x1b[2m' + this.status + '\x1b[0m\n');
    else write('\n' + this.status + '\n');
    this.line = '';
  }
  private flushLine(): void {
    write('\r\x1b[2K' + this.line + '\n');
    this.line = '';
  }
  // the current line, then the status line below it, then back up: the next write redraws both
  private render(): void {
    write('\r\x1b[2K' + this.line + '\n\x1b[2K\x1b[2m' + this.status + '\x1b[0m\x1b[1A\r');
  }
}

function describeModel(model: Model, trained: boolean): string {
  const c = model.config;
  const params = [model.weights.tokEmbeddings, ...model.weights.layers.flatMap((l) => Object.values(l) as Float64Array[]), model.weights.norm]
    .reduce((s, a) => s + a.length, 0) + (c.tiedEmbedding ? 0 : model.weights.output.length);
  const info = model.info as { valBitsPerByte?: number };
  return (
    `toeplitz-lm (${trained ? modelPath.replace(process.cwd() + '/', '') : 'RANDOM weights: models/toeplitz-lm.safetensors not found, the text below is noise'}): ` +
    `${(params / 1e6).toFixed(2)}M parameters, ${c.layers} layers x ${c.heads} heads, dim ${c.dim}, PRF features m = ${c.features.count}, ` +
    `RPE window K = ${c.rpe.length} (${c.rpe.tail === 'decay' ? 'learned decay beyond' : 'clipped beyond'})${typeof info.valBitsPerByte === 'number' ? `, ${info.valBitsPerByte.toFixed(2)} held-out bits/byte` : ''}; backend ${model.backend}`
  );
}

async function main(): Promise<void> {
  const trained = existsSync(modelPath);
  const model = trained
    ? loadModelFile(modelPath)
    : (() => {
        const cfg = checkModelConfig({ vocab: 256, dim: 128, layers: 4, heads: 4, keyDim: 32, valueDim: 32, hidden: 344, features: { kind: 'prf', count: 32, normalize: 'l2' }, rpe: { length: 128, tail: 'clip' }, normEps: 1e-5, tiedEmbedding: true });
        return createModel(cfg, randomWeights(cfg, 1));
      })();
  console.log(describeModel(model, trained));
  console.log(`prompt ${JSON.stringify(PROMPT)}, ${fmt(TOKENS)} bytes, temperature ${SAMPLING.temperature}, top-p ${SAMPLING.topP}, seed ${SAMPLING.seed}; checkpoint after ${fmt(CHECKPOINT)}\n`);

  const dir = mkdtempSync(join(tmpdir(), 'toeplitz-demo-'));
  const sessionFile = join(dir, 'session.tzlm');
  try {
    const screen = new Screen();
    const session = model.session(SAMPLING);
    const after: GeneratedToken[] = []; // what follows the checkpoint in the uninterrupted run
    screen.text(PROMPT);
    const t0 = performance.now();
    let shown = 0;
    for await (const g of session.generate(PROMPT, { maxTokens: TOKENS })) {
      const i = g.position - PROMPT.length; // tokens generated so far
      if (i > CHECKPOINT) after.push(g);
      screen.text(g.text);
      if (i === CHECKPOINT) saveSession(sessionFile, session);
      const now = performance.now();
      if (now - shown > 100 || i === TOKENS) {
        shown = now;
        screen.setStatus(`${fmt(i)} tokens  ${fmt(Math.round(i / ((now - t0) / 1000)))} tokens/s  position ${fmt(g.position)}  session state ${fmt(session.stateBytes)} bytes${i >= CHECKPOINT ? `  (checkpoint saved at ${fmt(CHECKPOINT)})` : ''}`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    screen.end();
    console.log(`\ngenerated ${fmt(TOKENS)} tokens in ${seconds.toFixed(1)} s (${fmt(Math.round(TOKENS / seconds))} tokens/s); session state ${fmt(session.stateBytes)} bytes, the same at any position`);

    // a fresh session from the file continues exactly where the checkpoint stopped
    const restored = loadSession(sessionFile, model);
    const resumed: GeneratedToken[] = [];
    for await (const g of restored.generate('', { maxTokens: TOKENS - CHECKPOINT })) resumed.push(g);
    const same = resumed.length === after.length && resumed.every((g, i) => g.token === after[i]!.token && g.text === after[i]!.text && g.position === after[i]!.position);
    const preview = resumed.map((g) => g.text).join('').slice(0, 60);
    console.log(
      `checkpoint at token ${fmt(CHECKPOINT)}: ${fmt(statSync(sessionFile).size)} bytes on disk; restored in a fresh session, the next ${fmt(resumed.length)} tokens are ` +
        `${same ? 'identical' : 'DIFFERENT'} (${JSON.stringify(preview)}...)`,
    );
    if (!same) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
