// toeplitz-attention/web in Node (the package's "node" condition): the same engine, its worker under
// worker_threads. The worker module is the browser's, unchanged: a two-line adapter gives it the global
// postMessage / addEventListener of a worker scope over parentPort. A model given as a path or file: URL
// is read here and moved to the worker.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ModelError } from '../core/errors.js';
import { connect, type Engine, type EngineOptions, type Port } from './client.js';
import { localPort } from './local.js';
import type { Reply } from './protocol.js';
import { tsxImport, workerModuleUrl } from '../threads/workerModule.js';

export { Engine, WebSession, type EngineOptions, type EngineStats, type SessionStats } from './client.js';
export { DEFAULT_BROWSER_STORE } from './store.js';
export type { SessionInfo } from './protocol.js';

const WORKER_URL = workerModuleUrl('worker', import.meta.url);

/** The worker scope's postMessage / addEventListener over parentPort, then the worker module. */
function bootstrap(): string {
  // from the TypeScript sources (vitest, tsx) tsx is registered in the worker first (threads/workerModule.ts)
  const load = tsxImport(WORKER_URL) ?? `import(${JSON.stringify(WORKER_URL.href)})`;
  return `const { parentPort } = require('node:worker_threads');
globalThis.postMessage = (m, t) => parentPort.postMessage(m, t);
globalThis.addEventListener = (type, fn) => parentPort.on(type, (data) => fn({ data }));
${load}.catch((e) => { throw e; });`;
}

function nodeWorkerPort(): Port {
  const w = new Worker(bootstrap(), { eval: true });
  return {
    post: (m, t) => w.postMessage(m, t as never),
    onMessage: (handler) => w.on('message', (r: Reply) => handler(r)),
    onError: (handler) => {
      w.on('error', (e) => handler(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => handler(new Error(`the engine's worker exited (code ${code})`)));
    },
    terminate: () => void w.terminate(),
  };
}

/** createEngine as in browsers; `model` may also be a path or a file: URL (read here). */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  let model = options?.model;
  const file = model instanceof URL ? (model.protocol === 'file:' ? fileURLToPath(model) : null) : typeof model === 'string' && !/^https?:/.test(model) ? (model.startsWith('file:') ? fileURLToPath(model) : model) : null;
  if (file !== null) {
    try {
      model = readFileSync(file);
    } catch (e) {
      throw new ModelError('io', `cannot read the model file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  const inWorker = options.worker ?? true;
  return connect(inWorker ? nodeWorkerPort() : localPort(), inWorker, { ...options, model: model! });
}
