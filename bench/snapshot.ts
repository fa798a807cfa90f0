// Snapshot benchmark: a 64k-token session (K = 512, m = dv = d = 64, 8 heads, chunks of 4096), then
// snapshot size vs the raw state bytes (bar <= 1.05x + 4 KiB) and save / restore time vs recomputing the
// session from its tokens (bar >= 100x faster). One session run; encode/decode timings are medians of 5.
// usage: npx tsx bench/snapshot.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ndarray from 'ndarray';
import { Decoder } from '../src/index.js';
import type { AttentionConfig } from '../src/engine/config.js';
import { decodeSnapshot, encodeSnapshot, loadSnapshot, saveSnapshot } from '../src/codec/index.js';
import { Rng } from '../src/math/rng.js';

export interface SnapshotBenchResult {
  tokens: number;
  rawStateBytes: number;
  snapshotBytes: number;
  sizeRatio: number;
  sizeBarBytes: number;
  recomputeSeconds: number;
  encodeSeconds: number;
  saveSeconds: number;
  decodeSeconds: number;
  loadSeconds: number;
  saveSpeedup: number;
  restoreSpeedup: number;
  identical: boolean;
  pass: boolean;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, (performance.now() - t0) / 1000];
}

export function runSnapshotBench(log: (line: string) => void = console.log, tokens = 65536): SnapshotBenchResult {
  const heads = 8;
  const d = 64;
  const dv = 64;
  const m = 64;
  const K = 512;
  const chunk = 4096;
  const brng = new Rng(17);
  const config: AttentionConfig = {
    heads,
    keyDim: d,
    valueDim: dv,
    features: { kind: 'prf', count: m, seed: 5 },
    rpe: { past: { bias: Array.from({ length: K }, (_, t) => -0.01 * t + 0.1 * brng.nextGaussian()), tail: { decay: 0.001 } } },
  };
  const dec = new Decoder(config);
  const rng = new Rng(1);
  const scale = 1 / Math.sqrt(Math.sqrt(d));
  let recompute = 0;
  for (let pos = 0; pos < tokens; pos += chunk) {
    const L = Math.min(chunk, tokens - pos);
    const fill = (n: number, s: number) => {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.nextGaussian() * s;
      return a;
    };
    const q = ndarray(fill(heads * L * d, scale), [heads, L, d]);
    const k = ndarray(fill(heads * L * d, scale), [heads, L, d]);
    const v = ndarray(fill(heads * L * dv, 1), [heads, L, dv]);
    const [, t] = timed(() => dec.chunk(q, k, v));
    recompute += t;
  }
  const raw = dec.stateBytes;
  const reps = 5;
  const dir = mkdtempSync(join(tmpdir(), 'tz-snapbench-'));
  try {
    const file = join(dir, 'session.snap');
    const enc: number[] = [];
    const save: number[] = [];
    const decT: number[] = [];
    const load: number[] = [];
    let bytes = encodeSnapshot(dec);
    let identical = true;
    for (let r = 0; r < reps; r++) {
      const [b, te] = timed(() => encodeSnapshot(dec));
      bytes = b;
      enc.push(te);
      save.push(timed(() => saveSnapshot(file, dec))[1]);
      const [restored, td] = timed(() => decodeSnapshot(bytes));
      decT.push(td);
      const [loaded, tl] = timed(() => loadSnapshot(file));
      load.push(tl);
      identical &&= Buffer.compare(Buffer.from(restored.snapshot()), Buffer.from(bytes)) === 0 && loaded.position === dec.position;
    }
    const res: SnapshotBenchResult = {
      tokens,
      rawStateBytes: raw,
      snapshotBytes: bytes.length,
      sizeRatio: bytes.length / raw,
      sizeBarBytes: 1.05 * raw + 4096,
      recomputeSeconds: recompute,
      encodeSeconds: median(enc),
      saveSeconds: median(save),
      decodeSeconds: median(decT),
      loadSeconds: median(load),
      saveSpeedup: recompute / median(save),
      restoreSpeedup: recompute / median(load),
      identical,
      pass: false,
    };
    res.pass = bytes.length <= res.sizeBarBytes && res.saveSpeedup >= 100 && res.restoreSpeedup >= 100 && identical;
    log(`### Snapshot, ${tokens} tokens, K = ${K}, m = dv = d = ${m}, ${heads} heads (chunks of ${chunk}; times are medians of ${reps})`);
    log('| | value | bar |');
    log('|---|---|---|');
    log(`| raw state bytes | ${raw} | - |`);
    log(`| snapshot bytes | ${bytes.length} (${res.sizeRatio.toFixed(4)}x raw, +${bytes.length - raw} B) | <= ${Math.floor(res.sizeBarBytes)} (1.05x + 4 KiB) |`);
    log(`| recompute session from tokens | ${recompute.toFixed(3)} s | - |`);
    log(`| encode (snapshot()) | ${(res.encodeSeconds * 1e3).toFixed(2)} ms | - |`);
    log(`| save (encode + atomic write + fsync) | ${(res.saveSeconds * 1e3).toFixed(2)} ms (${res.saveSpeedup.toFixed(0)}x faster than recompute) | >= 100x |`);
    log(`| decode (restore from bytes) | ${(res.decodeSeconds * 1e3).toFixed(2)} ms | - |`);
    log(`| load (read file + restore) | ${(res.loadSeconds * 1e3).toFixed(2)} ms (${res.restoreSpeedup.toFixed(0)}x faster than recompute) | >= 100x |`);
    log(`restored snapshot byte-identical: ${identical}; all bars met: ${res.pass}`);
    return res;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const n = Number(process.argv[2] ?? 65536);
  runSnapshotBench(console.log, n > 0 ? n : 65536);
}
