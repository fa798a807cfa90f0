// Streaming decode benchmark (one run, side by side): per-token step time at ~1k and ~60k with K = 512,
// state bytes at both, the floor (a bare dot-product loop over the same window), a crossover table of the
// A-form vs the partitioned FFT for chunk processing, chunked prefill vs one-shot attention(), worst latency, and
// the float32 step (dtype 'float32') against the float64 step, 8 heads, on both backends.
import ndarray, { type NdArray } from 'ndarray';
import { attention, Decoder } from '../src/index.js';
import type { AttentionConfig } from '../src/engine/config.js';
import { chooseNear, COSTS } from '../src/engine/costModel.js';
import { createWorkspace, type BackendName } from '../src/backend/index.js';
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

function config(K: number, heads = 1): AttentionConfig {
  const bias = Array.from({ length: K }, (_, t) => -Math.log1p(t) * 0.5);
  return { heads, keyDim: d, valueDim: d, features: { kind: 'prf', count: d, seed: 1 }, rpe: { past: { bias, tail: 'clip' } } };
}

/**
 * Decoder.step in float32 vs float64: 8 heads, K = 512 (window full, 2000 tokens in), d = dv = m = 64, per backend.
 * CPU time (process.cpuUsage) of batches of steps, the two dtypes alternating batch by batch (which goes first
 * alternates too), medians per step after a warm-up.
 */
function timeDtypeSteps(backend: BackendName, rounds: number, batch: number): { float64: number; float32: number } {
  const H = 8;
  const rng = new Rng(31);
  const decs = { float64: new Decoder(config(512, H), { method: 'direct', backend }), float32: new Decoder(config(512, H), { method: 'direct', backend, dtype: 'float32' }) };
  for (const dec of Object.values(decs)) {
    const r = new Rng(32);
    dec.chunk(tensor(r, [H, 2000, d]), tensor(r, [H, 2000, d]), tensor(r, [H, 2000, d]));
  }
  const toks = Array.from({ length: 16 }, () => [tensor(rng, [H, d]), tensor(rng, [H, d]), tensor(rng, [H, d])] as const);
  const out = ndarray(new Float64Array(H * d), [H, d]);
  const per: Record<'float64' | 'float32', number[]> = { float64: [], float32: [] };
  const warm = 4;
  for (let round = 0; round < rounds + warm; round++) {
    for (const key of round % 2 === 0 ? (['float64', 'float32'] as const) : (['float32', 'float64'] as const)) {
      const dec = decs[key];
      const c0 = process.cpuUsage();
      for (let i = 0; i < batch; i++) {
        const [q, k, v] = toks[i % toks.length]!;
        dec.step(q, k, v, out);
      }
      const c = process.cpuUsage(c0);
      if (round >= warm) per[key].push((c.user + c.system) / 1e6 / batch);
    }
  }
  return { float64: median(per.float64), float32: median(per.float32) };
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

/** The WASM floor: the backend's bare A-form window loop (aformRing) over K rows in its own memory. */
function timeWasmFloor(K: number, count: number): number[] {
  const rng = new Rng(3);
  const ws = createWorkspace('wasm', 4 * K * d + 4 * d + 64);
  const c = ws.f64(K), ringK = ws.f64(K * d), ringV = ws.f64(K * d), phiQ = ws.f64(d), acc = ws.f64(d + 1);
  for (let t = 0; t < K; t++) c[t] = Math.exp(-0.01 * t);
  for (let i = 0; i < K * d; i++) {
    ringK[i] = Math.exp(rng.nextGaussian() - 2);
    ringV[i] = rng.nextGaussian();
  }
  for (let r = 0; r < d; r++) phiQ[r] = Math.exp(rng.nextGaussian() - 2);
  const args = { c, ringK, ringV, start: 17, len: K, cap: K, phiQ, qOff: 0, m: d, dv: d, acc, aOff: 0 };
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    acc.fill(0);
    ws.aformRing(args);
    times.push((performance.now() - t0) / 1000);
  }
  return times;
}

/** The JS floor: phi(q).phi(k_t) and the weighted v accumulation over K stored rows, nothing else. */
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

/** (f) of runDecode alone (SECTION=dtype): the float32 step vs the float64 step on both backends. */
export function runDtypeSteps(log: (line: string) => void = console.log, small = false): Record<string, { float64: number; float32: number }> {
  const rows: Record<string, { float64: number; float32: number }> = {};
  log('### Decoder.step, dtype float32 vs float64: 8 heads, K = 512, m = dv = d = 64 (CPU µs per step, medians of alternating batches)');
  log('| backend | float64 µs | float32 µs | float32/float64 |');
  log('|---|---|---|---|');
  for (const b of ['wasm', 'js'] as const) {
    const r = timeDtypeSteps(b, small ? 6 : 30, b === 'wasm' ? (small ? 20 : 100) : small ? 4 : 20);
    rows[b] = r;
    log(`| ${b} | ${(r.float64 * 1e6).toFixed(1)} | ${(r.float32 * 1e6).toFixed(1)} | ${(r.float32 / r.float64).toFixed(3)}x${b === 'wasm' ? ' (bar <= 0.7)' : ''} |`);
  }
  return rows;
}

export function runDecode(log: (line: string) => void = console.log, small = false): Record<string, unknown> {
  const rng = new Rng(77);
  const K = 512;
  const steps = small ? 200 : 3000;
  const far = small ? 5000 : 60_000;

  // (a) per-token time at ~1k and ~60k on both backends; (e) worst latency; (b) floors, all in one run, interleaved
  const backends: BackendName[] = ['wasm', 'js'];
  const early = Object.fromEntries(backends.map((b) => [b, new Decoder(config(K), { method: 'direct', backend: b })])) as Record<BackendName, Decoder>;
  const late = Object.fromEntries(backends.map((b) => [b, new Decoder(config(K), { method: 'direct', backend: b })])) as Record<BackendName, Decoder>;
  for (const b of backends) {
    prefill(early[b], new Rng(1), 1000);
    prefill(late[b], new Rng(2), far);
  }
  const t: Record<string, number[]> = { wasmEarly: [], wasmLate: [], jsEarly: [], jsLate: [], wasmFloor: [], jsFloor: [] };
  for (let round = 0; round < 5; round++) {
    for (const b of backends) {
      t[`${b}Early`]!.push(...timeSteps(early[b], rng, steps / 5));
      t[`${b}Late`]!.push(...timeSteps(late[b], rng, steps / 5));
    }
    t.wasmFloor!.push(...timeWasmFloor(K, steps / 5));
    t.jsFloor!.push(...timeFloor(K, steps / 5));
  }
  const med = Object.fromEntries(Object.entries(t).map(([k, xs]) => [k, median(xs)])) as Record<string, number>;
  log(`### Decode, K = ${K}, m = dv = d = 64, one head (${steps} steps each, medians, rounds interleaved)`);
  log('| backend | early µs (pos ' + early.wasm.position + ') | late µs (pos ' + late.wasm.position + ') | late/early | floor µs | late/floor | state bytes early / late |');
  log('|---|---|---|---|---|---|---|');
  for (const b of backends) {
    log(`| ${b} | ${(med[`${b}Early`]! * 1e6).toFixed(1)} | ${(med[`${b}Late`]! * 1e6).toFixed(1)} | ${(med[`${b}Late`]! / med[`${b}Early`]!).toFixed(3)}x | ${(med[`${b}Floor`]! * 1e6).toFixed(1)} | ${(med[`${b}Late`]! / med[`${b}Floor`]!).toFixed(2)}x | ${early[b].stateBytes} / ${late[b].stateBytes} |`);
  }
  log(`WASM vs JS step (late): ${(med.jsLate! / med.wasmLate!).toFixed(2)}x (bar >= 4); late/early (WASM) ${(med.wasmLate! / med.wasmEarly!).toFixed(3)} (bar <= 1.1); step/floor (WASM) ${(med.wasmLate! / med.wasmFloor!).toFixed(2)} (bar <= 2)`);
  const mEarly = med.wasmEarly!, mLate = med.wasmLate!, mFloor = med.wasmFloor!;
  const worst = Math.max(...t.wasmEarly!, ...t.wasmLate!);
  log(`worst single-token latency (WASM): ${(worst * 1e6).toFixed(0)} µs (p99 ${(t.wasmLate!.slice().sort((a, b) => a - b)[Math.floor(0.99 * t.wasmLate!.length)]! * 1e6).toFixed(0)} µs)`);

  // (f) the float32 step vs the float64 step (issue 21's bar: <= 0.7x), 8 heads, CPU time
  log('');
  const dtypeRows = runDtypeSteps(log, small);
  log('');

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
    const choice = chooseNear(Kc, Kc + L, Kc, d, d, COSTS.wasm).method;
    row.direct = times.direct!;
    row.fft = times.fft!;
    row.choice = choice;
    crossover.push(row);
    log(`| ${Kc} | ${(times.direct! * 1e6).toFixed(0)}${choice === 'direct' ? '*' : ''} | ${(times.fft! * 1e6).toFixed(0)}${choice === 'fft' ? '*' : ''} (${block}) | ${(times.fft! / times.direct!).toFixed(2)} |`);
  }

  // (d) chunked prefill in chunks of 4k vs one-shot attention(): 3 rounds alternating which goes first, medians of
  // CPU seconds (one-shot calls reuse attention()'s idle WASM memory after the first; every round's decoder is
  // new, as a new session is, and pays for its own memory)
  log('');
  const n = small ? 8192 : 65536;
  log(`### Prefill of ${n} tokens: chunks of 4096 through the Decoder vs one-shot attention() (CPU s, medians of 3 alternating rounds)`);
  log('| K | one-shot s | chunked s | chunked/one-shot |');
  log('|---|---|---|---|');
  const prefillRows: Array<Record<string, number>> = [];
  const cpu = (fn: () => void): number => {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1e6;
  };
  for (const Kp of [K, 8192]) {
    const cfg = config(Kp);
    const r2 = new Rng(9);
    const q = tensor(r2, [1, n, d]), k = tensor(r2, [1, n, d]), v = tensor(r2, [1, n, d]);
    const oneShots: number[] = [];
    const chunkeds: number[] = [];
    const runOneShot = () => oneShots.push(cpu(() => attention(cfg, q, k, v)));
    const runChunked = () => {
      const dec = new Decoder(cfg);
      chunkeds.push(cpu(() => {
        for (let p = 0; p < n; p += 4096) dec.chunk(q.hi(1, p + 4096, d).lo(0, p, 0), k.hi(1, p + 4096, d).lo(0, p, 0), v.hi(1, p + 4096, d).lo(0, p, 0));
      }));
    };
    for (let round = 0; round < 3; round++) {
      if (round % 2 === 0) {
        runOneShot();
        runChunked();
      } else {
        runChunked();
        runOneShot();
      }
    }
    const oneShot = median(oneShots);
    const chunked = median(chunkeds);
    prefillRows.push({ K: Kp, oneShot, chunked });
    log(`| ${Kp} | ${oneShot.toFixed(2)} | ${chunked.toFixed(2)} | ${(chunked / oneShot).toFixed(2)}x |`);
  }
  return { early: mEarly, late: mLate, floor: mFloor, jsEarly: med.jsEarly, jsLate: med.jsLate, jsFloor: med.jsFloor, worst, stateBytes: late.wasm.stateBytes, curve, crossover, prefill: prefillRows, dtypeSteps: dtypeRows };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.env.SECTION === 'dtype') runDtypeSteps(console.log, process.env.SMALL === '1');
  else runDecode(console.log, process.env.SMALL === '1');
}
