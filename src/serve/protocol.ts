// The messages between the HTTP front (main thread) and a session host (a worker thread, or the main thread
// itself with workers: 0). Plain data only: they cross postMessage as structured clones.
import type { ErrorBody } from './errors.js';
import type { HistogramData } from './metrics.js';

/** What a host needs to start: where the model and the store are, and the session settings. */
export interface HostConfig {
  /** a .safetensors path, or its bytes */
  model: string | Uint8Array;
  store: string;
  maxLive: number;
  leaseMs: number;
  checkpointEvery: number;
  /** close a live session idle this long (releases its lease for other replicas) */
  idleMs: number;
  /** how long a generation whose clients all left stays paused before it is ended where it stopped */
  pauseMs: number;
  /** how long a resume (GET .../generate) waits for another writer's lease (a dead replica's) to run out */
  resumeWaitMs: number;
  maxTokens: number;
}

export interface SamplingBody {
  seed?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
}

export type Request =
  | { rid: number; op: 'create'; id: string; prompt: string | null; sampling: SamplingBody }
  | { rid: number; op: 'info'; id: string }
  | { rid: number; op: 'delete'; id: string }
  | { rid: number; op: 'snapshot'; id: string }
  | { rid: number; op: 'import'; id: string; bytes: Uint8Array }
  | { rid: number; op: 'stats'; list: boolean }
  | { rid: number; op: 'close' }
  // streams: 'start', then 'token's, then 'done' (or 'error' at any point)
  | { rid: number; op: 'generate'; id: string; prompt: string; maxTokens: number; stop: string[] }
  | { rid: number; op: 'resume'; id: string; from: number }
  | { rid: number; op: 'complete'; prompt: string; maxTokens: number; stop: string[]; sampling: SamplingBody }
  /** the client of stream `target` left: stop feeding it (its generation pauses at the next token) */
  | { rid: number; op: 'cancel'; target: number }
  /** the client of stream `target` reads slower than it generates (its socket is full): hold, or go on */
  | { rid: number; op: 'hold'; target: number; held: boolean };

export interface Usage {
  /** tokens of the prompt fed by this call */
  promptTokens: number;
  /** tokens of the generation (all of them, also those a resume did not send again) */
  completionTokens: number;
  /** the session's position at the end */
  position: number;
  /** 'length' (maxTokens reached), 'stop' (a stop string), 'ended' (ended early: a client left) */
  finishReason: 'length' | 'stop' | 'ended';
}

export type Reply =
  | { rid: number; kind: 'ok'; value: unknown }
  | { rid: number; kind: 'error'; error: ErrorBody }
  | { rid: number; kind: 'start'; from: number }
  | { rid: number; kind: 'token'; token: number; text: string; position: number }
  | { rid: number; kind: 'done'; usage: Usage }
  | { rid: number; kind: 'ready' };

export interface HostStats {
  tokens: number;
  live: number;
  /** generations with a client, taking turns */
  running: number;
  /** sessions in the store (only when asked: listing costs a store round trip) */
  stored: number | null;
  checkpointSnapshot: HistogramData;
  checkpointWrite: HistogramData;
}
