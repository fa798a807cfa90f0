// Threads: attention() and Decoder.chunk on the calling thread vs a pool of worker threads (src/threads),
// side by side in one process, alternating rounds (single first in even rounds, pool first in odd ones),
// medians of wall-clock time (the quantity threads improve). Other processes may be using the cores: the
// load average seen during the rounds is recorded with the results. Many heads are split into head groups;
// one head (n >= the pool's splitMinLength) runs on two workers that share its FFT channels.
//
// Wall clock alone cannot show what a second core gives when the machine is busy: Linux's autogroup
// scheduler (sched_autogroup_enabled = 1 here) shares the CPU between sessions, not threads, so while other
// sessions are runnable this process gets the same share with one thread or three. So the CPU time of every
// thread of the process is read too (Linux: /proc/self/task/<tid>/stat, 10 ms ticks), and the call's
// critical path is estimated as the calling thread's CPU plus that of the busiest other thread (the worker
// with the largest group; V8's helper threads run beside both variants). single critical path / pool
// critical path is the speed-up the pool gives when its threads get whole cores.
// The machine's busy time (/proc/stat) minus this process's tells how much CPU other processes took during
// each call: rounds where they took under QUIET_OTHERS cores in both calls are "quiet", and the median round
// ratio over those is reported beside the others (the wall-clock gain when the second core is really free).
//   npx tsx bench/threads.ts   (SMALL=1: tiny sizes; THREADS=n: pool size, default 2; BACKEND=js|wasm|auto;
//                               ONLY=text: the cases whose name contains it, e.g. ONLY=chunk; ROUNDS=n: rounds)
// Writes bench/results/threads.json.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import ndarray, { type NdArray } from 'ndarray';
import { attention, DecoderCore, type AttentionConfig, type DecoderState } from '../src/index.js';
import type { BackendOption } from '../src/backend/index.js';
import { Rng } from '../src/math/rng.js';
import { createPool, type AttentionPool } from '../src/threads/index.js';

const small = process.env.SMALL === '1';
const threads = Number(process.env.THREADS ?? 2);
const backend = (process.env.BACKEND ?? 'auto') as BackendOption;
const d = 64;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

function tensor(rng: Rng, shape: number[]): NdArray<Float64Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.nextGaussian();
  return ndarray(data, shape);
}

function sameBits(a: Float64Array | Float32Array, b: Float64Array | Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** CPU ticks (user + system, 1/100 s) of every thread of this process, by thread id; empty without /proc. */
function threadTicks(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // fields after "(comm) ": state is field 3, utime 14, stime 15
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, Number(f[11]) + Number(f[12]));
    }
  } catch {
    // not Linux
  }
  return out;
}
const TICK = 0.01;
const procOk = threadTicks().size > 0;

/** Busy CPU ticks of the whole machine (all cores, /proc/stat), or 0 without /proc. */
function machineTicks(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  } catch {
    return 0;
  }
}

/** Cores' worth of CPU other processes used during a timed call: the machine's busy ticks minus this process's. */
function othersLoad(m0: number, m1: number, own0: Map<string, number>, own1: Map<string, number>, seconds: number): number {
  let own = 0;
  for (const [tid, t] of own1) own += t - (own0.get(tid) ?? 0);
  return Math.max(0, (m1 - m0 - own) * TICK) / seconds;
}
/** A round is quiet when other processes used less than this many cores during both of its calls. */
const QUIET_OTHERS = 0.15;

/** Calling thread's CPU seconds plus the busiest other thread's, between two readings. */
function criticalPath(before: Map<string, number>, after: Map<string, number>): number {
  const main = String(process.pid);
  let own = 0;
  let busiest = 0;
  for (const [tid, t] of after) {
    const dt = t - (before.get(tid) ?? 0);
    if (tid === main) own = dt;
    else busiest = Math.max(busiest, dt);
  }
  return (own + busiest) * TICK;
}

function sameState(a: DecoderState, b: DecoderState): boolean {
  const keys = ['ringK', 'ringV', 'farSum', 'farComp'] as const;
  return a.position === b.position && a.method === b.method && a.backend === b.backend && a.heads.length === b.heads.length &&
    a.heads.every((h, i) => h.keyExp === b.heads[i]!.keyExp && h.valueExp === b.heads[i]!.valueExp && keys.every((key) => sameBits(h[key], b.heads[i]![key])));
}

/** A T5-like decreasing table with wiggles, values in [-20, 5] (as in bench/prefill.ts), one per head. */
function table(K: number, h: number): number[] {
  return Array.from({ length: K }, (_, t) => Math.max(-20, 5 - 2 * Math.log1p(t)) + 0.5 * Math.sin(0.7 * t + h));
}

function config(heads: number, K: number): AttentionConfig {
  return { heads, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: Array.from({ length: heads }, (_, h) => ({ past: { bias: table(K, h) } })) };
}

interface Case {
  name: string;
  rounds: number;
  /** one untimed run of each: are the outputs (and decoder states) equal bit for bit? */
  check: () => Promise<boolean>;
  single: () => void;
  pooled: () => Promise<void>;
  /** untimed preparation before each timed run */
  prepare?: () => void;
  /** after the rounds: are both sides still equal bit for bit? */
  after?: () => boolean;
}

interface Row {
  name: string;
  rounds: number;
  singleSeconds: number;
  poolSeconds: number;
  /** single / pool, wall clock (medians) */
  speedup: number;
  /** median over rounds of the per-round ratio (robust to load drifting between rounds) */
  roundSpeedup: number;
  /** rounds during which other processes used < QUIET_OTHERS cores (both calls), and their median round ratio */
  quietRounds: number;
  quietRoundSpeedup: number | null;
  /** CPU seconds of the process (all threads) per call: single, pool */
  singleCpu: number;
  poolCpu: number;
  /** critical-path CPU seconds per call (see the header; null where /proc is not there): single, pool, ratio */
  singlePath: number | null;
  poolPath: number | null;
  pathSpeedup: number | null;
  bitIdentical: boolean;
  load1: [number, number];
  single: number[];
  pool: number[];
}

async function measure(c: Case, log: (s: string) => void): Promise<Row> {
  const bitIdentical = await c.check();
  const single: number[] = [];
  const pooled: number[] = [];
  const singleCpu: number[] = [];
  const poolCpu: number[] = [];
  let loLoad = Infinity;
  let hiLoad = 0;
  // critical-path CPU summed over rounds (ticks are coarse: per-round values would be noise for short calls)
  let singlePath = 0;
  let poolPath = 0;
  const singleOthers: number[] = [];
  const poolOthers: number[] = [];
  const timeSingle = () => {
    c.prepare?.();
    const u = process.cpuUsage();
    const ticks = threadTicks();
    const m0 = machineTicks();
    const t = performance.now();
    c.single();
    const dt = (performance.now() - t) / 1000;
    single.push(dt);
    const du = process.cpuUsage(u);
    singleCpu.push((du.user + du.system) / 1e6);
    const after = threadTicks();
    singlePath += criticalPath(ticks, after);
    singleOthers.push(othersLoad(m0, machineTicks(), ticks, after, dt));
  };
  const timePool = async () => {
    c.prepare?.();
    const u = process.cpuUsage();
    const ticks = threadTicks();
    const m0 = machineTicks();
    const t = performance.now();
    await c.pooled();
    const dt = (performance.now() - t) / 1000;
    pooled.push(dt);
    const du = process.cpuUsage(u);
    poolCpu.push((du.user + du.system) / 1e6);
    const after = threadTicks();
    poolPath += criticalPath(ticks, after);
    poolOthers.push(othersLoad(m0, machineTicks(), ticks, after, dt));
  };
  for (let r = 0; r < c.rounds; r++) {
    if (r % 2 === 0) {
      timeSingle();
      await timePool();
    } else {
      await timePool();
      timeSingle();
    }
    const l = loadavg()[0]!;
    loLoad = Math.min(loLoad, l);
    hiLoad = Math.max(hiLoad, l);
  }
  const equalAfter = c.after?.() ?? true;
  const quiet = procOk ? single.map((_, i) => i).filter((i) => singleOthers[i]! < QUIET_OTHERS && poolOthers[i]! < QUIET_OTHERS) : [];
  const row: Row = {
    name: c.name,
    rounds: c.rounds,
    singleSeconds: median(single),
    poolSeconds: median(pooled),
    speedup: median(single) / median(pooled),
    roundSpeedup: median(single.map((s, i) => s / pooled[i]!)),
    quietRounds: quiet.length,
    quietRoundSpeedup: quiet.length > 0 ? median(quiet.map((i) => single[i]! / pooled[i]!)) : null,
    singleCpu: median(singleCpu),
    poolCpu: median(poolCpu),
    singlePath: procOk ? singlePath / c.rounds : null,
    poolPath: procOk ? poolPath / c.rounds : null,
    pathSpeedup: procOk && poolPath > 0 ? singlePath / poolPath : null,
    bitIdentical: bitIdentical && equalAfter,
    load1: [loLoad, hiLoad],
    single,
    pool: pooled,
  };
  const f = (x: number) => (x < 0.01 ? `${(x * 1000).toFixed(2)} ms` : `${x.toFixed(3)} s`);
  const path = row.pathSpeedup === null ? 'n/a | n/a' : `${f(row.singlePath!)} / ${f(row.poolPath!)} | **${row.pathSpeedup.toFixed(2)}x**`;
  log(`| ${row.name} | ${f(row.singleSeconds)} | ${f(row.poolSeconds)} | **${row.speedup.toFixed(2)}x** | ${row.roundSpeedup.toFixed(2)}x | ${f(row.singleCpu)} / ${f(row.poolCpu)} | ${path} | ${row.bitIdentical ? 'yes' : 'NO'} | ${loLoad.toFixed(1)}-${hiLoad.toFixed(1)} | ${row.quietRoundSpeedup === null ? '-' : `${row.quietRoundSpeedup.toFixed(2)}x`} (${row.quietRounds} of ${row.rounds}) |`);
  return row;
}

function attentionCase(pool: AttentionPool, heads: number, n: number, rounds: number): Case {
  const rng = new Rng(1000 + heads);
  const cfg = config(heads, n);
  const [q, k, v] = [tensor(rng, [heads, n, d]), tensor(rng, [heads, n, d]), tensor(rng, [heads, n, d])];
  const c: Case = {
    name: `attention, ${heads} head${heads > 1 ? 's' : ''}, n = ${n}, full table`,
    rounds,
    check: async () => {
      const splits = pool.splitCount;
      const same = sameBits(attention(cfg, q, k, v, { backend }).data, (await pool.attention(cfg, q, k, v, { backend })).data);
      if (pool.splitCount > splits) c.name += ' (one head over 2 workers)';
      return same;
    },
    single: () => void attention(cfg, q, k, v, { backend }),
    pooled: async () => void (await pool.attention(cfg, q, k, v, { backend })),
  };
  return c;
}

/** Streaming: two decoders with `history` tokens behind them take the same chunk each round, one on this thread, one through the pool. */
function chunkCase(pool: AttentionPool, heads: number, K: number, history: number, L: number, rounds: number): Case {
  const rng = new Rng(2000 + L);
  const cfg = config(heads, K);
  const a = new DecoderCore(cfg, { backend });
  a.chunk(tensor(rng, [heads, history, d]), tensor(rng, [heads, history, d]), tensor(rng, [heads, history, d]));
  let b = DecoderCore.fromState(cfg, a.exportState());
  const [q, k, v] = [tensor(rng, [heads, L, d]), tensor(rng, [heads, L, d]), tensor(rng, [heads, L, d])];
  return {
    name: `Decoder.chunk, ${heads} heads, K = ${K}, L = ${L} (from position ${history}, streaming)`,
    rounds,
    check: async () => {
      const za = a.chunk(q, k, v).data;
      const r = await pool.chunk(b, q, k, v);
      b = r.decoder;
      return sameBits(za, r.z.data);
    },
    after: () => sameState(a.exportState(), b.exportState()),
    single: () => void a.chunk(q, k, v),
    pooled: async () => {
      b = (await pool.chunk(b, q, k, v)).decoder;
    },
  };
}

const log = console.log;
const load0 = loadavg();
log(`# threads: single-threaded vs a pool of ${threads} workers (backend ${backend}, d = dv = m = ${d}); ${availableParallelism()} cores; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
const t0 = performance.now();
const pool = createPool({ threads });
await pool.ready();
log(`pool of ${threads} ready in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
const cases = small
  ? [attentionCase(pool, 1, 1024, 3), attentionCase(pool, 8, 1024, 3), chunkCase(pool, 8, 128, 256, 256, 3), chunkCase(pool, 8, 128, 256, 16, 5)]
  : [
      attentionCase(pool, 8, 16384, 5),
      attentionCase(pool, 1, 16384, 21),
      chunkCase(pool, 8, 512, 1024, 4096, 5),
      attentionCase(pool, 8, 1024, 9),
      chunkCase(pool, 8, 512, 1024, 256, 9),
      chunkCase(pool, 8, 512, 1024, 16, 21),
    ];
const only = process.env.ONLY;
const selected = only === undefined ? cases : cases.filter((c) => c.name.includes(only));
// ROUNDS=n: more rounds for the selected cases (on a busy machine, more chances of quiet ones)
if (process.env.ROUNDS !== undefined) for (const c of selected) c.rounds = Number(process.env.ROUNDS);
log('');
log(`| case | single | pool of ${threads} | wall speed-up (medians) | median of round ratios | process CPU single / pool | critical-path CPU single / pool | critical-path speed-up | bit-identical | load (1 min) | median round ratio in quiet rounds (others < ${QUIET_OTHERS} cores) |`);
log('|---|---|---|---|---|---|---|---|---|---|---|');
const rows: Row[] = [];
for (const c of selected) rows.push(await measure(c, log));
await pool.close();
const load1 = loadavg();
log(`\nload average after: ${load1.map((x) => x.toFixed(2)).join(' ')}`);

if (!small && only === undefined) {
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const results = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    date: new Date().toISOString(),
    threads,
    backend,
    loadAverage: { before: load0, after: load1 },
    rows,
  };
  writeFileSync(new URL('threads.json', dir), JSON.stringify(results, null, 2));
  log('wrote bench/results/threads.json');
}
