// The engine's worker (a module worker in browsers; under Node's worker_threads the launcher gives it the
// same global postMessage / addEventListener over parentPort first). Bundle it as its own file next to
// the page's bundle (esbuild: an entry point; Vite and webpack find `new URL('./worker.js', import.meta.url)`).
import { serveEngine } from './host.js';
import type { Reply, Request } from './protocol.js';

interface WorkerScope {
  postMessage(message: Reply, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: { data: Request }) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
serveEngine({
  post: (message, transfer) => scope.postMessage(message, transfer),
  listen: (handler) => scope.addEventListener('message', (event) => handler(event.data)),
});
