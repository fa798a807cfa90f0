// A pool worker: runs the library's own attention() or DecoderCore.chunk on one head group, so its output is
// the very computation the calling thread would have done on those rows (heads are independent). A split
// head (exchange.ts) runs the same attention() sharing its FFT channels with the partner worker.
// One task at a time, in arrival order; the pool never sends a second before the reply to the first.
import { parentPort } from 'node:worker_threads';
import ndarray from 'ndarray';
import { attentionSplit } from '../engine/attention.js';
import { resolveConfig, type ResolvedConfig } from '../engine/config.js';
import { DecoderCore } from '../engine/decoder.js';
import type { DecoderState } from '../engine/state.js';
import { SharedExchange } from './exchange.js';
import { CONFIG_CACHE_SIZE, type AttentionStats, type AttentionTask, type ChunkTask, type GroupConfig, type Reply, type Task, type WireError } from './protocol.js';
import { sameNumbers } from '../core/arrays.js';

const port = parentPort;
if (port === null) throw new Error('toeplitz-attention/threads: worker.js must run as a worker thread (it is started by createPool)');

/** Resolved group configs by key, least recently used first (the pool mirrors this order). */
const configs = new Map<string, ResolvedConfig>();

function groupConfig(ref: GroupConfig): ResolvedConfig {
  let cfg = configs.get(ref.key);
  if (cfg !== undefined) {
    configs.delete(ref.key);
  } else {
    if (ref.spec === undefined) throw new Error(`toeplitz-attention/threads: config ${ref.key} is not cached in this worker and came without its spec`);
    cfg = resolveConfig(ref.spec);
  }
  configs.set(ref.key, cfg);
  if (configs.size > CONFIG_CACHE_SIZE) configs.delete(configs.keys().next().value!);
  return cfg;
}

/**
 * Sub-decoders kept between chunk tasks, per (group config, method, backend), with a copy of the state they
 * exported last. The usual loop sends that very state back with the next chunk: the decoder then simply
 * continues (a decoder whose exported state is S continues exactly as fromState(S) would: the restore
 * contract), with no rebuild. Any other state goes through replaceState (reusing the workspace).
 */
interface Session {
  dec: DecoderCore;
  /** what dec.exportState() gave after its last chunk (copies: the reply's arrays were transferred) */
  last: DecoderState | null;
  /** last is dec's state (false from the start of a task until its chunk has run) */
  valid: boolean;
}
const sessions = new Map<string, Session>();

function sameState(a: DecoderState, b: DecoderState): boolean {
  if (a.position !== b.position || a.method !== b.method || a.backend !== b.backend || a.dtype !== b.dtype || a.heads.length !== b.heads.length) return false;
  return a.heads.every((h, i) => {
    const g = b.heads[i]!;
    return h.keyExp === g.keyExp && h.valueExp === g.valueExp && sameNumbers(h.ringK, g.ringK) && sameNumbers(h.ringV, g.ringV) && sameNumbers(h.farSum, g.farSum) && sameNumbers(h.farComp, g.farComp);
  });
}

/** A copy of s, into the arrays of `into` where their lengths match (no fresh memory per chunk once rings are full). */
function copyState(s: DecoderState, into: DecoderState | null): DecoderState {
  const copy = <T extends Float64Array | Float32Array>(a: T, b: Float64Array | Float32Array | undefined): T => {
    if (b === undefined || b.length !== a.length || b.constructor !== a.constructor) return a.slice() as T;
    b.set(a);
    return b as T;
  };
  return {
    ...s,
    heads: s.heads.map((h, i) => {
      const o = into?.heads[i];
      return { ...h, ringK: copy(h.ringK, o?.ringK), ringV: copy(h.ringV, o?.ringV), farSum: copy(h.farSum, o?.farSum), farComp: copy(h.farComp, o?.farComp) };
    }),
  };
}

function sessionFor(cfg: ResolvedConfig, key: string, state: DecoderState): Session {
  const skey = `${key}/${state.method}/${state.backend}/${state.dtype ?? 'float64'}`;
  let s = sessions.get(skey);
  sessions.delete(skey);
  if (s !== undefined && s.dec.config === cfg && s.valid && s.last !== null && sameState(s.last, state)) {
    // continues as it stands
  } else if (s !== undefined && s.dec.config === cfg) {
    s.dec.replaceState(state);
  } else {
    s = { dec: DecoderCore.fromState(cfg, state, { method: state.method, backend: state.backend }), last: s?.last ?? null, valid: false };
  }
  s.valid = false; // until this task's chunk has run
  sessions.set(skey, s);
  if (sessions.size > CONFIG_CACHE_SIZE) sessions.delete(sessions.keys().next().value!);
  return s;
}

function runAttention(t: AttentionTask): Reply {
  const cfg = groupConfig(t.config);
  const g = cfg.heads;
  const stats: AttentionStats[] = [];
  const split = t.split === undefined ? undefined : new SharedExchange(t.split);
  const options = { method: t.method, backend: t.backend, block: t.block, dtype: t.dtype, ...(t.stats ? { onStats: (s: AttentionStats) => stats.push({ ...s }) } : {}) };
  let z;
  try {
    z = attentionSplit(cfg, ndarray(t.q, [g, t.n, cfg.keyDim]), ndarray(t.k, [g, t.n, cfg.keyDim]), ndarray(t.v, [g, t.n, cfg.valueDim]), options, split);
  } catch (e) {
    split?.abort(); // the partner must not wait for an exchange that will not come
    throw e;
  }
  // of a split head, half 0's result is attention()'s (half 1 skipped the parts that only half 0 needs)
  return { id: t.id, ok: true, z: split?.half === 1 ? new Float64Array(0) : (z.data as Float64Array | Float32Array), stats, recycle: [] };
}

function runChunk(t: ChunkTask): Reply {
  const cfg = groupConfig(t.config);
  const g = cfg.heads;
  const session = sessionFor(cfg, t.config.key, t.state);
  const dec = session.dec;
  const z = dec.chunk(ndarray(t.q, [g, t.L, cfg.keyDim]), ndarray(t.k, [g, t.L, cfg.keyDim]), ndarray(t.v, [g, t.L, cfg.valueDim]));
  const state = dec.exportState();
  session.last = copyState(state, session.last);
  session.valid = true;
  return { id: t.id, ok: true, z: z.data, stats: dec.lastStats, state, recycle: [] };
}

function wire(e: unknown): WireError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}), ...(e.stack === undefined ? {} : { stack: e.stack }) };
  }
  return { name: 'Error', message: String(e) };
}

/** Buffers of a reply's arrays (each freshly allocated here or the task's own, so moving them aliases nothing). */
function transferList(r: Reply): ArrayBuffer[] {
  if (!r.ok) return r.recycle;
  const list = [r.z.buffer as ArrayBuffer, ...r.recycle];
  for (const h of r.state?.heads ?? []) list.push(h.ringK.buffer as ArrayBuffer, h.ringV.buffer as ArrayBuffer, h.farSum.buffer as ArrayBuffer, h.farComp.buffer as ArrayBuffer);
  return list;
}

port.on('message', (t: Task) => {
  let reply: Reply;
  try {
    reply = t.kind === 'attention' ? runAttention(t) : runChunk(t);
  } catch (e) {
    reply = { id: t.id, ok: false, error: wire(e), recycle: [] };
  }
  // the inputs were copied into the engine's workspace: their buffers go back to the pool (shared ones stay shared)
  reply.recycle = t.kind === 'attention' && t.split !== undefined ? [] : [t.q.buffer as ArrayBuffer, t.k.buffer as ArrayBuffer, t.v.buffer as ArrayBuffer];
  port.postMessage(reply, transferList(reply));
});

port.postMessage({ ready: true });
