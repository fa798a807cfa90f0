// Node-only helpers of toeplitz-attention/model: models and session snapshots as files. Never imported by
// ./index.ts, so the browser bundle of the model entry has no fs. Session files are written atomically.
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../codec/index.js';
import { ModelError } from './errors.js';
import { loadModel, type Model, type ModelOptions } from './model.js';
import type { Session } from './session.js';

function read(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ModelError('io', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** loadModel over a file's bytes. */
export function loadModelFile(path: string, options?: ModelOptions): Model {
  return loadModel(read(path, 'model file'), options);
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

/** model.restore over a file's bytes. */
export function loadSession(path: string, model: Model): Session {
  return model.restore(read(path, 'session file'));
}
