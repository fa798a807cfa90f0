// The command-line interface: run attention over .npy tensors, run benchmark suites, inspect snapshots.
// Bad arguments and bad files give one clear line on stderr and a non-zero exit, never a stack trace.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ndarray, { type NdArray } from 'ndarray';
import cliProgress from 'cli-progress';
import { attention, Decoder, ToeplitzAttentionError } from '../index.js';
import type { AttentionConfig, FeatureSpec, Tail } from '../index.js';
import { formatNpy, parseNpy } from './npy.js';
import { inspectSnapshot } from '../codec/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A user-facing failure: printed as one line, exit code 1 (2 for usage). */
export class CliError extends Error {}

function readTensor(path: string, name: string): NdArray<Float64Array | Float32Array> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CliError(`cannot read ${name} file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const arr = parseNpy(bytes);
  if (arr.shape.length !== 3) throw new CliError(`${name} (${path}) must have shape [heads, n, dim], got [${arr.shape.join(', ')}]`);
  return ndarray(arr.data, arr.shape.slice());
}

function parseBias(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const out = parts.map((s) => (s === '-inf' || s === '-Infinity' ? -Infinity : Number(s)));
  if (parts.length === 0 || out.some((x) => Number.isNaN(x) || x === Infinity)) {
    throw new InvalidArgumentError(`expected comma-separated numbers (or -inf), got "${text}"`);
  }
  return out;
}

function parseTail(text: string): Tail {
  if (text === 'clip' || text === 'zero') return text;
  const m = /^decay:(.+)$/.exec(text);
  if (m && Number.isFinite(Number(m[1])) && Number(m[1]) >= 0) return { decay: Number(m[1]) };
  throw new InvalidArgumentError(`expected clip, zero or decay:<rate >= 0>, got "${text}"`);
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${text}"`);
  return n;
}

interface RunOptions {
  q: string; k: string; v: string; out: string;
  bidirectional?: boolean; features: string; count: number; seed: number; normalize: 'l2' | 'scale' | 'none';
  bias: number[]; biasNpy?: string; tail: Tail; futureBias?: number[]; futureTail?: Tail;
  method: 'auto' | 'fft' | 'direct'; chunk?: number; quiet?: boolean;
}

function runCommand(o: RunOptions): void {
  const q = readTensor(o.q, 'q');
  const k = readTensor(o.k, 'k');
  const v = readTensor(o.v, 'v');
  const [heads, n, keyDim] = q.shape as [number, number, number];
  const valueDim = v.shape[2]!;
  let bias = o.bias;
  if (o.biasNpy !== undefined) {
    const b = parseNpy(readFileSync(o.biasNpy));
    if (b.shape.length !== 1) throw new CliError(`--bias-npy must hold a 1-d array, got shape [${b.shape.join(', ')}]`);
    bias = Array.from(b.data);
  }
  const features: FeatureSpec = o.features === 'prf' ? { kind: 'prf', count: o.count, seed: o.seed, normalize: o.normalize } : o.features === 'elu+1' || o.features === 'relu' ? { kind: o.features } : (() => { throw new CliError(`--features must be prf, elu+1 or relu, got ${o.features}`); })();
  const config: AttentionConfig = {
    heads, keyDim, valueDim, causal: !o.bidirectional, features,
    rpe: { past: { bias, tail: o.tail }, ...(o.futureBias ? { future: { bias: o.futureBias, tail: o.futureTail ?? 'clip' } } : {}) },
  };
  const t0 = performance.now();
  let z: NdArray<Float64Array>;
  if (o.chunk !== undefined) {
    if (o.bidirectional) throw new CliError('--chunk streams through the causal Decoder; it cannot be combined with --bidirectional');
    const dec = new Decoder(config, { method: o.method });
    z = ndarray(new Float64Array(heads * n * valueDim), [heads, n, valueDim]);
    const bar = o.quiet || n < 4 * o.chunk ? null : new cliProgress.SingleBar({ format: 'streaming |{bar}| {value}/{total} tokens', noTTYOutput: true }, cliProgress.Presets.shades_classic);
    bar?.start(n, 0);
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
  const tmp = `${o.out}.tmp-${process.pid}`;
  writeFileSync(tmp, formatNpy({ shape: z.shape, data: z.data }));
  renameSync(tmp, o.out);
  if (!o.quiet) console.log(`wrote ${o.out}: [${z.shape.join(', ')}] float64 in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
}

async function inspectCommand(path: string): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CliError(`cannot read snapshot ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const info = inspectSnapshot(bytes);
  console.log(JSON.stringify(info, (_k, val: unknown) => (ArrayBuffer.isView(val) ? `<${(val as Uint8Array).byteLength} bytes>` : val), 2));
  if (!info.checksum.valid) {
    throw new CliError(`corrupt snapshot ${path}: checksum mismatch (stored ${info.checksum.stored}, computed ${info.checksum.computed})`);
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('toeplitz-attention').description('Kernelized attention with relative positional encoding: exact, FFT-fast, streaming').exitOverride();
  program
    .command('run')
    .description('attention over q, k, v tensors from .npy files ([heads, n, dim], float32/float64, C order); writes z as .npy')
    .requiredOption('--q <file>', 'queries .npy [heads, n, keyDim]')
    .requiredOption('--k <file>', 'keys .npy [heads, n, keyDim]')
    .requiredOption('--v <file>', 'values .npy [heads, n, valueDim]')
    .requiredOption('--out <file>', 'output .npy [heads, n, valueDim] (written atomically)')
    .option('--bidirectional', 'attend to all positions (default: causal)')
    .option('--features <kind>', 'prf | elu+1 | relu', 'prf')
    .option('--count <m>', 'PRF feature count', positiveInt, 64)
    .option('--seed <s>', 'PRF projection seed', (s) => { const n = Number(s); if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${s}"`); return n; }, 0)
    .option('--normalize <mode>', 'l2 | scale | none', 'l2')
    .option('--bias <list>', 'past biases b(0),b(1),... comma-separated', parseBias, [0])
    .option('--bias-npy <file>', 'past biases from a 1-d .npy')
    .option('--tail <tail>', 'clip | zero | decay:<rate>', parseTail, 'clip' as Tail)
    .option('--future-bias <list>', 'future biases b(-1),b(-2),... (default: mirror of past)', parseBias)
    .option('--future-tail <tail>', 'tail of the future side', parseTail)
    .option('--method <method>', 'auto | fft | direct', 'auto')
    .option('--chunk <L>', 'stream through the causal Decoder in chunks of L tokens', positiveInt)
    .option('--quiet', 'no progress or summary')
    .action((o: RunOptions) => runCommand(o));
  program
    .command('bench')
    .description('run benchmark suites: prefill, decode, snapshot, calibrate (default: prefill and decode)')
    .argument('[suite]', 'suite name')
    .action((suite?: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'index.ts'), ...(suite ? [suite] : [])], { stdio: 'inherit' });
      if (r.status !== 0) throw new CliError(`bench ${suite ?? ''} failed with exit code ${r.status}`);
    });
  program
    .command('inspect')
    .description('print a snapshot header (format version, config, position, sizes) and verify its checksum')
    .argument('<snapshot>', 'snapshot file')
    .action(async (path: string) => inspectCommand(path));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed the message
    if (e instanceof CliError || e instanceof ToeplitzAttentionError) {
      console.error(`toeplitz-attention: ${e.message}`);
      return 1;
    }
    console.error(`toeplitz-attention: unexpected error: ${(e as Error).message ?? String(e)}`);
    return 1;
  }
}
