// The model's typed error. `code` says which check refused the input; the message says what was expected
// and what arrived. Bad options are ConfigError and calls invalid in a session's state are StateError (both
// from core), as everywhere else in the library.
import { ToeplitzAttentionError } from '../core/errors.js';

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
