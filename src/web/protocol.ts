// Messages between the engine (client.ts, the page's thread) and its host (host.ts, in a worker or in
// the same thread). Plain data: byte arrays travel by transfer where the sender owns them (logits,
// snapshots, a model file read by the Node launcher), else by structured clone (a caller's bytes).
// Every request has an id and gets one reply; a generation is pulled one token per request ('next'),
// so the worker never runs ahead of the consumer: a break or an abort ends it exactly where the
// consumer stopped, as DurableSession does in-process.
import type { SamplerOptions } from '../model/sampler.js';
import type { DurableSessionOptions, PendingGeneration } from '../sessions/session.js';
import type { SessionInfo } from '../sessions/store.js';
import type { ModelConfig } from '../model/config.js';

export type ModelSource = { url: string } | { bytes: Uint8Array };

export type Request =
  | { id: number; op: 'init'; model: ModelSource; store: string | null }
  | { id: number; op: 'open'; session: string; options: DurableSessionOptions | undefined }
  | { id: number; op: 'import'; session: string; bytes: Uint8Array; options: DurableSessionOptions | undefined }
  | { id: number; op: 'feed'; handle: number; tokens: Uint8Array | number[]; lastOnly: boolean }
  | { id: number; op: 'setOptions'; handle: number; options: { temperature?: number; topK?: number; topP?: number } }
  | { id: number; op: 'generate'; handle: number; prompt: string | Uint8Array | number[]; maxTokens: unknown; stop: unknown }
  | { id: number; op: 'resume'; handle: number; from: number | undefined }
  | { id: number; op: 'next' | 'return' | 'snapshot' | 'checkpoint' | 'close'; handle: number }
  | { id: number; op: 'list' }
  | { id: number; op: 'delete'; session: string }
  | { id: number; op: 'dispose' };

/** What the engine mirrors of a session after every reply (its sync getters read this). */
export interface SessionState {
  position: number;
  pending: PendingGeneration | null;
  sampling: Required<SamplerOptions>;
  /** bytes of state carried from token to token (every layer's decoder state and the last logits) */
  stateBytes: number;
}

/** init's answer. */
export interface Ready {
  backend: 'js' | 'wasm';
  config: ModelConfig;
  store: string;
}

/** open's and import's answer. */
export interface Opened {
  handle: number;
  id: string;
}

export interface TokenWire {
  token: number;
  text: string;
  position: number;
}

/** An error crossing the boundary: the engine rebuilds the library's typed error from it (wire.ts). */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  /** extra fields of the typed errors: code, session, record, resource, requestedBytes, limitBytes */
  fields: Record<string, string | number | null | undefined>;
}

export type Reply =
  | { id: number; ok: true; value: unknown; state?: SessionState }
  | { id: number; ok: false; error: WireError; state?: SessionState };

export type { SessionInfo };
