// CLI commands of the language model: `generate` (stream text to stdout; save and resume sessions) and
// `eval` (bits per byte of a text, overall and by position, with a progress bar). Registered on the main
// program by registerModelCommands; the command functions take an Io so tests can call them directly.
import { Command, InvalidArgumentError, Option } from './args.js';
import { fileURLToPath } from 'node:url';
import { ProgressBar } from './progress.js';
import { ConfigError } from '../index.js';
import { ModelError, SESSION_MAGIC, checkSamplerOptions, evaluate, type Evaluation, type Model, type SamplerOptions, type Session } from '../model/index.js';
import { decodeSession } from '../model/snapshot.js';
import { errnoText, outputProblem } from './output.js';
import { loadModelFile, loadSession, readTextFile, saveSession } from '../model/file.js';

/** Where output goes (process streams by default; tests capture it). */
export interface ModelCliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** draw a progress bar on stderr (eval) */
  progress: boolean;
  /** the error that closed stdout (EPIPE: its reader is gone, as with `| head -c 10`), or null while it is open */
  stdoutClosed?(): NodeJS.ErrnoException | null;
}

export function processIo(): ModelCliIo {
  // a closed pipe is reported as an 'error' event a turn after the write: without a listener it would crash the
  // process with a stack trace; with one, generation sees it between tokens and stops
  let closed: NodeJS.ErrnoException | null = null;
  let listening = false;
  const onError = (e: NodeJS.ErrnoException): void => void (closed ??= e);
  return {
    stdout: (t) => {
      if (closed !== null) return;
      if (!listening) {
        process.stdout.on('error', onError);
        listening = true;
      }
      process.stdout.write(t);
    },
    stderr: (t) => void process.stderr.write(t),
    progress: process.stderr.isTTY === true,
    stdoutClosed: () => closed,
  };
}

/** The model shipped with the package (models/toeplitz-lm.safetensors next to src/ or dist/). */
export const DEFAULT_MODEL = fileURLToPath(new URL('../../models/toeplitz-lm.safetensors', import.meta.url));

export interface GenerateCliOptions {
  model: string;
  prompt?: string;
  tokens: number;
  seed?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  stop?: string[];
  save?: string;
  resume?: string;
  quiet?: boolean;
  /** print the prompt before the generated text (default true; --no-echo) */
  echo?: boolean;
}

export interface GenerateResult {
  tokens: number[];
  text: string;
  position: number;
}

/**
 * The arguments generate can check before loading anything (bad ones are usage errors, exit 2): the sampling
 * options (by the sampler's own check), the stop texts, and that --save can be written.
 */
function checkGenerateArguments(o: GenerateCliOptions): SamplerOptions {
  const sampling = { seed: o.seed ?? 0, temperature: o.temperature ?? 0.8, topK: o.topK ?? 0, topP: o.topP ?? 0.95 };
  if (o.resume === undefined) {
    if (o.prompt === undefined || o.prompt === '') throw new InvalidArgumentError('generate needs --prompt <text> (or --resume <session> to continue a saved session)');
    try {
      checkSamplerOptions(sampling);
    } catch (e) {
      if (e instanceof ConfigError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  }
  for (const s of o.stop ?? []) if (s === '') throw new InvalidArgumentError('--stop must be a non-empty text, got ""');
  const problem = o.save === undefined ? null : outputProblem(o.save, '--save');
  if (problem !== null) throw new InvalidArgumentError(problem);
  return sampling;
}

/**
 * generate: load, restore or start a session, stream the generated text, optionally save the session. A stdout
 * closed by its reader stops generation quietly; the session (with every token generated) is still saved.
 */
export async function generateCommand(o: GenerateCliOptions, io: ModelCliIo = processIo()): Promise<GenerateResult> {
  const sampling = checkGenerateArguments(o);
  const model = loadModelFile(o.model);
  const session: Session = o.resume !== undefined ? loadSession(o.resume, model) : model.session(sampling);
  if (o.echo !== false && o.prompt !== undefined) io.stdout(o.prompt);
  const t0 = performance.now();
  const tokens: number[] = [];
  let text = '';
  let closed: NodeJS.ErrnoException | null = null;
  for await (const g of session.generate(o.prompt ?? '', { maxTokens: o.tokens, ...(o.stop ? { stop: o.stop } : {}) })) {
    tokens.push(g.token);
    text += g.text;
    if (g.text !== '') io.stdout(g.text);
    closed = io.stdoutClosed?.() ?? null;
    if (closed !== null) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  if (o.save !== undefined) saveSession(o.save, session);
  if (!o.quiet) {
    const s = session.sampling;
    io.stderr(
      `\n[${tokens.length} tokens in ${seconds.toFixed(2)} s (${Math.round(tokens.length / Math.max(seconds, 1e-9))} tokens/s); position ${session.position}; ` +
        `state ${session.stateBytes.toLocaleString('en-US')} bytes; seed ${s.seed}, temperature ${s.temperature}, top-k ${s.topK}, top-p ${s.topP}` +
        `${o.save !== undefined ? `; session saved to ${o.save}` : ''}${closed !== null ? `; stopped: stdout closed (${errnoText(closed)})` : ''}]\n`,
    );
  }
  // a reader that went away (EPIPE) is how `| head` ends a stream: not an error; any other write failure is
  if (closed !== null && closed.code !== 'EPIPE') throw new ModelError('io', `cannot write to stdout: ${errnoText(closed)} (the session was ${o.save !== undefined ? 'saved' : 'not saved: no --save'})`);
  return { tokens, text, position: session.position };
}

/** The held-out split of the model's corpus, shipped (data/README.md: corpus bytes [1,144,747, 1,204,997) of Moby-Dick). */
export const HELDOUT_TEXT = fileURLToPath(new URL('../../data/moby-dick-heldout.txt', import.meta.url));

export interface EvalCliOptions {
  model: string;
  /** the text to score; without it, --heldout scores the shipped held-out split (HELDOUT_TEXT) */
  text?: string;
  /** score only the held-out split: the bytes after the first floor(0.95 N) (DESIGN section 9) */
  heldout?: boolean;
  /** score only the first `limit` bytes (after --heldout) */
  limit?: number;
  chunk: number;
  json?: boolean;
}

/** The held-out split of a corpus: everything after its first floor(0.95 N) bytes. */
export function heldOut(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(Math.floor(0.95 * bytes.length));
}

function formatRange(from: number, to: number): string {
  const k = (x: number): string => (x >= 1024 && x % 1024 === 0 ? `${x / 1024}k` : String(x));
  return to === Infinity ? `${k(from)}+` : `${k(from)}-${k(to)}`;
}

/** eval: bits per byte of a text under the model, streamed from its start, overall and by position. */
export function evalCommand(o: EvalCliOptions, io: ModelCliIo = processIo()): Evaluation {
  if (o.text === undefined && !o.heldout) throw new InvalidArgumentError('eval needs --text <file>, or --heldout to score the held-out split of the model\'s corpus (shipped in data/)');
  const model: Model = loadModelFile(o.model);
  // without --text, --heldout reads the shipped split itself (already cut: nothing to split off)
  const path = o.text ?? HELDOUT_TEXT;
  let bytes = readTextFile(path); // regular files only, bounded (a FIFO or /dev/zero is refused)
  if (o.heldout && o.text !== undefined) bytes = heldOut(bytes);
  if (o.limit !== undefined) bytes = bytes.subarray(0, o.limit);
  if (bytes.length < 2) throw new InvalidArgumentError(`eval needs a text of at least 2 bytes, got ${bytes.length}`);
  const bar = io.progress ? new ProgressBar({ label: 'scoring', unit: 'bytes', rate: true, stream: process.stderr }) : null;
  bar?.start(bytes.length);
  const result = evaluate(model, bytes, { chunkSize: o.chunk, onProgress: (done) => bar?.update(done) });
  bar?.stop();
  if (o.json) {
    io.stdout(JSON.stringify({ ...result, buckets: result.buckets.map((b) => ({ ...b, to: b.to === Infinity ? null : b.to })) }) + '\n');
    return result;
  }
  const lines = [
    `${path}${o.heldout ? ' (held-out split)' : ''}: ${bytes.length.toLocaleString('en-US')} bytes in ${result.seconds.toFixed(1)} s (${Math.round(bytes.length / result.seconds).toLocaleString('en-US')} bytes/s)`,
    `bits per byte: ${result.bitsPerByte.toFixed(4)}`,
    'by position of the predicted byte:',
    ...result.buckets.filter((b) => b.count > 0).map((b) => `  ${formatRange(b.from, b.to).padEnd(10)} ${b.bitsPerByte.toFixed(4)}  (${b.count.toLocaleString('en-US')} bytes)`),
  ];
  io.stdout(lines.join('\n') + '\n');
  return result;
}

// ---------------------------------------------------------------------------------------------
// inspect of a session file (main.ts's inspect hands session files here)

/** True when `bytes` start with the magic of a toeplitz-lm session snapshot. */
export function isSessionFile(bytes: Uint8Array): boolean {
  return bytes.length >= SESSION_MAGIC.length && SESSION_MAGIC.every((b, i) => bytes[i] === b);
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * inspect a session file: print its fields as JSON (position, model fingerprint, sampler options, pending UTF-8
 * bytes, sizes), checked as restore checks them against `modelPath` (default: the shipped model). Refused bytes,
 * or a session of another model, throw a ModelError after printing what could be read.
 */
export function inspectSessionCommand(bytes: Uint8Array, path: string, modelPath: string, io: ModelCliIo = processIo()): void {
  const model = loadModelFile(modelPath);
  // the header, lengths, checksum and every field (the layer count is the model's: another model's is refused)
  const p = decodeSession(bytes, model.config.vocab, model.config.layers);
  const matches = hex(p.fingerprint) === hex(model.fingerprint);
  const info = {
    kind: 'toeplitz-lm session',
    formatVersion: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(8, true),
    bytes: bytes.length,
    position: p.position,
    model: { fingerprint: hex(p.fingerprint), checkedAgainst: modelPath, matches },
    sampler: { seed: p.seed, temperature: p.temperature, topK: p.topK, topP: p.topP, validUtf8: p.validUtf8, draws: p.draws },
    pendingUtf8: Array.from(p.pending),
    lastLogits: p.lastLogits.length,
    layers: p.decoders.map((d) => ({ bytes: d.length })),
    checksum: { valid: true },
  };
  io.stdout(JSON.stringify(info, null, 2) + '\n');
  if (!matches) throw new ModelError('wrong-model', `session ${path} belongs to another model (fingerprint ${info.model.fingerprint.slice(0, 16)}…, ${modelPath}'s is ${hex(model.fingerprint).slice(0, 16)}…); give its model with --model <file>`);
  model.restore(bytes); // the decoders and every cross-check restore runs
}

// ---------------------------------------------------------------------------------------------
// Argument parsers (InvalidArgumentError -> one line, exit 2)

function positiveInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
  return n;
}

function nonNegativeInt(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer >= 0, got "${text}"`);
  return n;
}

function finite(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${text}"`);
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Run a command; a bad combination of arguments found inside it is reported like commander's own (exit 2). */
async function usage(cmd: Command, run: () => unknown): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (e instanceof InvalidArgumentError) cmd.error(`error: ${e.message}`, { exitCode: 2, code: 'toeplitz.usage' });
    throw e;
  }
}

/** Add `generate` and `eval` to the program. */
export function registerModelCommands(program: Command, io: ModelCliIo = processIo()): void {
  const sampling = ['seed', 'temperature', 'topK', 'topP'];
  program
    .command('generate')
    .description('generate text with the language model, streamed to stdout (toeplitz-lm, DESIGN section 9)')
    .option('--model <file>', 'model .safetensors', DEFAULT_MODEL)
    .option('--prompt <text>', 'text to start from (with --resume: fed after the restored session)')
    .option('--tokens <n>', 'bytes to generate', positiveInt, 200)
    .option('--seed <s>', 'sampler seed (default 0)', finite)
    .option('--temperature <t>', 'sampling temperature, 0 = greedy (default 0.8)', finite)
    .option('--top-k <k>', 'sample among the k most likely bytes, 0 = all (default 0)', nonNegativeInt)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (default 0.95)', finite)
    .option('--stop <text>', 'stop after this text appears (repeatable)', collect)
    .option('--save <file>', 'write the session (snapshot) to this file afterwards, atomically')
    .addOption(new Option('--resume <file>', 'continue a session saved with --save (its sampling options apply)').conflicts(sampling))
    .option('--quiet', 'no summary line on stderr')
    .option('--no-echo', 'do not print the prompt before the generated text')
    .action(async (o: GenerateCliOptions, cmd: Command) => {
      await usage(cmd, () => generateCommand(o, io));
    });
  program
    .command('eval')
    .description('bits per byte of a text under the language model, streamed from its start, overall and by position')
    .option('--model <file>', 'model .safetensors', DEFAULT_MODEL)
    .option('--text <file>', 'text file to score (bytes)')
    .option('--heldout', "score only the held-out split: the bytes after the first floor(0.95 N) of --text; without --text, the model corpus's held-out split shipped in data/")
    .option('--limit <n>', 'score only the first n bytes', positiveInt)
    .option('--chunk <L>', 'tokens per prefill chunk', positiveInt, 512)
    .option('--json', 'print the result as JSON')
    .action(async (o: EvalCliOptions, cmd: Command) => {
      await usage(cmd, () => evalCommand(o, io));
    });
}
