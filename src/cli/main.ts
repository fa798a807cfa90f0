// The command-line interface: run attention over .npy tensors, export the PRF projection a seed gives,
// inspect snapshots; `generate` and `eval` of the language model come from ./model.ts. Bad arguments and bad files give one clear line on stderr and a non-zero exit (2 for
// usage errors, 1 for refused files and data), never a stack trace. Runs from dist/ (compiled JavaScript)
// through bin/toeplitz-attention.js; benchmarks are a repository command (`npm run bench`), not part of it.
import { Command, CommanderError, InvalidArgumentError, Option } from './args.js';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import ndarray, { type NdArray } from 'ndarray';
import { ProgressBar } from './progress.js';
import { attention, Decoder, drawProjection, ToeplitzAttentionError } from '../index.js';
import type { AttentionConfig, FeatureSpec, RpeSpec, Tail } from '../index.js';
import { formatNpy, parseNpy, type NpyArray } from './npy.js';
import { inspectSnapshot, writeFileAtomic } from '../codec/index.js';
import { DEFAULT_MODEL, inspectSessionCommand, isSessionFile, registerModelCommands } from './model.js';
import { errnoText, outputProblem } from './output.js';
import { registerServeCommand } from './serve.js';

/** A user-facing failure: printed as one line, exit code 1. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** A bad combination of arguments: one line, exit code 2 (like commander's own usage errors). */
class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Largest file Node's readFileSync reads in one piece (2 GiB - 1). */
const MAX_READ_BYTES = 2 ** 31 - 1;

/** The package version, read at run time from the package.json next to src/ or dist/. */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  if (typeof version !== 'string') throw new CliError('package.json has no version');
  return version;
}

// ---------------------------------------------------------------------------------------------
// Files

/** The stats of an input file, or a CliError saying what is missing or wrong about it. */
function statInput(path: string, what: string): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CliError(`${what} file not found: ${path}`);
    throw new CliError(`cannot read ${what} file ${path}: ${errnoText(e)}`);
  }
  if (st.isDirectory()) throw new CliError(`${what} file ${path} is a directory, expected a file`);
  if (!st.isFile()) throw new CliError(`${what} file ${path} is not a regular file (a FIFO, socket or device); expected a file`);
  if (st.size > MAX_READ_BYTES) throw new CliError(`${what} file ${path} is too large to read: ${st.size} bytes, the limit is ${MAX_READ_BYTES}`);
  return st;
}

/** Read a whole regular input file; missing, non-regular or unreadable files are one-line CliErrors. */
function readInput(path: string, what: string): Uint8Array {
  statInput(path, what);
  try {
    const buf = readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new CliError(`cannot read ${what} file ${path}: ${errnoText(e)}`);
  }
}

function readNpy(path: string, what: string): NpyArray {
  const bytes = readInput(path, what);
  try {
    return parseNpy(bytes);
  } catch (e) {
    if (e instanceof ToeplitzAttentionError) throw new CliError(`${what} file ${path}: ${e.message}`);
    throw e;
  }
}

/** Check before any work that `path` can be the output file (see outputProblem); a CliError if not. */
function checkOutput(path: string, option: string): void {
  const problem = outputProblem(path, option);
  if (problem !== null) throw new CliError(problem);
}

/** Write `bytes` to `path` atomically (the codec's writeFileAtomic: the library's one atomic writer). */
function writeAtomic(path: string, bytes: Uint8Array, option: string): void {
  checkOutput(path, option);
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw new CliError(`cannot write ${path}: ${errnoText(e)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Argument parsers (commander calls them; InvalidArgumentError -> one line, exit 2)

/** A plain decimal number: no empty strings, hex, whitespace-only or other surprises Number() accepts. */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function strictNumber(text: string): number {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : NaN;
}

export function parseBias(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out = parts.map((s) => (s === '-inf' || s === '-Infinity' ? -Infinity : strictNumber(s)));
  const bad = out.findIndex((x) => !Number.isFinite(x) && x !== -Infinity);
  if (bad >= 0) {
    const what = parts[bad] === '' ? `an empty entry at position ${bad + 1}` : `"${parts[bad]}" at position ${bad + 1}`;
    throw new InvalidArgumentError(`expected comma-separated numbers (or -inf), got "${text}" (${what})`);
  }
  return out;
}

function parseTail(text: string): Tail {
  if (text === 'clip' || text === 'zero') return text;
  const m = /^decay:(.+)$/.exec(text);
  const rate = m ? strictNumber(m[1]!) : NaN;
  if (Number.isFinite(rate) && rate >= 0) return { decay: rate };
  throw new InvalidArgumentError(`expected clip, zero or decay:<rate >= 0>, got "${text}"`);
}

function positiveInt(text: string): number {
  const n = strictNumber(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
  return n;
}

function finiteNumber(text: string): number {
  const n = strictNumber(text);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${text}"`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// run

interface RunOptions {
  q: string; k: string; v: string; out: string;
  bidirectional?: boolean; features: 'prf' | 'elu+1' | 'relu'; count?: number; seed?: number; projection?: string;
  orthogonal: boolean; normalize: 'l2' | 'scale' | 'none';
  bias?: number[]; biasNpy?: string; tail: Tail; futureBias?: number[]; futureTail?: Tail;
  method: 'auto' | 'fft' | 'direct'; chunk?: number; quiet?: boolean;
}

function readTensor(path: string, name: string): NdArray<Float64Array | Float32Array> {
  const arr = readNpy(path, name);
  if (arr.shape.length !== 3) throw new CliError(`${name} (${path}) must have shape [heads, n, dim], got [${arr.shape.join(', ')}]`);
  return ndarray(arr.data, arr.shape.slice());
}

/** Past biases: one list for all heads (--bias or a [K] .npy), or one row per head (a [heads, K] .npy). */
function readBiases(o: RunOptions, heads: number): number[] | number[][] {
  if (o.biasNpy === undefined) return o.bias ?? [0];
  const b = readNpy(o.biasNpy, '--bias-npy');
  const shape = `[${b.shape.join(', ')}]`;
  if (b.shape.length === 1) {
    if (b.shape[0] === 0) throw new CliError(`--bias-npy ${o.biasNpy} holds no biases (shape [0]); expected [K] or [${heads}, K] with K >= 1`);
    return Array.from(b.data);
  }
  if (b.shape.length === 2) {
    const [rows, K] = b.shape as [number, number];
    if (rows !== heads) throw new CliError(`--bias-npy ${o.biasNpy} has shape ${shape} but q has ${heads} heads: expected [K] or [${heads}, K]`);
    if (K === 0) throw new CliError(`--bias-npy ${o.biasNpy} holds no biases (shape ${shape}); expected [${heads}, K] with K >= 1`);
    return Array.from({ length: heads }, (_, h) => Array.from(b.data.subarray(h * K, (h + 1) * K)));
  }
  throw new CliError(`--bias-npy ${o.biasNpy} must have shape [K] or [heads, K], got ${shape}`);
}

function buildFeatures(o: RunOptions, cmd: Command, keyDim: number): FeatureSpec {
  if (o.features !== 'prf') {
    for (const name of ['projection', 'count', 'seed'] as const) {
      if (cmd.getOptionValueSource(name) === 'cli') throw new UsageError(`--${name} applies to --features prf only, got --features ${o.features}`);
    }
    return { kind: o.features };
  }
  if (o.projection === undefined) {
    return { kind: 'prf', count: o.count ?? 64, seed: o.seed ?? 0, normalize: o.normalize, orthogonal: o.orthogonal };
  }
  const w = readNpy(o.projection, '--projection');
  const shape = `[${w.shape.join(', ')}]`;
  if (w.shape.length !== 2) throw new CliError(`--projection ${o.projection} must have shape [count, keyDim], got ${shape}`);
  const [count, wKeyDim] = w.shape as [number, number];
  if (wKeyDim !== keyDim) throw new CliError(`--projection ${o.projection} has shape ${shape} but q has keyDim ${keyDim}: expected [count, ${keyDim}]`);
  if (count === 0) throw new CliError(`--projection ${o.projection} has no rows (shape ${shape}); expected [count, ${keyDim}] with count >= 1`);
  if (o.count !== undefined && o.count !== count) throw new UsageError(`--count ${o.count} disagrees with --projection ${o.projection} of shape ${shape} (count ${count})`);
  return { kind: 'prf', count, projection: w.data, normalize: o.normalize };
}

function runCommand(o: RunOptions, cmd: Command): void {
  if (o.chunk !== undefined && o.bidirectional) throw new UsageError('--chunk streams through the causal Decoder; it cannot be combined with --bidirectional');
  checkOutput(o.out, '--out');
  const q = readTensor(o.q, 'q');
  const k = readTensor(o.k, 'k');
  const v = readTensor(o.v, 'v');
  const [heads, n, keyDim] = q.shape as [number, number, number];
  const valueDim = v.shape[2]!;
  const features = buildFeatures(o, cmd, keyDim);
  const past = readBiases(o, heads);
  const future = o.futureBias ? { bias: o.futureBias, tail: o.futureTail ?? ('clip' as Tail) } : undefined;
  const side = (bias: number[]): RpeSpec => ({ past: { bias, tail: o.tail }, ...(future ? { future } : {}) });
  const rpe: RpeSpec | RpeSpec[] = Array.isArray(past[0]) ? (past as number[][]).map(side) : side(past as number[]);
  const config: AttentionConfig = { heads, keyDim, valueDim, causal: !o.bidirectional, features, rpe };
  const t0 = performance.now();
  let z: NdArray<Float64Array>;
  if (o.chunk !== undefined) {
    const dec = new Decoder(config, { method: o.method });
    z = ndarray(new Float64Array(heads * n * valueDim), [heads, n, valueDim]);
    const bar = o.quiet || n < 4 * o.chunk ? null : new ProgressBar({ label: 'streaming', unit: 'tokens' });
    bar?.start(n);
    for (let p = 0; p < n; p += o.chunk) {
      const L = Math.min(o.chunk, n - p);
      const part = dec.chunk(q.lo(0, p, 0).hi(heads, L, keyDim), k.lo(0, p, 0).hi(heads, L, keyDim), v.lo(0, p, 0).hi(heads, L, valueDim));
      for (let h = 0; h < heads; h++) z.data.set(part.data.subarray(h * L * valueDim, (h + 1) * L * valueDim), (h * n + p) * valueDim);
      bar?.update(p + L);
    }
    bar?.stop();
  } else {
    z = attention(config, q, k, v, { method: o.method });
  }
  writeAtomic(o.out, formatNpy({ shape: z.shape, data: z.data }), '--out');
  if (!o.quiet) console.log(`wrote ${o.out}: [${z.shape.join(', ')}] float64 in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}

// ---------------------------------------------------------------------------------------------
// export-projection

interface ExportOptions { count: number; keyDim: number; seed: number; orthogonal: boolean; dtype: 'float64' | 'float32'; out: string; quiet?: boolean }

function exportProjectionCommand(o: ExportOptions): void {
  checkOutput(o.out, '--out');
  const w = drawProjection(o.count, o.keyDim, o.seed, o.orthogonal);
  const data = o.dtype === 'float32' ? Float32Array.from(w) : w;
  writeAtomic(o.out, formatNpy({ shape: [o.count, o.keyDim], data }), '--out');
  if (!o.quiet) console.log(`wrote ${o.out}: W [${o.count}, ${o.keyDim}] ${o.dtype} (seed ${o.seed}, ${o.orthogonal ? 'orthogonal' : 'i.i.d. Gaussian'})`);
}

// ---------------------------------------------------------------------------------------------
// inspect

function inspectCommand(path: string, o: { model: string }): void {
  const bytes = readInput(path, 'snapshot');
  if (isSessionFile(bytes)) {
    try {
      inspectSessionCommand(bytes, path, o.model);
    } catch (e) {
      if (e instanceof ToeplitzAttentionError) throw new CliError(`session ${path} is refused: ${e.message}`);
      throw e;
    }
    return;
  }
  const info = inspectSnapshot(bytes);
  console.log(JSON.stringify(info, (_k, val: unknown) => (ArrayBuffer.isView(val) ? `<${(val as Uint8Array).byteLength} bytes>` : val), 2));
  if (!info.checksum.valid) {
    throw new CliError(`corrupt snapshot ${path}: checksum mismatch (stored ${info.checksum.stored}, computed ${info.checksum.computed})`);
  }
  // The same validation restore runs: a snapshot inspect accepts is one a Decoder can continue from.
  try {
    Decoder.restore(bytes);
  } catch (e) {
    if (e instanceof ToeplitzAttentionError) throw new CliError(`snapshot ${path} is refused by restore: ${e.message}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('toeplitz-attention')
    .description('Kernelized attention with relative positional encoding: exact, FFT-fast, streaming')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride();
  program
    .command('run')
    .description('attention over q, k, v tensors from .npy files ([heads, n, dim], float32/float64, C order); writes z as .npy')
    .requiredOption('--q <file>', 'queries .npy [heads, n, keyDim]')
    .requiredOption('--k <file>', 'keys .npy [heads, n, keyDim]')
    .requiredOption('--v <file>', 'values .npy [heads, n, valueDim]')
    .requiredOption('--out <file>', 'output .npy [heads, n, valueDim] float64 (written atomically)')
    .option('--bidirectional', 'attend to all positions (default: causal)')
    .addOption(new Option('--features <kind>', 'feature map').choices(['prf', 'elu+1', 'relu']).default('prf'))
    .option('--count <m>', 'PRF feature count (default 64)', positiveInt)
    .addOption(new Option('--seed <s>', 'PRF projection seed (default 0)').argParser(finiteNumber).conflicts('projection'))
    .option('--projection <file>', 'PRF projection W .npy [count, keyDim] (float32/float64), e.g. the W your model was trained with')
    .option('--no-orthogonal', 'draw W with i.i.d. Gaussian rows instead of orthogonal blocks')
    .addOption(new Option('--normalize <mode>', 'query/key normalization before the PRF map').choices(['l2', 'scale', 'none']).default('l2'))
    .option('--bias <list>', 'past biases b(0),b(1),... comma-separated, for all heads (default 0)', parseBias)
    .addOption(new Option('--bias-npy <file>', 'past biases from a .npy: [K] for all heads or [heads, K] per head').conflicts('bias'))
    .option('--tail <tail>', 'clip | zero | decay:<rate>', parseTail, 'clip' as Tail)
    .option('--future-bias <list>', 'future biases b(-1),b(-2),... (default: mirror of past)', parseBias)
    .option('--future-tail <tail>', 'tail of the future side', parseTail)
    .addOption(new Option('--method <method>', 'whole-sequence / near-field method').choices(['auto', 'fft', 'direct']).default('auto'))
    .option('--chunk <L>', 'stream through the causal Decoder in chunks of L tokens', positiveInt)
    .option('--quiet', 'no progress or summary')
    .action((o: RunOptions, cmd: Command) => runCommand(o, cmd));
  program
    .command('export-projection')
    .description('write the PRF projection W [count, keyDim] that a seed gives (as used by run --seed), e.g. to reproduce it in numpy')
    .requiredOption('--count <m>', 'feature count (rows of W)', positiveInt)
    .requiredOption('--key-dim <d>', 'key dimension (columns of W)', positiveInt)
    .option('--seed <s>', 'seed', finiteNumber, 0)
    .option('--no-orthogonal', 'i.i.d. Gaussian rows instead of orthogonal blocks')
    .addOption(new Option('--dtype <dtype>', 'element type of the file').choices(['float64', 'float32']).default('float64'))
    .requiredOption('--out <file>', 'output .npy (written atomically)')
    .option('--quiet', 'no summary')
    .action((o: ExportOptions) => exportProjectionCommand(o));
  program
    .command('inspect')
    .description('print a snapshot header (format version, config, position, sizes), verify its checksum and that restore accepts it; also reads session files (generate --save)')
    .argument('<snapshot>', 'decoder snapshot or session file')
    .option('--model <file>', 'for a session file: the model to check it against', DEFAULT_MODEL)
    .action((path: string, o: { model: string }) => inspectCommand(path, o));
  registerModelCommands(program);
  registerServeCommand(program);
  program
    .command('bench', { hidden: true })
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new CliError('bench is not part of the installed CLI: benchmarks run from a clone of the toeplitz-attention repository with `npm run bench` (or `npm run bench -- prefill|decode|snapshot|calibrate`)');
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed the message
    if (e instanceof CliError) {
      console.error(`toeplitz-attention: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof ToeplitzAttentionError) {
      console.error(`toeplitz-attention: ${e.message}`);
      return 1;
    }
    const err = e as NodeJS.ErrnoException;
    if (typeof err?.code === 'string' && typeof err.path === 'string') {
      console.error(`toeplitz-attention: cannot ${err.syscall ?? 'use'} ${err.path}: ${errnoText(err)}`);
      return 1;
    }
    console.error(`toeplitz-attention: unexpected error: ${err?.message ?? String(e)}`);
    return 1;
  }
}
