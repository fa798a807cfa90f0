// Streaming decode benchmark (one run, side by side): per-token step time at ~1k and ~60k with K = 512,
// state bytes at both, the floor (a bare dot-product loop over the same window), a crossover table of the
// A-form vs the partitioned FFT for chunk processing, chunked prefill vs one-shot attention(), worst latency.
import ndarray, { type NdArray } from 'ndarray';
import { attention, Decoder } from '../src/index.js';
import type { AttentionConfig } from '../src/engine/config.js';
import { chooseNear } from '../src/engine/costModel.js';
import { Rng } from '../src/math/rng.js';

const d = 64;

function tensor(rng: Rng, shape: number[]): NdArray<Float64Array> {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(size);
  for (let i = 0; i < size; i++) data[i] = rng.nextGaussian();
  return ndarray(data, shape);
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function config(K: number): AttentionConfig {
  const bias = Array.from({ length: K }, (_, t) => -Math.log1p(t) * 0.5);
  return { heads: 1, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias, tail: 'clip' } } };
}

/** Feed n tokens by chunks of 4096 (fast) so the decoder sits at position n. */
function prefill(dec: Decoder, rng: Rng, n: number): void {
  for (let p = 0; p < n; p += 4096) {
    const L = Math.min(4096, n - p);
    dec.chunk(tensor(rng, [1, L, d]), tensor(rng, [1, L, d]), tensor(rng, [1, L, d]));
  }
}

/** Per-token step times (seconds) over `count` steps. */
function timeSteps(dec: Decoder, rng: Rng, count: number): number[] {
  const toks = Array.from({ length: 64 }, () => [tensor(rng, [1, d]), tensor(rng, [1, d]), tensor(rng, [1, d])] as const);
  const out = ndarray(new Float64Array(d), [1, d]);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const [q, k, v] = toks[i % toks.length]!;
    const t = performance.now();
    dec.step(q, k, v, out);
    times.push((performance.now() - t) / 1000);
  }
  return times;
}

/** The floor: phi(q).phi(k_t) and the weighted v accumulation over K stored rows, nothing else. */
function timeFloor(K: number, count: number): number[] {
  const rng = new Rng(3);
  const phiK = Float64Array.from({ length: K * d }, () => Math.exp(rng.nextGaussian() - 2));
  const vals = Float64Array.from({ length: K * d }, () => rng.nextGaussian());
  const c = Float64Array.from({ length: K }, (_, t) => Math.exp(-0.01 * t));
  const q = Float64Array.from({ length: d }, () => Math.exp(rng.nextGaussian() - 2));
  const acc = new Float64Array(d + 1);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    acc.fill(0);
    for (let t = 0; t < K; t++) {
      let s = 0;
      const o = t * d;
      for (let r = 0; r < d; r++) s += q[r]! * phiK[o + r]!;
      const w = c[t]! * s;
      for (let col = 0; col < d; col++) acc[col] = acc[col]! + w * vals[o + col]!;
      acc[d] = acc[d]! + w;
    }
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}

export function runDecode(log: (line: string) => void = console.log, small = false): Record<string, unknown> {
  const rng = new Rng(77);
  const K = 512;
  const steps = small ? 200 : 3000;
  const far = small ? 5000 : 60_000;

  // (a) per-token time at ~1k and ~60k; (e) worst latency; (b) floor, all in one run, interleaved
  const early = new Decoder(config(K), { method: 'direct' });
  prefill(early, rng, 1000);
  const late = new Decoder(config(K), { method: 'direct' });
  prefill(late, rng, far);
  const tEarly: number[] = [];
  const tLate: number[] = [];
  const tFloor: number[] = [];
  for (let round = 0; round < 5; round++) {
    tEarly.push(...timeSteps(early, rng, steps / 5));
    tLate.push(...timeSteps(late, rng, steps / 5));
    tFloor.push(...timeFloor(K, steps / 5));
  }
  const mEarly = median(tEarly), mLate = median(tLate), mFloor = median(tFloor);
  log(`### Decode, K = ${K}, m = dv = d = 64, one head (${steps} steps each, medians)`);
  log('| | position | per-token µs | state bytes |');
  log('|---|---|---|---|');
  log(`| early | ${early.position} | ${(mEarly * 1e6).toFixed(1)} | ${early.stateBytes} |`);
  log(`| late | ${late.position} | ${(mLate * 1e6).toFixed(1)} | ${late.stateBytes} |`);
  log(`| floor (bare dot-product loop over K rows) | - | ${(mFloor * 1e6).toFixed(1)} | - |`);
  log(`late/early: ${(mLate / mEarly).toFixed(3)}x (bar <= 1.1); state bytes equal: ${early.stateBytes === late.stateBytes}; step/floor: ${(mLate / mFloor).toFixed(2)}x (bar <= 2)`);
  const worst = Math.max(...tEarly, ...tLate);
  log(`worst single-token latency: ${(worst * 1e6).toFixed(0)} µs (p99 ${(tLate.slice().sort((a, b) => a - b)[Math.floor(0.99 * tLate.length)]! * 1e6).toFixed(0)} µs)`);

  // per-token time vs position (one decoder, prefilled between samples by chunks)
  const curve: Array<{ position: number; seconds: number }> = [];
  const walker = new Decoder(config(K), { method: 'direct' });
  for (const target of small ? [500, 2000, 5000] : [500, 1000, 2000, 5000, 10000, 20000, 40000, 60000]) {
    if (walker.position < target) prefill(walker, rng, target - walker.position);
    curve.push({ position: walker.position, seconds: median(timeSteps(walker, rng, small ? 100 : 500)) });
  }
  log(`per-token µs by position: ${curve.map((c) => `${c.position}: ${(c.seconds * 1e6).toFixed(0)}`).join(', ')}`);

  // (c) crossover: per-token cost of a chunk of 2048 tokens after the window is full, A-form vs FFT
  log('');
  log('### Near-field crossover for chunks of 2048 tokens (per-token µs; * = cost model choice)');
  log('| K | A-form | FFT (block) | FFT/A-form |');
  log('|---|---|---|---|');
  const crossover: Array<Record<string, number | string>> = [];
  for (const Kc of small ? [256, 1024] : [256, 1024, 4096, 16384, 32768]) {
    const L = 2048;
    const row: Record<string, number | string> = { K: Kc };
    const times: Record<string, number> = {};
    let block = 0;
    for (const method of ['direct', 'fft'] as const) {
      const dec = new Decoder(config(Kc), { method });
      prefill(dec, new Rng(5), Kc);
      const q = tensor(rng, [1, L, d]), k = tensor(rng, [1, L, d]), v = tensor(rng, [1, L, d]);
      const t = performance.now();
      dec.chunk(q, k, v);
      times[method] = (performance.now() - t) / 1000 / L;
      if (method === 'fft') block = dec.lastStats[0]?.block ?? 0;
    }
    const choice = chooseNear(Kc, Kc + L, Kc, d, d).method;
    row.direct = times.direct!;
    row.fft = times.fft!;
    row.choice = choice;
    crossover.push(row);
    log(`| ${Kc} | ${(times.direct! * 1e6).toFixed(0)}${choice === 'direct' ? '*' : ''} | ${(times.fft! * 1e6).toFixed(0)}${choice === 'fft' ? '*' : ''} (${block}) | ${(times.fft! / times.direct!).toFixed(2)} |`);
  }

  // (d) chunked prefill in chunks of 4k vs one-shot attention()
  log('');
  const n = small ? 8192 : 65536;
  log(`### Prefill of ${n} tokens: chunks of 4096 through the Decoder vs one-shot attention()`);
  log('| K | one-shot s | chunked s | chunked/one-shot |');
  log('|---|---|---|---|');
  const prefillRows: Array<Record<string, number>> = [];
  for (const Kp of [K, 8192]) {
    const cfg = config(Kp);
    const r2 = new Rng(9);
    const q = tensor(r2, [1, n, d]), k = tensor(r2, [1, n, d]), v = tensor(r2, [1, n, d]);
    let t = performance.now();
    attention(cfg, q, k, v);
    const oneShot = (performance.now() - t) / 1000;
    const dec = new Decoder(cfg);
    t = performance.now();
    for (let p = 0; p < n; p += 4096) dec.chunk(q.hi(1, p + 4096, d).lo(0, p, 0), k.hi(1, p + 4096, d).lo(0, p, 0), v.hi(1, p + 4096, d).lo(0, p, 0));
    const chunked = (performance.now() - t) / 1000;
    prefillRows.push({ K: Kp, oneShot, chunked });
    log(`| ${Kp} | ${oneShot.toFixed(2)} | ${chunked.toFixed(2)} | ${(chunked / oneShot).toFixed(2)}x |`);
  }
  return { early: mEarly, late: mLate, floor: mFloor, worst, stateBytes: late.stateBytes, curve, crossover, prefill: prefillRows };
}

if (import.meta.url === `file://${process.argv[1]}`) runDecode(console.log, process.env.SMALL === '1');
