// Node-only helpers of toeplitz-attention/model: models and session snapshots as files. Never imported by
// ./index.ts, so the browser bundle of the model entry has no fs. Session files are written atomically.
// Files are read with bounded memory and time (codec's readFileBounded): anything but a regular file is
// refused before it is opened (a FIFO would block, /dev/zero never ends), then the header is read and
// checked, and the rest is read only when the file is exactly as long as its header says.
import { readFileBounded, writeFileAtomic, type BoundedRead } from '../codec/index.js';
import { ModelError } from '../core/errors.js';
import { loadModel, type Model, type ModelOptions } from './model.js';
import type { Session } from './session.js';
import type { RestoreOptions } from './session.js';
import { MAX_HEADER_BYTES, parseSafetensorsLayout, safetensorsHeaderLength } from './safetensors.js';
import { SESSION_HEADER_BYTES, checkSessionHeader } from './snapshot.js';

/** Largest model file read (weights beyond this do not fit one buffer in most runtimes anyway): 8 GiB. */
export const MAX_MODEL_FILE_BYTES = 8 * 2 ** 30;
/** Largest session file read: the header plus a uint32 payload length. */
export const MAX_SESSION_FILE_BYTES = SESSION_HEADER_BYTES + 0xffffffff;

function refuse(reason: 'not-regular' | 'too-large', message: string): Error {
  return new ModelError(reason === 'not-regular' ? 'io' : 'too-large', message);
}

const MODEL_READ: BoundedRead = {
  maxBytes: MAX_MODEL_FILE_BYTES,
  limit: `model files are read up to ${MAX_MODEL_FILE_BYTES} bytes`,
  headBytes: 8,
  checkHead(head, size) {
    // 8 bytes: the header length (refused when larger than the cap or the file); then the header, whose
    // layout must cover the file exactly: so the data read next is what the header announces
    if (head.length === 8) return 8 + safetensorsHeaderLength(head, size, MAX_HEADER_BYTES);
    parseSafetensorsLayout(head, size, MAX_HEADER_BYTES);
    return undefined;
  },
  refuse,
};

const SESSION_READ: BoundedRead = {
  maxBytes: MAX_SESSION_FILE_BYTES,
  limit: `a session file is at most ${MAX_SESSION_FILE_BYTES} bytes`,
  headBytes: SESSION_HEADER_BYTES,
  checkHead(head, size) {
    checkSessionHeader(head, size);
    return undefined;
  },
  refuse,
};

function read(path: string, what: string, how: BoundedRead): Uint8Array {
  if (typeof path !== 'string') throw new ModelError('io', `the ${what} path must be a string, got ${typeof path}`);
  try {
    return readFileBounded(path, how);
  } catch (e) {
    if (e instanceof ModelError) throw e;
    throw new ModelError('io', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** loadModel over a file's bytes (bounded read: see above). */
export function loadModelFile(path: string, options?: ModelOptions): Model {
  return loadModel(read(path, 'model file', MODEL_READ), options);
}

/** Write session.snapshot() to `path` atomically (temp file in the same folder, then rename). */
export function saveSession(path: string, session: Session): void {
  try {
    writeFileAtomic(path, session.snapshot());
  } catch (e) {
    if (e instanceof ModelError) throw e;
    throw new ModelError('io', `cannot write session file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** model.restore over a file's bytes (bounded read: see above). */
export function loadSession(path: string, model: Model, options?: RestoreOptions): Session {
  return model.restore(read(path, 'session file', SESSION_READ), options);
}

/** A text file's bytes (eval --text): regular files only (no FIFO, no device), read with bounded memory. */
export function readTextFile(path: string, maxBytes = 2 ** 31 - 1): Uint8Array {
  return read(path, 'text file', { maxBytes, limit: `text files are read up to ${maxBytes} bytes`, headBytes: 0, checkHead: () => undefined, refuse });
}
