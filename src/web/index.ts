// toeplitz-attention/web: the model in a Web Worker, durable sessions (IndexedDB by default) mirrored
// over messages, for pages that stream and resume without blocking their main thread (DESIGN section 11).
// Browser-safe: no Node built-in, no Redis client, no file store. In Node, the package's "node" condition
// gives ./node.js instead (the same engine over worker_threads).
import { connect, type Engine, type EngineOptions, type Port } from './client.js';
import type { Reply } from './protocol.js';

export { Engine, WebSession, type EngineOptions, type EngineStats, type SessionStats } from './client.js';
export { DEFAULT_BROWSER_STORE } from './store.js';
export type { SessionInfo } from './protocol.js';

function workerPort(url: string | URL | undefined): Port {
  // the literal form lets Vite and webpack find and bundle the worker
  const w = url === undefined ? new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }) : new Worker(url, { type: 'module' });
  return {
    post: (m, t) => w.postMessage(m, t),
    onMessage: (handler) => w.addEventListener('message', (e: MessageEvent<Reply>) => handler(e.data)),
    onError: (handler) => {
      w.addEventListener('error', (e: ErrorEvent) => {
        e.preventDefault();
        handler(new Error(`the engine's worker failed: ${e.message || 'it could not be loaded (check workerUrl)'}`));
      });
      w.addEventListener('messageerror', () => handler(new Error("the engine's worker could not read a message")));
    },
    terminate: () => w.terminate(),
  };
}

/**
 * Load a model and open the store in a worker (worker: false: in this thread). `model`: the URL of a
 * safetensors file or its bytes; `store`: 'indexeddb:NAME' (default indexeddb:toeplitz-attention) or
 * 'memory:'; `workerUrl`: the engine's worker script (default: worker.js next to this module).
 */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  const inWorker = options?.worker ?? true;
  // in-thread, the host (the model and the sessions) loads only when asked for
  const port = inWorker ? workerPort(options.workerUrl) : (await import('./local.js')).localPort();
  return connect(port, inWorker, options);
}
