// The typed error of durable sessions and their stores. `code` says what happened, the message names the
// session (and the record, for damage) and says what was expected and what arrived. Bad options and ids are
// ConfigError (from core), as everywhere else in the library.
import { ToeplitzAttentionError } from '../core/errors.js';

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
