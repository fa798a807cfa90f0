// A session host in a worker thread: loads the model once, opens its own store connection, then serves the
// main thread's requests (protocol.ts). Node only.
import { parentPort, workerData } from 'node:worker_threads';
import { SessionHost } from './host.js';
import type { HostConfig, Request } from './protocol.js';

const port = parentPort!;
const host = new SessionHost(workerData as HostConfig);
host.start().then(
  () => {
    port.on('message', (req: Request) => host.handle(req, (reply) => port.postMessage(reply)));
    port.postMessage({ rid: 0, kind: 'ready' });
  },
  (e: unknown) => port.postMessage({ rid: 0, kind: 'error', error: { status: 400, code: 'start', message: (e as Error)?.message ?? String(e) } }),
);
