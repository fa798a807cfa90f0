// Typed errors of the public boundary. Every message says what was expected and what arrived.

/** Base class of every error this library throws on purpose. */
export class ToeplitzAttentionError extends Error {
  constructor(message: string) {
    super(message);
    // set explicitly per class: minifiers rename classes, and users match on `name`
    this.name = 'ToeplitzAttentionError';
  }
}

/** A configuration (heads, dims, features, RPE, options) is malformed or inconsistent. */
export class ConfigError extends ToeplitzAttentionError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** A tensor has the wrong rank, sizes, dtype or holds NaN/Infinity. */
export class ShapeError extends ToeplitzAttentionError {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** A call is not valid in the engine's current state (e.g. a bidirectional config given to the Decoder). */
export class StateError extends ToeplitzAttentionError {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

export type SnapshotErrorCode = 'truncated' | 'corrupt' | 'unsupported-version' | 'not-a-snapshot' | 'inconsistent';

/** Snapshot bytes are refused; `code` says why, the message says what was expected and what arrived. */
export class SnapshotError extends ToeplitzAttentionError {
  readonly code: SnapshotErrorCode;
  constructor(code: SnapshotErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'SnapshotError';
    this.code = code;
  }
}

/** 'wasm-memory': a WebAssembly memory; 'arena': the regions of an Arena (createArena) ran out. */
export type ResourceKind = 'wasm-memory' | 'arena';

/**
 * The runtime refused memory a call needs (a WebAssembly memory it could not reserve, or one past the 4 GiB
 * wasm32 limit), or an arena has no room left for an owner. Nothing was changed. `requestedBytes` is what was
 * asked; `limitBytes` the limit it exceeds (null when the runtime itself refused, e.g. its address-space
 * reservations are exhausted; an arena's size for 'arena').
 */
export class ResourceError extends ToeplitzAttentionError {
  readonly resource: ResourceKind;
  readonly requestedBytes: number;
  readonly limitBytes: number | null;
  constructor(resource: ResourceKind, requestedBytes: number, limitBytes: number | null, message: string) {
    super(message);
    this.name = 'ResourceError';
    this.resource = resource;
    this.requestedBytes = requestedBytes;
    this.limitBytes = limitBytes;
  }
}

/** Describe a value briefly for an error message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length: number }).length}`;
  if (typeof value === 'object') return `an object with keys [${Object.keys(value).slice(0, 8).join(', ')}]`;
  return typeof value;
}

// The model's error (`toeplitz-attention/model`): model files, configs and session snapshots.
export type ModelErrorCode =
  | 'truncated' // the bytes end before a length they declare
  | 'header' // the safetensors header (length, JSON, entry layout) is malformed
  | 'config' // __metadata__.config is missing or not a valid toeplitz-lm/1 config
  | 'tensor' // a tensor is missing, extra, of the wrong dtype or shape, misplaced, or holds NaN/Infinity
  | 'snapshot' // session snapshot bytes are malformed (magic, version, lengths, checksum, contents)
  | 'wrong-model' // a session snapshot of another model
  | 'backend' // a session snapshot made on another backend than the model's (restore option backend: 'model' accepts it)
  | 'overflow' // a forward pass overflowed float64 (weights too large for the input): the call was refused, the session left unchanged
  | 'too-large' // the config needs more working memory than allowed, or a file is larger than its format allows
  | 'io'; // a file could not be read or written (Node helpers)

/** Model bytes, a model config or a session snapshot are refused. */
export class ModelError extends ToeplitzAttentionError {
  readonly code: ModelErrorCode;
  constructor(code: ModelErrorCode, message: string) {
    super(`${code}: ${message}`);
    // explicit: minifiers rename classes, and users match on `name`
    this.name = 'ModelError';
    this.code = code;
  }
}

// The durable sessions' error (`toeplitz-attention/sessions`) and their stores'.
export type SessionErrorCode =
  | 'busy' // another live writer holds the session's lease
  | 'fenced' // this writer's lease was taken over (or the session deleted): its writes are refused
  | 'damaged' // a checkpoint or journal record is truncated, corrupted or does not belong here
  | 'store' // the store failed (unreachable, I/O error): nothing unacknowledged was kept, retry later
  | 'conflict' // a journal record with this sequence number already exists
  | 'not-found' // no such session
  | 'closed'; // the session or store was closed

/** A durable session or a store refused an operation. */
export class SessionError extends ToeplitzAttentionError {
  readonly code: SessionErrorCode;
  /** the session concerned, when there is one */
  readonly session: string | undefined;
  /** the record concerned (e.g. 'checkpoint', 'journal record 7'), for 'damaged' */
  readonly record: string | undefined;
  constructor(code: SessionErrorCode, message: string, session?: string, record?: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`);
    // explicit: minifiers rename classes, and users match on `name`
    this.name = 'SessionError';
    this.code = code;
    this.session = session;
    this.record = record;
    if (options?.cause !== undefined) (this as { cause?: unknown }).cause = options.cause;
  }
}
