// The main thread's handles on the session hosts: N worker threads (sessions pinned to one by a hash of
// their id, so each session has one writer per process and its model state stays in one place), or one
// host in this thread (workers: 0). Both speak protocol.ts; replies are routed to their request by id.
import { Worker } from 'node:worker_threads';
import { SessionHost } from './host.js';
import type { HostConfig, Reply, Request } from './protocol.js';
import { tsxImport, workerModuleUrl } from '../threads/workerModule.js';

type Sink = (reply: Reply) => void;
/** a request without its id (the link assigns it) */
export type Op = Request extends infer R ? (R extends { rid: number } ? Omit<R, 'rid'> : never) : never;

export interface HostLink {
  /** send a request; replies with its id go to `sink` until it ends or is forgotten (null: no reply wanted) */
  send(op: Op, sink: Sink | null, transfer?: ArrayBuffer[]): number;
  forget(rid: number): void;
  close(): Promise<void>;
}

let nextRid = 1;

class Router {
  private readonly sinks = new Map<number, Sink>();
  register(sink: Sink | null): number {
    const rid = nextRid++;
    if (sink !== null) this.sinks.set(rid, sink);
    return rid;
  }
  deliver(reply: Reply): void {
    const sink = this.sinks.get(reply.rid);
    if (sink === undefined) return;
    if (reply.kind === 'ok' || reply.kind === 'error' || reply.kind === 'done') this.sinks.delete(reply.rid);
    sink(reply);
  }
  forget(rid: number): void {
    this.sinks.delete(rid);
  }
  failAll(reply: (rid: number) => Reply): void {
    for (const [rid, sink] of [...this.sinks]) {
      this.sinks.delete(rid);
      sink(reply(rid));
    }
  }
}

/** A host in this thread (workers: 0): replies are delivered a microtask later, as a message would be. */
export async function localHost(config: HostConfig): Promise<HostLink> {
  const host = new SessionHost(config);
  await host.start();
  const router = new Router();
  return {
    send(op, sink) {
      const rid = router.register(sink);
      host.handle({ ...op, rid } as Request, (reply) => queueMicrotask(() => router.deliver(reply)));
      return rid;
    },
    forget: (rid) => router.forget(rid),
    close: () => host.close(),
  };
}

/** worker.js next to this file in the package; from the sources a bootstrap registers tsx first (threads/workerModule.ts). */
function workerStart(): { url: URL } | { code: string } {
  const url = workerModuleUrl('worker', import.meta.url);
  const code = tsxImport(url);
  return code === null ? { url } : { code: `${code};` };
}

/** A host in a worker thread; resolves once its model is loaded and its store open. */
export function workerHost(config: HostConfig, onExit: (code: number) => void): Promise<HostLink> {
  const how = workerStart();
  const worker = 'code' in how ? new Worker(how.code, { eval: true, workerData: config }) : new Worker(how.url, { workerData: config });
  const router = new Router();
  let closing = false;
  return new Promise((resolve, reject) => {
    let ready = false;
    worker.on('message', (reply: Reply) => {
      if (!ready && reply.rid === 0) {
        if (reply.kind === 'ready') {
          ready = true;
          resolve(link);
        } else if (reply.kind === 'error') {
          reject(new Error(reply.error.message));
          void worker.terminate();
        }
        return;
      }
      router.deliver(reply);
    });
    worker.on('error', (e) => {
      if (!ready) reject(e);
    });
    worker.on('exit', (code) => {
      router.failAll((rid) => ({ rid, kind: 'error', error: { status: 503, code: 'worker', message: `the worker serving this session exited (code ${code})` } }));
      if (!ready) reject(new Error(`a serve worker exited (code ${code}) before it was ready`));
      else if (!closing) onExit(code);
    });
    const link: HostLink = {
      send(op, sink, transfer) {
        const rid = router.register(sink);
        worker.postMessage({ ...op, rid }, transfer ?? []);
        return rid;
      },
      forget: (rid) => router.forget(rid),
      async close() {
        closing = true;
        await new Promise<void>((res) => {
          const timer = setTimeout(res, 5000);
          link.send({ op: 'close' }, () => {
            clearTimeout(timer);
            res();
          });
        });
        await worker.terminate();
      },
    };
  });
}
