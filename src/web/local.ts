// worker: false: the same host in this thread, over a MessageChannel (the same messages, copies and
// transfers as with a worker; only the thread differs).
import type { Port } from './client.js';
import { serveEngine } from './host.js';
import type { Reply, Request } from './protocol.js';

export function localPort(): Port {
  const channel = new MessageChannel();
  const host = channel.port1;
  const client = channel.port2;
  serveEngine({
    post: (m, t) => host.postMessage(m, t),
    listen: (handler) => {
      host.onmessage = (e: MessageEvent<Request>) => handler(e.data);
    },
  });
  return {
    post: (m, t) => client.postMessage(m, t),
    onMessage: (handler) => {
      client.onmessage = (e: MessageEvent<Reply>) => handler(e.data);
    },
    onError: () => undefined,
    terminate: () => {
      host.close();
      client.close();
    },
  };
}
