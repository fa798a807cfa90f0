// The server's error shape: { code, message } with an HTTP status. Library errors map to 4xx by their class
// and code; anything unexpected becomes 500 { code: 'internal' } with a fixed message (never a stack).
import { ConfigError, ShapeError, SnapshotError, StateError, ToeplitzAttentionError, ModelError, SessionError } from '../core/errors.js';

/** What a route answers with instead of a result; plain data, so it crosses a worker boundary as is. */
export interface ErrorBody {
  status: number;
  code: string;
  message: string;
  /** seconds, for 429 and 503 */
  retryAfter?: number;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | undefined;
  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const SESSION_STATUS: Record<string, number> = { busy: 409, fenced: 409, conflict: 409, damaged: 422, 'not-found': 404, closed: 409, store: 503 };

/** The error body of anything thrown while serving a request. */
export function errorBody(e: unknown): ErrorBody {
  if (e instanceof HttpError) return { status: e.status, code: e.code, message: e.message, ...(e.retryAfter !== undefined ? { retryAfter: e.retryAfter } : {}) };
  if (e instanceof SessionError) return { status: SESSION_STATUS[e.code] ?? 409, code: e.code, message: e.message, ...(e.code === 'store' || e.code === 'busy' ? { retryAfter: 1 } : {}) };
  if (e instanceof ModelError) return { status: e.code === 'wrong-model' ? 409 : 400, code: e.code === 'wrong-model' ? 'wrong-model' : 'invalid-snapshot', message: e.message };
  if (e instanceof SnapshotError) return { status: 400, code: 'invalid-snapshot', message: e.message };
  if (e instanceof ConfigError || e instanceof ShapeError) return { status: 400, code: 'invalid', message: e.message };
  if (e instanceof StateError) return { status: 409, code: 'state', message: e.message };
  if (e instanceof ToeplitzAttentionError) return { status: 400, code: 'refused', message: e.message };
  return { status: 500, code: 'internal', message: 'internal error (see the server log)' };
}
