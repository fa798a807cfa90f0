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
